package synapse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	synapse "github.com/synapse-sdk/synapse-go"
)

// run executes fn as an action, printing its events for people.
func run(fn func(ctx *synapse.Context), opts ...synapse.Option) {
	a := synapse.NewAction("demo", func(ctx *synapse.Context, _ struct{}) (any, error) {
		fn(ctx)
		return nil, nil
	})
	opts = append([]synapse.Option{synapse.WithLogger(synapse.NewConsoleLogger(os.Stdout)), synapse.WithEnv(synapse.NewEnv(nil))}, opts...)
	if _, err := synapse.NewLocalExecutor(opts...).Execute(context.Background(), a, nil); err != nil {
		fmt.Println(err)
	}
}

func ExampleContext_LogMetric() {
	run(func(ctx *synapse.Context) {
		for epoch, loss := range []float64{0.9, 0.5, 0.3} {
			ctx.LogMetric("train", "loss", loss, map[string]any{"epoch": epoch + 1})
		}
		// The console shows at most one point a second per series; the
		// context and the JSON stream keep them all.
		for _, p := range ctx.Series("train", "loss") {
			fmt.Println("epoch", p.Extra["epoch"], "loss", p.Value)
		}
	})
	// Output:
	// INFO: [train] Metric: loss=0.9 {"epoch":1}
	// epoch 1 loss 0.9
	// epoch 2 loss 0.5
	// epoch 3 loss 0.3
}

func ExampleContext_Errorf() {
	run(func(ctx *synapse.Context) {
		ctx.Successf("uploaded %d files", 12)
		ctx.Dangerf("%d files were skipped", 3)
		ctx.Criticalf("storage quota reached")
		ctx.LogAt(synapse.LevelWarning, "slow_batch", map[string]any{"seconds": 12.5})
	})
	// Output:
	// SUCCESS: uploaded 12 files
	// DANGER: 3 files were skipped
	// CRITICAL: storage quota reached
	// WARNING: slow_batch {"seconds":12.5}
}

func ExampleContext_LogVisualization() {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") // a PNG's first bytes
	run(func(ctx *synapse.Context) {
		err := ctx.LogVisualization("val", "predictions", 0, synapse.File{Data: png, Name: "pred-0.png"}, map[string]any{"iou": 0.82})
		fmt.Println("error:", err)
		err = ctx.LogFile(synapse.LevelInfo, "weights", nil, synapse.File{Data: make([]byte, synapse.MaxFileSize+1), Name: "model.bin"})
		fmt.Println("too large:", errors.Is(err, synapse.ErrFileTooLarge))
	})
	// Output:
	// INFO: [val] Visualization: predictions #0 {"iou":0.82} (file: pred-0.png, 16 B image/png)
	// error: <nil>
	// too large: true
}

func ExampleContext_LogTrials() {
	run(func(ctx *synapse.Context) {
		ctx.LogTrials(synapse.Trials{
			Trials: map[string]map[string]any{
				"t1": {"lr": 0.1, "loss": 0.31},
				"t2": {"lr": 0.01, "loss": 0.27},
			},
			Hyperparameters: []string{"lr"},
			Metrics:         []string{"loss"},
			BestTrial:       "t2",
		})
	})
	// Output:
	// INFO: Trials: 2 (best: t2)
	//   trial  lr    loss
	//   t1     0.1   0.31
	// * t2     0.01  0.27
}

func ExampleContext_LogLocalized() {
	done := synapse.Localized{"en": "Upload finished", "ko": "업로드 완료"}
	run(func(ctx *synapse.Context) { ctx.LogLocalized(done, synapse.LevelSuccess) }, synapse.WithLanguage("ko"))
	run(func(ctx *synapse.Context) { ctx.LogLocalized(done, synapse.LevelSuccess) }, synapse.WithLanguage("fr"))
	// Output:
	// SUCCESS: 업로드 완료
	// SUCCESS: Upload finished
}

func ExampleContext_SetProgressFailed() {
	run(func(ctx *synapse.Context) {
		ctx.SetProgress(0, 10, "upload")
		ctx.SetProgressFailed("upload")
		fmt.Println("status:", ctx.Progress().Steps["upload"].Status)
	})
	// Output:
	// INFO: [upload] Progress: 0.0%
	// ERROR: [upload] Progress: failed
	// status: failed
}

func ExampleProgressTracker() {
	// A caller rebuilds a run's progress record from its events, as job
	// and task modes do on the caller's side.
	tracker := synapse.NewProgressTracker()
	tracker.Handle(synapse.Event{Type: synapse.EventSteps, Steps: []synapse.StepInfo{
		{Name: "download", Order: 0, Proportion: 20},
		{Name: "train", Order: 1, Proportion: 80},
	}})
	tracker.Handle(synapse.Event{Type: synapse.EventProgress, Category: "download", Current: 1, Total: 1, Percent: 100, ETA: 0})
	tracker.Handle(synapse.Event{Type: synapse.EventProgress, Category: "train", Current: 1, Total: 2, Percent: 50, ETA: -1})
	b, _ := json.Marshal(tracker.Record().Current)
	fmt.Println(string(b))
	// Output:
	// {"overall":60,"step":"train","percent":50,"time_remaining":null,"order":1}
}
