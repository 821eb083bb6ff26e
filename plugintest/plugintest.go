// Package plugintest runs synapse actions in-process for tests and records
// what they reported: result, error, logs, messages, progress and metrics.
//
//	res := plugintest.Run(t, Train, map[string]any{"epochs": 3})
//	if res.Err != nil { t.Fatal(res.Err) }
//	if got := res.Metrics("training")["final_loss"]; got == nil { ... }
package plugintest

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
)

// Recorder is a synapse.Logger that keeps every event. It is safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []synapse.Event
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Handle records e, copying its data.
func (r *Recorder) Handle(e synapse.Event) {
	e.Data = maps.Clone(e.Data)
	e.Values = maps.Clone(e.Values)
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns every recorded event, in order.
func (r *Recorder) Events() []synapse.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *Recorder) filter(keep func(synapse.Event) bool) []synapse.Event {
	var out []synapse.Event
	for _, e := range r.Events() {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Logs returns the structured log events (Context.Log and slog records
// with attributes). With names, only events with one of those names.
func (r *Recorder) Logs(names ...string) []synapse.Event {
	return r.filter(func(e synapse.Event) bool {
		return e.Type == synapse.EventLog && (len(names) == 0 || slices.Contains(names, e.Event))
	})
}

// Messages returns the text of every message, in order, optionally only
// those at one of levels.
func (r *Recorder) Messages(levels ...synapse.Level) []string {
	var out []string
	for _, e := range r.Events() {
		if e.Type == synapse.EventMessage && (len(levels) == 0 || slices.Contains(levels, e.Level)) {
			out = append(out, e.Message)
		}
	}
	return out
}

// Progress returns the progress events of category, in order.
func (r *Recorder) Progress(category string) []synapse.Event {
	return r.filter(func(e synapse.Event) bool {
		return e.Type == synapse.EventProgress && e.Category == category
	})
}

// LastPercent returns the last reported percent of category, and whether
// any progress was reported there.
func (r *Recorder) LastPercent(category string) (float64, bool) {
	p := r.Progress(category)
	if len(p) == 0 {
		return 0, false
	}
	return p[len(p)-1].Percent, true
}

// Metrics returns the cumulative metrics of category (nil if none).
func (r *Recorder) Metrics(category string) map[string]any {
	var last map[string]any
	for _, e := range r.Events() {
		if e.Type == synapse.EventMetrics && e.Category == category {
			last = e.Values
		}
	}
	return maps.Clone(last)
}

// Categories returns the categories that reported progress or metrics, in
// order of first use.
func (r *Recorder) Categories() []string {
	var out []string
	for _, e := range r.Events() {
		if (e.Type == synapse.EventProgress || e.Type == synapse.EventMetrics) && !slices.Contains(out, e.Category) {
			out = append(out, e.Category)
		}
	}
	return out
}

// Result is what a run returned and reported.
type Result struct {
	*Recorder
	// Value is the action's result; nil if it failed.
	Value any
	// Err is the run's error: nil, *synapse.ValidationError or *synapse.ExecutionError.
	Err error
}

// Decode stores the result in v, through JSON, as a client of the action
// would see it.
func (r *Result) Decode(v any) error {
	b, err := json.Marshal(r.Value)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Run executes action with params in the test's goroutine and returns what
// happened. The environment is empty unless synapse.WithEnv is given, so
// tests do not depend on the machine's. With go test -v the events are also
// written to the test log.
func Run(t testing.TB, action synapse.Action, params any, opts ...synapse.Option) *Result {
	t.Helper()
	var echo synapse.Logger
	if testing.Verbose() {
		echo = synapse.NewConsoleLogger(t.Output())
	}
	return run(t.Context(), action, params, opts, echo)
}

// RunContext is Run for code without a testing.TB, or with a context of the
// test's own (for example one it cancels).
func RunContext(ctx context.Context, action synapse.Action, params any, opts ...synapse.Option) *Result {
	return run(ctx, action, params, opts, nil)
}

func run(ctx context.Context, action synapse.Action, params any, opts []synapse.Option, echo synapse.Logger) *Result {
	rec := NewRecorder()
	var logger synapse.Logger = rec
	if echo != nil {
		logger = synapse.MultiLogger(rec, echo)
	}
	cfg := append([]synapse.Option{synapse.WithEnv(synapse.NewEnv(nil))}, opts...)
	cfg = append(cfg, synapse.WithLogger(logger))
	v, err := synapse.NewLocalExecutor(cfg...).Execute(ctx, action, params)
	return &Result{Recorder: rec, Value: v, Err: err}
}
