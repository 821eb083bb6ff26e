package synapse_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	synapse "github.com/synapse-sdk/synapse-go"
)

// exConvertStep is a step written as a type: BaseStep supplies CanSkip.
type exConvertStep struct {
	synapse.BaseStep
	fail bool
}

func (exConvertStep) Name() string            { return "convert" }
func (exConvertStep) ProgressWeight() float64 { return 0.5 }

func (s exConvertStep) Execute(ctx *synapse.StepContext) synapse.StepResult {
	downloaded, _ := ctx.Result("download")
	if s.fail {
		return synapse.StepResult{
			Err:          errors.New("unsupported format"),
			RollbackData: map[string]any{"partial": "/tmp/out.part"},
		}
	}
	return synapse.StepSucceeded(map[string]any{"converted": downloaded.Data["path"].(string) + ".yolo"})
}

func (exConvertStep) Rollback(ctx *synapse.StepContext, r synapse.StepResult) error {
	fmt.Println("rollback convert: remove", r.RollbackData["partial"])
	return nil
}

// printStepProgress prints the progress events of a run, and nothing else.
var printStepProgress = synapse.LoggerFunc(func(e synapse.Event) {
	if e.Type == synapse.EventProgress {
		fmt.Printf("progress [%s] %d/%d\n", e.Category, e.Current, e.Total)
	}
})

func exImportSteps(failConvert bool) *synapse.StepRegistry {
	reg := synapse.NewStepRegistry()
	reg.Register(
		synapse.NewStep("download", 0.3, func(ctx *synapse.StepContext) synapse.StepResult {
			return synapse.StepSucceeded(map[string]any{"path": "/data/cats"})
		}, synapse.WithRollback(func(ctx *synapse.StepContext, _ synapse.StepResult) error {
			fmt.Println("rollback download")
			return nil
		})),
		synapse.NewStep("validate", 0.2, nil, synapse.WithSkipCheck(func(*synapse.StepContext) bool {
			return true // already validated upstream
		})),
		exConvertStep{fail: failConvert},
	)
	return reg
}

func ExampleOrchestrator() {
	importAction := synapse.NewAction("import", func(ctx *synapse.Context, _ struct{}) (synapse.StepsSummary, error) {
		return synapse.NewOrchestrator(exImportSteps(false)).Run(ctx)
	})
	out, err := synapse.NewLocalExecutor(synapse.WithLogger(printStepProgress)).Execute(context.Background(), importAction, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	sum := out.(synapse.StepsSummary)
	fmt.Printf("success=%v executed=%d total=%d converted=%v\n",
		sum.Success, sum.StepsExecuted, sum.StepsTotal, sum.Results[2].Data["converted"])
	// Output:
	// progress [download] 30/100
	// progress [validate] 50/100
	// progress [convert] 100/100
	// success=true executed=2 total=3 converted=/data/cats.yolo
}

func ExampleOrchestrator_rollback() {
	importAction := synapse.NewAction("import", func(ctx *synapse.Context, _ struct{}) (synapse.StepsSummary, error) {
		return synapse.NewOrchestrator(exImportSteps(true)).Run(ctx)
	})
	_, err := synapse.NewLocalExecutor(synapse.WithLogger(synapse.DiscardLogger)).Execute(context.Background(), importAction, nil)
	var se *synapse.StepError
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

type exFetchParams struct {
	URL string `json:"url" validate:"required"`
}

type exFetchResult struct {
	DatasetPath string `json:"dataset_path"`
}

type exFitParams struct {
	DatasetPath string `json:"dataset_path" validate:"required"`
	Epochs      int    `json:"epochs" default:"10"`
}

type exFitResult struct {
	Model string `json:"model"`
}

func ExamplePipeline() {
	fetch := synapse.NewAction("fetch", func(ctx *synapse.Context, p exFetchParams) (exFetchResult, error) {
		dirs, _ := ctx.WorkDir() // the run's directories: datasets, models, …
		_ = dirs.Datasets
		return exFetchResult{DatasetPath: "datasets/cats"}, nil
	})
	fit := synapse.NewAction("fit", func(ctx *synapse.Context, p exFitParams) (exFitResult, error) {
		return exFitResult{Model: fmt.Sprintf("%s@%d", p.DatasetPath, p.Epochs)}, nil
	})

	workDir, err := os.MkdirTemp("", "pipelines")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(workDir)

	p, err := synapse.NewPipeline("train", []synapse.Action{fetch, fit}, synapse.Strict(), synapse.WithWorkDir(workDir))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("missing without params:", p.Check(nil))

	// url goes to fetch; epochs to fit; dataset_path flows from fetch to fit.
	run, err := p.Run(context.Background(), map[string]any{"url": "https://example.com/cats", "epochs": 3},
		synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		fmt.Println(err)
		fmt.Println("resume with:", run.ID)
		return
	}
	fmt.Printf("%+v\n", run.Result)
	// Output:
	// missing without params: [fetch.url]
	// {Model:datasets/cats@3}
}
