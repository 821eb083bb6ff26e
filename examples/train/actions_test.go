package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

func TestTrain(t *testing.T) {
	env := synapse.NewEnv(map[string]any{"DATASET_DIR": "/data/cats", "SEED": "7"})
	res := plugintest.Run(t, Train, map[string]any{"epochs": 4}, synapse.WithEnv(env))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var out TrainResult
	if err := res.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Epochs != 4 || out.Model != "small" || out.Dataset != "/data/cats" {
		t.Errorf("result = %+v", out)
	}
	if p, ok := res.LastPercent("train"); !ok || p != 100 {
		t.Errorf("last train progress = %v, %v", p, ok)
	}
	if n := len(res.Progress("train")); n != 5 {
		t.Errorf("%d progress events, want 5 (0 and each epoch)", n)
	}
	if n := len(res.Logs("epoch_complete")); n != 4 {
		t.Errorf("%d epoch_complete logs, want 4", n)
	}
	m := res.Metrics("training")
	if m["final_loss"] != out.FinalLoss || m["accuracy"] != out.Accuracy || m["epoch"] != 4 {
		t.Errorf("training metrics = %v", m)
	}
	msgs := res.Messages(synapse.LevelSuccess)
	if len(msgs) != 1 || msgs[0] != "Training completed" {
		t.Errorf("success messages = %v", msgs)
	}
	loss := res.Series("train", "loss")
	if len(loss) != 4 || loss[3].Value != out.FinalLoss || loss[0].Extra["epoch"] != 1 {
		t.Errorf("series train/loss = %+v, want 4 points ending at the final loss", loss)
	}
	if rec := res.ProgressRecord(); rec.Current.Overall != 100 || rec.Current.Step != "train" || rec.Current.TimeElapsed == nil {
		t.Errorf("progress record = %+v", rec.Current)
	}

	ko := plugintest.Run(t, Train, map[string]any{"epochs": 1}, synapse.WithLanguage("ko"))
	if msgs := ko.Messages(synapse.LevelSuccess); len(msgs) != 1 || msgs[0] != "학습 완료" {
		t.Errorf("success messages in ko = %v", msgs)
	}
	if first := res.Messages(synapse.LevelInfo); len(first) == 0 || !strings.Contains(first[0], "seed 7") {
		t.Errorf("info messages = %v", first)
	}
}

func TestTrainErrors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		env    map[string]any
		is     error
		msg    string
		failed bool // the train bar ends marked failed
	}{
		{"too many epochs", map[string]any{"epochs": 5000}, nil, synapse.ErrValidation, "epochs: must be <= 1000 (got 5000)", false},
		{"typo", map[string]any{"epoch": 3}, nil, synapse.ErrValidation, `epoch: unknown field (did you mean "epochs"?`, false},
		{"cross-field rule", map[string]any{"epochs": 2, "fail_at_epoch": 3}, nil, synapse.ErrValidation, "fail_at_epoch: must be at most epochs (2)", false},
		{"failing epoch", map[string]any{"epochs": 3, "fail_at_epoch": 2}, nil, synapse.ErrExecution, "epoch 2: loss diverged", true},
		{"bad env", nil, map[string]any{"SEED": "abc"}, synapse.ErrExecution, `read env SEED: cannot convert "abc" to an integer`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := plugintest.Run(t, Train, tt.params, synapse.WithEnv(synapse.NewEnv(tt.env)))
			if !errors.Is(res.Err, tt.is) || !strings.Contains(res.Err.Error(), tt.msg) {
				t.Errorf("error = %v, want %v containing %q", res.Err, tt.is, tt.msg)
			}
			st := res.ProgressRecord().Steps["train"]
			if got := st.Status == "failed"; got != tt.failed {
				t.Errorf("train step failed in the progress record: %v, want %v", got, tt.failed)
			}
			if tt.failed && st.Percent != 33.33 { // epoch 1 of 3 done: the failed step keeps it
				t.Errorf("failed train step at %v%%, want the 33.33%% it reached", st.Percent)
			}
		})
	}
}

func TestTrainCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := plugintest.NewRecorder()
	// Cancel as soon as the first epoch is reported.
	logger := synapse.LoggerFunc(func(e synapse.Event) {
		rec.Handle(e)
		if e.Type == synapse.EventProgress && e.Current == 1 {
			cancel()
		}
	})
	_, err := synapse.NewLocalExecutor(synapse.WithLogger(logger)).Execute(ctx, Train, map[string]any{"epochs": 100, "delay_ms": 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if p, _ := rec.LastPercent("train"); p >= 100 {
		t.Errorf("training ran to %v%% after cancellation", p)
	}
}

func TestEvaluate(t *testing.T) {
	res := plugintest.Run(t, Evaluate, map[string]any{"model": "m1"})
	if res.Err != nil || res.Value.(map[string]any)["accuracy"] != 0.9 {
		t.Fatalf("evaluate = %v, %v", res.Value, res.Err)
	}
	if logs := res.Logs("evaluating"); len(logs) != 1 || logs[0].Data["model"] != "m1" {
		t.Errorf("logs = %+v", logs)
	}
	vis := res.Visualizations()
	if len(vis) != 1 || vis[0].Group != "confusion_matrix" || vis[0].ContentType != "image/png" {
		t.Fatalf("visualizations = %+v", vis)
	}
	if img, err := png.Decode(bytes.NewReader(vis[0].Image)); err != nil || img.Bounds().Dx() != 32 {
		t.Errorf("confusion matrix image: %v, %v", img, err)
	}
	if res := plugintest.Run(t, Evaluate, nil); !errors.Is(res.Err, synapse.ErrExecution) {
		t.Errorf("evaluate without model: %v", res.Err)
	}
}

func TestTune(t *testing.T) {
	res := plugintest.Run(t, Tune, map[string]any{"learning_rates": []float64{0.01, 0.5}, "epochs": 2})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if best := res.Value.(map[string]any)["best_trial"]; best != "trial-2" {
		t.Errorf("best trial = %v, want trial-2 (the higher rate converges faster)", best)
	}
	trials, ok := res.Trials()
	if !ok || len(trials.Trials) != 2 || trials.BestTrial != "trial-2" || trials.Trials["trial-1"]["learning_rate"] != 0.01 {
		t.Errorf("trials = %+v, %v", trials, ok)
	}
	rec := res.ProgressRecord()
	if rec.Current.Overall != 100 || rec.Steps["trial-1"].Proportion != 50 || *rec.Steps["trial-2"].Order != 1 {
		t.Errorf("progress record = %+v", rec)
	}
	if n := len(res.Series("trial-2", "loss")); n != 2 {
		t.Errorf("series trial-2/loss has %d points, want 2", n)
	}
	if bad := plugintest.Run(t, Tune, map[string]any{"learning_rates": []float64{2}}); !errors.Is(bad.Err, synapse.ErrValidation) {
		t.Errorf("learning rate 2: %v, want a validation error", bad.Err)
	}
}
