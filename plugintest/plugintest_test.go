package plugintest_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

var report = synapse.NewAction("report", func(ctx *synapse.Context, p map[string]any) (map[string]int, error) {
	data := map[string]any{"k": 1}
	ctx.Log("first", data)
	data["k"] = 2 // the recorder keeps what was logged, not later changes
	ctx.Log("second", nil)
	ctx.LogMessage("hello", synapse.LevelInfo)
	ctx.LogMessage("careful", synapse.LevelWarning)
	ctx.SetProgress(0, 4, "b")
	ctx.SetProgress(2, 4, "b")
	ctx.SetMetrics(map[string]any{"x": 1}, "a")
	ctx.SetMetrics(map[string]any{"y": 2}, "a")
	if ctx.Env().GetString("HOME", "") != "" {
		return nil, errors.New("plugintest leaked the OS environment")
	}
	return map[string]int{"n": 7}, nil
})

func TestRecorder(t *testing.T) {
	res := plugintest.Run(t, report, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var out struct{ N int }
	if err := res.Decode(&out); err != nil || out.N != 7 {
		t.Errorf("Decode = %+v, %v", out, err)
	}
	if logs := res.Logs(); len(logs) != 2 || logs[0].Data["k"] != 1 {
		t.Errorf("Logs = %+v", logs)
	}
	if logs := res.Logs("second"); len(logs) != 1 || logs[0].Event != "second" {
		t.Errorf("Logs(second) = %+v", logs)
	}
	if got := res.Messages(); !reflect.DeepEqual(got, []string{"hello", "careful"}) {
		t.Errorf("Messages = %v", got)
	}
	if got := res.Messages(synapse.LevelWarning); !reflect.DeepEqual(got, []string{"careful"}) {
		t.Errorf("Messages(warning) = %v", got)
	}
	if p, ok := res.LastPercent("b"); !ok || p != 50 {
		t.Errorf("LastPercent(b) = %v, %v", p, ok)
	}
	if _, ok := res.LastPercent("none"); ok {
		t.Error("LastPercent of an unused category reported progress")
	}
	if got := res.Metrics("a"); !reflect.DeepEqual(got, map[string]any{"x": 1, "y": 2}) {
		t.Errorf("Metrics(a) = %v", got)
	}
	if got := res.Categories(); !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("Categories = %v", got)
	}
	if len(res.Events()) != 8 {
		t.Errorf("%d events, want 8", len(res.Events()))
	}
}

func TestRunContextAndEnv(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := plugintest.RunContext(ctx, report, nil); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("cancelled: %v", res.Err)
	}
	env := synapse.NewEnv(map[string]any{"HOME": "/home/x"})
	if res := plugintest.Run(t, report, nil, synapse.WithEnv(env)); res.Err == nil {
		t.Error("WithEnv was not applied")
	}
}

func TestRecorderReportingCalls(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	a := synapse.NewAction("r", func(ctx *synapse.Context, _ struct{}) (any, error) {
		ctx.LogMetric("train", "loss", 0.5, map[string]any{"epoch": 1})
		ctx.LogMetric("train", "loss", math.Inf(1), nil)
		if err := ctx.LogVisualization("val", "g", 2, synapse.File{Data: png, Name: "p.png"}, map[string]any{"iou": 0.5}); err != nil {
			return nil, err
		}
		ctx.LogTrials(synapse.Trials{Trials: map[string]map[string]any{"t1": {"loss": math.NaN()}}, Metrics: []string{"loss"}, BestTrial: "t1"})
		ctx.SetProgress(1, 2, "train")
		return nil, nil
	})
	res := plugintest.Run(t, a, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if s := res.Series("train", "loss"); len(s) != 2 || s[0].Extra["epoch"] != 1 || !math.IsInf(s[1].Value, 1) {
		t.Errorf("series = %+v", s)
	}
	if v := res.Visualizations(); len(v) != 1 || v[0].Group != "g" || v[0].Index != 2 || v[0].Meta["iou"] != 0.5 || v[0].ContentType != "image/png" || string(v[0].Image) != string(png) {
		t.Errorf("visualizations = %+v", v)
	}
	tr, ok := res.Trials()
	if !ok || tr.BestTrial != "t1" || !math.IsNaN(tr.Trials["t1"]["loss"].(float64)) || !reflect.DeepEqual(tr.Metrics, []string{"loss"}) {
		t.Errorf("trials with NaN = %+v, %v", tr, ok)
	}
	if rec := res.ProgressRecord(); rec.Current.Step != "train" || rec.Current.Percent != 50 || rec.Current.TimeElapsed == nil {
		t.Errorf("progress record = %+v", rec.Current)
	}
}
