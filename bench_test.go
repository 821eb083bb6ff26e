package synapse_test

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"
	synapse "github.com/synapse-sdk/synapse-go"
)

// benchParams is the "trivial typed action with three validated params" of
// the benchmark contract (docs/benchmarks.md).
type benchParams struct {
	Epochs int     `json:"epochs" validate:"min=1,max=1000"`
	LR     float64 `json:"lr" validate:"gt=0,lte=1"`
	Model  string  `json:"model" validate:"oneof=small large"`
}

var benchInput = map[string]any{"epochs": 10, "lr": 0.1, "model": "small"}

var benchAction = synapse.NewAction("bench", func(ctx *synapse.Context, p benchParams) (int, error) {
	return p.Epochs, nil
})

// BenchmarkLocalExecute is the whole local run: decode the map, apply
// defaults, validate, build the Context, call the action, box the result.
func BenchmarkLocalExecute(b *testing.B) {
	ex := synapse.NewLocalExecutor(synapse.WithLogger(synapse.DiscardLogger), synapse.WithEnv(synapse.NewEnv(nil)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Execute(ctx, benchAction, benchInput); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalExecuteJSON is the same run with params given as JSON bytes
// (the form the CLI and the worker protocol use).
func BenchmarkLocalExecuteJSON(b *testing.B) {
	ex := synapse.NewLocalExecutor(synapse.WithLogger(synapse.DiscardLogger), synapse.WithEnv(synapse.NewEnv(nil)))
	data, _ := json.Marshal(benchInput)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Execute(ctx, benchAction, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is what the executor is measured against: encoding/json
// plus go-playground/validator and nothing else.
func BenchmarkFloor(b *testing.B) {
	v := validator.New()
	data, _ := json.Marshal(benchInput)
	b.Run("map", func(b *testing.B) {
		// The same input as BenchmarkLocalExecute: a map must go through JSON
		// to reach the struct.
		b.ReportAllocs()
		for b.Loop() {
			raw, err := json.Marshal(benchInput)
			if err != nil {
				b.Fatal(err)
			}
			var p benchParams
			if err := json.Unmarshal(raw, &p); err != nil {
				b.Fatal(err)
			}
			if err := v.Struct(&p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p benchParams
			if err := json.Unmarshal(data, &p); err != nil {
				b.Fatal(err)
			}
			if err := v.Struct(&p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProgressMillion is one op = 1,000,000 SetProgress calls through
// the console logger to a non-terminal writer.
func BenchmarkProgressMillion(b *testing.B) {
	const calls = 1_000_000
	loop := synapse.NewAction("loop", func(ctx *synapse.Context, p map[string]any) (int, error) {
		for i := 1; i <= calls; i++ {
			ctx.SetProgress(i, calls, "train")
		}
		return calls, nil
	})
	ex := synapse.NewLocalExecutor(synapse.WithLogger(synapse.NewConsoleLogger(io.Discard)), synapse.WithEnv(synapse.NewEnv(nil)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Execute(context.Background(), loop, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetricSeriesMillion is one op = 1,000,000 metric-series points
// (Context.LogMetric) through the JSON logger to io.Discard, the wire a
// plugin binary writes; the context keeps every point for Series too.
// "encoder" is the baseline: the same events through encoding/json, what
// each point would cost without the logger's fast path.
func BenchmarkMetricSeriesMillion(b *testing.B) {
	const points = 1_000_000
	run := func(b *testing.B, extra bool) {
		loop := synapse.NewAction("loop", func(ctx *synapse.Context, p map[string]any) (int, error) {
			for i := range points {
				var m map[string]any
				if extra {
					m = map[string]any{"epoch": i}
				}
				ctx.LogMetric("train", "loss", 1/float64(i+1), m)
			}
			return points, nil
		})
		ex := synapse.NewLocalExecutor(synapse.WithLogger(synapse.NewJSONLogger(io.Discard)), synapse.WithEnv(synapse.NewEnv(nil)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ex.Execute(context.Background(), loop, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("point", func(b *testing.B) { run(b, false) })
	b.Run("point+extra", func(b *testing.B) { run(b, true) })
	b.Run("encoder", func(b *testing.B) {
		enc := json.NewEncoder(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			for i := range points {
				e := synapse.Event{Type: synapse.EventMetric, Time: time.Now(), Action: "loop", Category: "train", Key: "loss", Value: 1 / float64(i+1)}
				if err := enc.Encode(e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
