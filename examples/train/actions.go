package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/steps"
)

// TrainParams are the params of the train action. Every field has a
// default, so `{}` is a valid request.
type TrainParams struct {
	Epochs       int     `json:"epochs" default:"5" validate:"min=1,max=1000" description:"Number of passes over the dataset."`
	LearningRate float64 `json:"learning_rate" default:"0.1" validate:"gt=0,lte=1" description:"Optimizer step size."`
	Model        string  `json:"model" default:"small" validate:"oneof=small large" description:"Model size."`
	BatchSize    int     `json:"batch_size" default:"32" validate:"min=1,max=4096"`
	DelayMS      int     `json:"delay_ms" default:"0" validate:"min=0,max=60000" description:"Pause per epoch, to watch progress live."`
	FailAtEpoch  int     `json:"fail_at_epoch" validate:"min=0" description:"Simulate a failure in this epoch (0: never)."`
}

// Validate checks rules that span fields; it runs after the tags.
func (p *TrainParams) Validate() error {
	if p.FailAtEpoch > p.Epochs {
		return synapse.FieldError{Field: "fail_at_epoch", Message: fmt.Sprintf("must be at most epochs (%d)", p.Epochs)}
	}
	return nil
}

// TrainResult is what train returns.
type TrainResult struct {
	Model     string  `json:"model"`
	Epochs    int     `json:"epochs"`
	FinalLoss float64 `json:"final_loss"`
	Accuracy  float64 `json:"accuracy"`
	Dataset   string  `json:"dataset"`
}

// Train simulates training: it reports progress per epoch, a log event and
// metrics for each, and honours cancellation between epochs.
var Train = synapse.NewAction("train", train, synapse.WithDescription("Train a model (simulated)"))

func train(ctx *synapse.Context, p TrainParams) (TrainResult, error) {
	dataset := ctx.Env().GetString("DATASET_DIR", "./data")
	seed, err := ctx.Env().GetInt("SEED", 42)
	if err != nil {
		return TrainResult{}, err // a bad SEED is reported with its key and value
	}
	ctx.LogMessage(fmt.Sprintf("Training %s model on %s (seed %d)", p.Model, dataset, seed), synapse.LevelInfo)

	step := ctx // progress and series under the caller's category (a tune trial's step), else "train"
	if ctx.Category() == "" {
		step = ctx.WithCategory("train")
	}
	step.SetProgress(0, p.Epochs)
	var loss float64
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return TrainResult{}, err // cancelled: stop between epochs
		}
		if epoch == p.FailAtEpoch {
			step.SetProgressFailed() // the bar and the progress record show it failed
			return TrainResult{}, fmt.Errorf("epoch %d: loss diverged", epoch)
		}
		if p.DelayMS > 0 {
			select {
			case <-ctx.Done():
				return TrainResult{}, ctx.Err()
			case <-time.After(time.Duration(p.DelayMS) * time.Millisecond):
			}
		}
		loss = 1 / (1 + float64(epoch)*p.LearningRate*float64(p.BatchSize)/8)
		step.Log("epoch_complete", map[string]any{"epoch": epoch, "loss": round(loss)})
		// A point of the series train/loss (plotted per epoch), and the
		// latest values as a snapshot.
		step.LogMetric(step.Category(), "loss", round(loss), map[string]any{"epoch": epoch})
		step.SetMetrics(map[string]any{"loss": round(loss), "epoch": epoch}, "training")
		step.SetProgress(epoch, p.Epochs)
	}
	accuracy := round(1 - loss/2)
	if accuracy < 0.6 {
		ctx.Warningf("accuracy %.2f is low: try more epochs or a higher learning_rate", accuracy)
	}
	ctx.SetMetrics(map[string]any{"final_loss": round(loss), "accuracy": accuracy}, "training")
	// Shown in the run's language (--lang, SYNAPSE_LANGUAGE), else English.
	ctx.LogLocalized(synapse.Localized{"en": "Training completed", "ko": "학습 완료"}, synapse.LevelSuccess)
	return TrainResult{Model: p.Model, Epochs: p.Epochs, FinalLoss: round(loss), Accuracy: accuracy, Dataset: dataset}, nil
}

// Evaluate is an untyped action: its params arrive as a map. It reports a
// confusion matrix as a visualization.
var Evaluate = synapse.NewAction("evaluate", func(ctx *synapse.Context, p map[string]any) (map[string]any, error) {
	model, _ := p["model"].(string)
	if model == "" {
		return nil, fmt.Errorf("evaluate: params.model is required (got %v)", p["model"])
	}
	ctx.Slog().Info("evaluating", "model", model)
	matrix := [][]int{{45, 5}, {4, 46}}
	img, err := confusionPNG(matrix)
	if err != nil {
		return nil, err
	}
	if err := ctx.LogVisualization("val", "confusion_matrix", 0, synapse.File{Data: img, Name: "confusion.png"}, map[string]any{"classes": []string{"cat", "dog"}}); err != nil {
		return nil, err
	}
	return map[string]any{"model": model, "accuracy": 0.9}, nil
}, synapse.WithDescription("Evaluate a trained model"))

// TuneParams are the params of the tune action.
type TuneParams struct {
	LearningRates []float64 `json:"learning_rates" default:"[0.01,0.1,0.5]" validate:"min=1,max=20,dive,gt=0,lte=1" description:"Learning rates to try, one trial each."`
	Epochs        int       `json:"epochs" default:"3" validate:"min=1,max=100"`
}

// Tune is a hyperparameter search: one trial per learning rate, run as the
// steps of an orchestrator (so the progress record weighs them), with the
// trials table reported after each.
var Tune = synapse.NewAction("tune", func(ctx *synapse.Context, p TuneParams) (map[string]any, error) {
	trials := synapse.Trials{
		Trials:          map[string]map[string]any{},
		Hyperparameters: []string{"learning_rate"},
		Metrics:         []string{"final_loss", "accuracy"},
	}
	best := math.Inf(1)
	reg := steps.NewRegistry()
	for i, lr := range p.LearningRates {
		id := fmt.Sprintf("trial-%d", i+1)
		reg.Register(steps.New(id, 1, func(sc *steps.Context) steps.Result {
			res, err := train(sc.Context, TrainParams{Epochs: p.Epochs, LearningRate: lr, Model: "small", BatchSize: 32})
			if err != nil {
				return steps.Failed(err)
			}
			trials.Trials[id] = map[string]any{"learning_rate": lr, "final_loss": res.FinalLoss, "accuracy": res.Accuracy}
			if res.FinalLoss < best {
				best, trials.BestTrial = res.FinalLoss, id
			}
			sc.LogTrials(trials)
			return steps.Succeeded(map[string]any{"final_loss": res.FinalLoss})
		}))
	}
	if _, err := steps.NewOrchestrator(reg).Run(ctx); err != nil {
		return nil, err
	}
	return map[string]any{"best_trial": trials.BestTrial, "learning_rate": trials.Trials[trials.BestTrial]["learning_rate"], "final_loss": best}, nil
}, synapse.WithDescription("Search learning rates (simulated)"))

// confusionPNG draws matrix as a PNG, one 16×16 grey cell per entry
// (darker for larger counts).
func confusionPNG(matrix [][]int) ([]byte, error) {
	peak := 1
	for _, row := range matrix {
		for _, v := range row {
			peak = max(peak, v)
		}
	}
	const cell = 16
	img := image.NewGray(image.Rect(0, 0, cell*len(matrix[0]), cell*len(matrix)))
	for y, row := range matrix {
		for x, v := range row {
			shade := color.Gray{Y: uint8(255 - 255*v/peak)}
			draw.Draw(img, image.Rect(x*cell, y*cell, (x+1)*cell, (y+1)*cell), &image.Uniform{C: shade}, image.Point{}, draw.Src)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode confusion matrix: %w", err)
	}
	return buf.Bytes(), nil
}

func round(f float64) float64 { return math.Round(f*1e4) / 1e4 }
