package main

import (
	"fmt"
	"math"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
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

	step := ctx.WithCategory("train")
	step.SetProgress(0, p.Epochs)
	var loss float64
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return TrainResult{}, err // cancelled: stop between epochs
		}
		if epoch == p.FailAtEpoch {
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
		step.SetMetrics(map[string]any{"loss": round(loss), "epoch": epoch}, "training")
		step.SetProgress(epoch, p.Epochs)
	}
	accuracy := round(1 - loss/2)
	ctx.SetMetrics(map[string]any{"final_loss": round(loss), "accuracy": accuracy}, "training")
	ctx.LogMessage("Training completed", synapse.LevelSuccess)
	return TrainResult{Model: p.Model, Epochs: p.Epochs, FinalLoss: round(loss), Accuracy: accuracy, Dataset: dataset}, nil
}

// Evaluate is an untyped action: its params arrive as a map.
var Evaluate = synapse.NewAction("evaluate", func(ctx *synapse.Context, p map[string]any) (map[string]any, error) {
	model, _ := p["model"].(string)
	if model == "" {
		return nil, fmt.Errorf("evaluate: params.model is required (got %v)", p["model"])
	}
	ctx.Slog().Info("evaluating", "model", model)
	return map[string]any{"model": model, "accuracy": 0.9}, nil
}, synapse.WithDescription("Evaluate a trained model"))

func round(f float64) float64 { return math.Round(f*1e4) / 1e4 }
