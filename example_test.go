package synapse_test

import (
	"context"
	"errors"
	"fmt"
	"os"

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
