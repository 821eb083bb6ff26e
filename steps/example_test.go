package steps_test

import (
	"context"
	"errors"
	"fmt"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/steps"
)

// exConvertStep is a step written as a type: Base supplies CanSkip.
type exConvertStep struct {
	steps.Base
	fail bool
}

func (exConvertStep) Name() string            { return "convert" }
func (exConvertStep) ProgressWeight() float64 { return 0.5 }

func (s exConvertStep) Execute(ctx *steps.Context) steps.Result {
	downloaded, _ := ctx.Result("download")
	if s.fail {
		return steps.Result{
			Err:          errors.New("unsupported format"),
			RollbackData: map[string]any{"partial": "/tmp/out.part"},
		}
	}
	return steps.Succeeded(map[string]any{"converted": downloaded.Data["path"].(string) + ".yolo"})
}

func (exConvertStep) Rollback(ctx *steps.Context, r steps.Result) error {
	fmt.Println("rollback convert: remove", r.RollbackData["partial"])
	return nil
}

// printStepProgress prints the plan and the progress events of a run, and
// nothing else.
var printStepProgress = synapse.LoggerFunc(func(e synapse.Event) {
	switch e.Type {
	case synapse.EventSteps:
		for _, s := range e.Steps {
			fmt.Printf("plan %d %s %v%%\n", s.Order, s.Name, s.Proportion)
		}
	case synapse.EventProgress:
		fmt.Printf("progress [%s] %d/%d\n", e.Category, e.Current, e.Total)
	}
})

func exImportSteps(failConvert bool) *steps.Registry {
	reg := steps.NewRegistry()
	reg.Register(
		steps.New("download", 0.3, func(ctx *steps.Context) steps.Result {
			return steps.Succeeded(map[string]any{"path": "/data/cats"})
		}, steps.WithRollback(func(ctx *steps.Context, _ steps.Result) error {
			fmt.Println("rollback download")
			return nil
		})),
		steps.New("validate", 0.2, nil, steps.WithSkipCheck(func(*steps.Context) bool {
			return true // already validated upstream
		})),
		exConvertStep{fail: failConvert},
	)
	return reg
}

func ExampleOrchestrator() {
	importAction := synapse.NewAction("import", func(ctx *synapse.Context, _ struct{}) (steps.Summary, error) {
		sum, err := steps.NewOrchestrator(exImportSteps(false)).Run(ctx)
		fmt.Println("overall", ctx.Progress().Current.Overall)
		return sum, err
	})
	out, err := synapse.NewLocalExecutor(synapse.WithLogger(printStepProgress)).Execute(context.Background(), importAction, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := out.(steps.Summary)
	fmt.Printf("success=%v executed=%d total=%d converted=%v\n",
		sum.Success, sum.StepsExecuted, sum.StepsTotal, sum.Results[2].Data["converted"])
	// Output:
	// plan 0 download 30%
	// plan 1 validate 20%
	// plan 2 convert 50%
	// progress [download] 100/100
	// progress [validate] 100/100
	// progress [convert] 100/100
	// overall 100
	// success=true executed=2 total=3 converted=/data/cats.yolo
}

func ExampleOrchestrator_rollback() {
	importAction := synapse.NewAction("import", func(ctx *synapse.Context, _ struct{}) (steps.Summary, error) {
		return steps.NewOrchestrator(exImportSteps(true)).Run(ctx)
	})
	_, err := synapse.NewLocalExecutor(synapse.WithLogger(synapse.DiscardLogger)).Execute(context.Background(), importAction, nil)
	var se *steps.Error
	if errors.As(err, &se) {
		fmt.Println("failed step:", se.Step)
	}
	fmt.Println(err)
	// Output:
	// rollback convert: remove /tmp/out.part
	// rollback download
	// failed step: convert
	// run action "import": step "convert" failed: unsupported format
}

func ExampleRegistry_Plan() {
	reg := steps.NewRegistry()
	reg.Register(
		steps.New("download", 1, nil),
		steps.New("train", 3, nil),
		steps.New("upload", 0, nil, steps.WithProportion(10)), // an explicit 10%
	)
	for _, s := range reg.Plan() {
		fmt.Printf("%d %s %v%%\n", s.Order, s.Name, s.Proportion)
	}
	// Output:
	// 0 download 22.5%
	// 1 train 67.5%
	// 2 upload 10%
}

func ExampleOrchestrator_beforeStep() {
	reg := steps.NewRegistry()
	reg.Register(steps.New("train", 1, func(ctx *steps.Context) steps.Result {
		return steps.Succeeded(map[string]any{"device": ctx.Env().GetString("DEVICE", "")})
	}))
	o := steps.NewOrchestrator(reg)
	o.BeforeStep = func(ctx *steps.Context, name string) error {
		fmt.Println("before", name, "current step:", ctx.CurrentStep)
		return nil
	}
	action := synapse.NewAction("fit", func(ctx *synapse.Context, _ struct{}) (steps.Summary, error) {
		return o.Run(ctx)
	})
	out, err := synapse.NewLocalExecutor(synapse.WithLogger(synapse.DiscardLogger), synapse.WithEnv(synapse.NewEnv(map[string]any{"DEVICE": "cuda:0"}))).
		Execute(context.Background(), action, nil)
	fmt.Println(out.(steps.Summary).Results[0].Data["device"], err)
	// Output:
	// before train current step: train
	// cuda:0 <nil>
}
