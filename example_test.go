package synapse_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
)

// ResizeParams shows the params tags: json names, defaults, constraints and
// descriptions for the schema.
type ResizeParams struct {
	Width  int    `json:"width" default:"640" validate:"min=1,max=8192" description:"Target width in pixels."`
	Format string `json:"format" default:"png" validate:"oneof=png jpeg"`
	Source string `json:"source" validate:"required"`
}

func ExampleNewAction() {
	resize := synapse.NewAction("resize", func(ctx *synapse.Context, p ResizeParams) (map[string]any, error) {
		ctx.Log("resized", map[string]any{"source": p.Source, "width": p.Width})
		return map[string]any{"output": p.Source + "." + p.Format}, nil
	}, synapse.WithDescription("Resize an image"))

	fmt.Println(resize.Name()+":", resize.Description())
	// Params are checked before the action runs.
	fmt.Println(resize.Decode(map[string]any{"width": 0, "fromat": "png"}))
	// Output:
	// resize: Resize an image
	// validate params of action "resize": fromat: unknown field (did you mean "format"? valid fields: format, source, width); source: is required; width: must be >= 1 (got 0)
}

func ExampleLocalExecutor_Execute() {
	train := synapse.NewAction("train", func(ctx *synapse.Context, p struct {
		Epochs int `json:"epochs" default:"3" validate:"min=1"`
	}) (map[string]any, error) {
		ctx.SetProgress(0, p.Epochs, "train")
		for epoch := 1; epoch <= p.Epochs; epoch++ {
			ctx.Log("epoch_complete", map[string]any{"epoch": epoch})
		}
		ctx.SetProgress(p.Epochs, p.Epochs, "train")
		ctx.SetMetrics(map[string]any{"final_loss": 0.05}, "training")
		ctx.LogMessage("Training completed", synapse.LevelSuccess)
		return map[string]any{"epochs": p.Epochs}, nil
	})

	executor := synapse.NewLocalExecutor(
		synapse.WithLogger(synapse.NewConsoleLogger(os.Stdout)),
		synapse.WithJobID("job-42"),
	)
	result, err := executor.Execute(context.Background(), train, map[string]any{"epochs": 2})
	fmt.Println("result:", result, err)

	_, err = executor.Execute(context.Background(), train, `{"epochs": 0}`)
	var invalid *synapse.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println("invalid:", invalid.Fields[0])
	}
	// Output:
	// INFO: [train] Progress: 0.0%
	// INFO: epoch_complete {"epoch":1}
	// INFO: epoch_complete {"epoch":2}
	// INFO: [train] Progress: 100.0% | ETA: 0.0s
	// INFO: [training] Metrics: {"final_loss":0.05}
	// SUCCESS: Training completed
	// result: map[epochs:2] <nil>
	// invalid: epochs: must be >= 1 (got 0)
}

func ExampleActionSet() {
	greet := synapse.NewAction("greet", func(ctx *synapse.Context, p struct {
		Name string `json:"name" default:"world"`
	}) (string, error) {
		return ctx.Env().GetString("GREETING", "hello") + " " + p.Name, nil
	})
	set, err := synapse.NewActionSet([]synapse.Action{greet},
		synapse.WithLogger(synapse.DiscardLogger), synapse.WithEnv(synapse.NewEnv(map[string]any{"GREETING": "hi"})))
	if err != nil {
		fmt.Println(err)
		return
	}
	// An ActionSet is the in-process synapse.Executor: actions run by name.
	var ex synapse.Executor = set
	fmt.Println(ex.Run(context.Background(), "greet", map[string]any{"name": "ann"}))
	_, err = ex.Run(context.Background(), "gret", nil)
	fmt.Println(err)
	// Output:
	// hi ann <nil>
	// find action "gret": no such action (did you mean "greet"?); available: greet
}

func ExampleRunPlugin() {
	double := synapse.NewAction("double", func(ctx *synapse.Context, p struct {
		N int `json:"n"`
	}) (int, error) {
		return 2 * p.N, nil
	})
	// A plugin linked into this program runs in-process under its code.
	// A plugin directory runs in its own binary (import package plugin), and
	// other modes need their package: import _ ".../ray" for ModeJob and
	// ModeTask, with synapse.WithMode and synapse.WithModeOptions.
	synapse.Register("math", double)
	res, err := synapse.RunPlugin(context.Background(), "math", "double", `{"n": 21}`, synapse.WithLogger(synapse.DiscardLogger))
	fmt.Println(res, err)
	// Output: 42 <nil>
}

func ExampleContext_WithContext() {
	fetch := synapse.NewAction("fetch", func(ctx *synapse.Context, _ struct{}) (string, error) {
		// A sub-task with its own deadline keeps the reporting methods.
		sub, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		sc := ctx.WithContext(sub).WithCategory("download")
		<-sc.Done()
		sc.LogMessage("download timed out, using the cache", synapse.LevelWarning)
		return "cached", nil
	})
	res, err := synapse.NewLocalExecutor(synapse.WithLogger(synapse.NewConsoleLogger(os.Stdout))).
		Execute(context.Background(), fetch, nil)
	fmt.Println(res, err)
	// Output:
	// WARNING: [download] download timed out, using the cache
	// cached <nil>
}
