// Package plugintest runs synapse actions in-process for tests and records
// what they reported: result, error, logs, messages, progress (and the
// progress record), metrics and metric series, visualizations and trials.
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
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
)

// Recorder is a synapse.Logger that keeps every event. It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	events  []synapse.Event
	elapsed time.Duration // how long the run took, once done
	done    bool
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

// Series returns the points of the metric series key of category
// (Context.LogMetric), in order.
func (r *Recorder) Series(category, key string) []synapse.MetricPoint {
	var out []synapse.MetricPoint
	for _, e := range r.Events() {
		if e.Type == synapse.EventMetric && e.Category == category && e.Key == key {
			out = append(out, synapse.MetricPoint{Time: e.Time, Value: e.Value, Extra: e.Data})
		}
	}
	return out
}

// Visualization is one image reported with Context.LogVisualization.
type Visualization struct {
	Category, Group string
	Index           int
	// Meta is the metadata given with the image.
	Meta map[string]any
	// Name, ContentType and Image are the file's name, MIME type and bytes.
	Name, ContentType string
	Image             []byte
}

// Visualizations returns the images reported, in order.
func (r *Recorder) Visualizations() []Visualization {
	var out []Visualization
	for _, e := range r.Events() {
		if e.Type != synapse.EventVisualization {
			continue
		}
		v := Visualization{Category: e.Category, Meta: map[string]any{}, Name: e.FileName}
		for k, val := range e.Data {
			switch k {
			case "group":
				v.Group, _ = val.(string)
			case "index":
				v.Index = toInt(val)
			default:
				v.Meta[k] = val
			}
		}
		v.ContentType, v.Image, _ = synapse.DecodeDataURI(e.File)
		out = append(out, v)
	}
	return out
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	}
	return 0
}

// Trials returns the last trials reported with Context.LogTrials, and
// whether any were.
func (r *Recorder) Trials() (synapse.Trials, bool) {
	var last map[string]any
	for _, e := range r.Events() {
		if e.Type == synapse.EventTrials {
			last = e.Data
		}
	}
	if last == nil {
		return synapse.Trials{}, false
	}
	return trialsOf(last)
}

// trialsOf reads the Data of a trials event, as the context built it or as
// it came back from JSON. Values are kept as they are (NaN included).
func trialsOf(data map[string]any) (synapse.Trials, bool) {
	t := synapse.Trials{Trials: map[string]map[string]any{}}
	rows, ok := data["trials"].(map[string]any)
	if !ok {
		return synapse.Trials{}, false
	}
	for id, row := range rows {
		r, ok := row.(map[string]any)
		if !ok {
			return synapse.Trials{}, false
		}
		t.Trials[id] = r
	}
	strs := func(v any) []string {
		var out []string
		switch l := v.(type) {
		case []string:
			out = append(out, l...)
		case []any:
			for _, x := range l {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	t.Base, t.Hyperparameters, t.Metrics = strs(data["base"]), strs(data["hyperparameters"]), strs(data["metrics"])
	t.BestTrial, _ = data["best_trial"].(string)
	return t, true
}

// ProgressRecord returns the progress record built from the recorded
// events, as a caller of a job would rebuild it (synapse.ProgressTracker);
// after Run it has the run's time_elapsed.
func (r *Recorder) ProgressRecord() synapse.ProgressRecord {
	t := synapse.NewProgressTracker()
	for _, e := range r.Events() {
		t.Handle(e)
	}
	r.mu.Lock()
	elapsed, done := r.elapsed, r.done
	r.mu.Unlock()
	if done {
		t.Finish(elapsed)
	}
	return t.Record()
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
	start := time.Now()
	v, err := synapse.NewLocalExecutor(cfg...).Execute(ctx, action, params)
	rec.mu.Lock()
	rec.elapsed, rec.done = time.Since(start), true
	rec.mu.Unlock()
	return &Result{Recorder: rec, Value: v, Err: err}
}
