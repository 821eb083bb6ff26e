// Package executortest is the conformance suite every execution mode
// passes, like go-cloud's drivertest: the same actions (Actions), served
// in-process or by the plugin at PluginDir, must give the same results,
// typed errors, events and environment through any synapse.Executor.
//
//	func TestConformance(t *testing.T) {
//		executortest.Run(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
//			set, err := synapse.NewActionSet(executortest.Actions(), opts...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return set
//		})
//	}
//
// The suite assumes the executor's runs happen on this machine (it checks
// that cancellation reached the action through a file the action writes).
package executortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

// NewExecutor returns an executor of Actions (or of the plugin at
// PluginDir) configured with opts. The suite calls it once per case.
type NewExecutor func(t *testing.T, opts ...synapse.Option) synapse.Executor

// Timeout bounds each case; cluster modes take seconds per run.
const Timeout = 3 * time.Minute

// Limits are what a mode cannot do by design. The suite checks what the
// mode does instead of skipping those cases.
type Limits struct {
	// NoEnv: WithEnv cannot reach the action, because where the run goes
	// sets its environment (remote mode: the backend gives a job config.yaml
	// env of the release). EnvLayering then runs without WithEnv and checks
	// the action sees config.yaml env.
	NoEnv bool
	// NoJobID: the mode names its jobs itself (remote mode: the backend's
	// job UUID), so WithJobID is not given. JobID then needs a
	// synapse.Submitter and checks the action sees the ID of the job
	// Submit returned.
	NoJobID bool
}

// Run runs the conformance cases as subtests of t.
func Run(t *testing.T, newExecutor NewExecutor) { RunLimited(t, newExecutor, Limits{}) }

// RunLimited runs the conformance cases as subtests of t, for a mode with
// limits.
func RunLimited(t *testing.T, newExecutor NewExecutor, limits Limits) {
	cases := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, newExecutor NewExecutor)
	}{
		{"ResultRoundTrip", testResults},
		{"ValidationError", testValidation},
		{"ActionNotFound", testNotFound},
		{"ExecutionError", testExecutionError},
		{"Panic", testPanic},
		{"Cancellation", testCancellation},
		{"Deadline", testDeadline},
		{"Events", testEvents},
		{"Reporting", testReporting},
		{"EnvLayering", func(t *testing.T, ctx context.Context, n NewExecutor) { testEnv(t, ctx, n, limits.NoEnv) }},
		{"JobID", func(t *testing.T, ctx context.Context, n NewExecutor) { testJobID(t, ctx, n, limits.NoJobID) }},
		{"Concurrent", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), Timeout)
			defer cancel()
			c.fn(t, ctx, newExecutor)
		})
	}
}

// jsonEqual reports whether got encodes to the same JSON as want (results
// that crossed a process boundary come back decoded from JSON).
func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("result %#v cannot be encoded: %v", got, err)
	}
	var g, w any
	_ = json.Unmarshal(b, &g)
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("result = %s, want %s", gb, wb)
	}
}

func testResults(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	ex := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger))
	for _, tt := range []struct {
		action string
		params any
		want   string
	}{
		{"echo", map[string]any{"n": 3, "text": "abc"}, `{"n":3,"text":"abc"}`},
		{"echo", json.RawMessage(`{"n": 2}`), `{"n":2,"text":"hi"}`}, // a default filled in
		{"echo", nil, `{"n":1,"text":"hi"}`},
		{"scalar", nil, `42`},
		{"wrapped", nil, `{"result":"ok"}`},
	} {
		got, err := ex.Run(ctx, tt.action, tt.params)
		if err != nil {
			t.Fatalf("Run(%s, %v): %v", tt.action, tt.params, err)
		}
		jsonEqual(t, got, tt.want)
	}
}

func testValidation(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	rec := plugintest.NewRecorder()
	ex := newExecutor(t, synapse.WithLogger(rec))
	_, err := ex.Run(ctx, "echo", map[string]any{"n": 0, "extra": true})
	var ve *synapse.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, synapse.ErrValidation) {
		t.Fatalf("error = %v (%T), want a *synapse.ValidationError", err, err)
	}
	fields := make([]string, len(ve.Fields))
	for i, f := range ve.Fields {
		fields[i] = f.String()
	}
	if ve.Action != "echo" || !slices.Contains(fields, "n: must be >= 1 (got 0)") || !slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "extra: unknown field") }) {
		t.Errorf("validation error of %q with fields %q", ve.Action, fields)
	}
	if logs := rec.Logs("started"); len(logs) != 0 {
		t.Errorf("the action ran with invalid params: %+v", logs)
	}
}

func testNotFound(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	ex := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger))
	_, err := ex.Run(ctx, "ecoh", nil)
	var ne *synapse.ActionNotFoundError
	if !errors.As(err, &ne) || !errors.Is(err, synapse.ErrActionNotFound) {
		t.Fatalf("error = %v (%T), want a *synapse.ActionNotFoundError", err, err)
	}
	if ne.Action != "ecoh" || ne.Suggestion != "echo" || !slices.Contains(ne.Available, "echo") || !slices.Contains(ne.Available, "wait") {
		t.Errorf("not-found error %+v", ne)
	}
}

func testExecutionError(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	ex := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger))
	_, err := ex.Run(ctx, "fail", nil)
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || !errors.Is(err, synapse.ErrExecution) {
		t.Fatalf("error = %v (%T), want a *synapse.ExecutionError", err, err)
	}
	if xe.Action != "fail" || !strings.Contains(xe.Err.Error(), "disk full") || xe.Panicked() {
		t.Errorf("execution error %+v", xe)
	}
}

func testPanic(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	ex := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger))
	_, err := ex.Run(ctx, "crash", nil)
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || !xe.Panicked() || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("error = %v, want an *synapse.ExecutionError for a panic", err)
	}
	if !strings.Contains(xe.Stack, "goroutine") {
		t.Errorf("the panic's stack was lost: %q", xe.Stack)
	}
}

func testCancellation(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	mark := filepath.Join(t.TempDir(), "cancelled")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := synapse.LoggerFunc(func(e synapse.Event) {
		if e.Type == synapse.EventLog && e.Event == "started" {
			cancel()
		}
	})
	ex := newExecutor(t, synapse.WithLogger(started))
	_, err := ex.Run(runCtx, "wait", map[string]any{"mark": mark, "seconds": 120})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want one matching context.Canceled", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run was not cancelled in time")
	}
	// The action saw the cancellation (it may finish just after Run returns).
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, err := os.ReadFile(mark)
		if err == nil && string(b) == "cancelled" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the action did not see the cancellation: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a file the action writes
	}
}

// expiring is a context whose deadline passes when expire is called, so a
// deadline can be made to pass once the action has started, in any mode.
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func (c *expiring) Done() <-chan struct{} { return c.done }

func (c *expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *expiring) expire() { c.once.Do(func() { close(c.done) }) }

func testDeadline(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	mark := filepath.Join(t.TempDir(), "cancelled")
	runCtx := &expiring{Context: ctx, done: make(chan struct{})}
	started := synapse.LoggerFunc(func(e synapse.Event) {
		if e.Type == synapse.EventLog && e.Event == "started" {
			runCtx.expire()
		}
	})
	ex := newExecutor(t, synapse.WithLogger(started))
	_, err := ex.Run(runCtx, "wait", map[string]any{"mark": mark, "seconds": 120})
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v (%T), want an *synapse.ExecutionError matching context.DeadlineExceeded only", err, err)
	}
	if xe.Action != "wait" {
		t.Errorf("the error names action %q, want wait", xe.Action)
	}
}

func testEvents(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	rec := plugintest.NewRecorder()
	ex := newExecutor(t, synapse.WithLogger(rec))
	if _, err := ex.Run(ctx, "report", nil); err != nil {
		t.Fatal(err)
	}
	if logs := rec.Logs("reported"); len(logs) != 1 || fmt.Sprint(logs[0].Data["k"]) != "1" || logs[0].Action != "report" {
		t.Errorf("log events = %+v", logs)
	}
	if msgs := rec.Messages(synapse.LevelSuccess); !slices.Contains(msgs, "reporting done") {
		t.Errorf("success messages = %q", msgs)
	}
	if p, ok := rec.LastPercent("work"); !ok || p != 100 {
		t.Errorf("progress of work ended at %v (%v)", p, ok)
	}
	if m := rec.Metrics("train"); fmt.Sprint(m["loss"]) != "0.5" {
		t.Errorf("metrics of train = %v", m)
	}
}

// testReporting runs the "context" action and checks that every
// reporting call arrives, and that the progress record rebuilt from the
// events the caller received is the one the action saw.
func testReporting(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	rec := plugintest.NewRecorder()
	tracker := synapse.NewProgressTracker()
	ex := newExecutor(t, synapse.WithLogger(synapse.MultiLogger(rec, tracker)), synapse.WithLanguage("ko"))
	out, err := ex.Run(ctx, "context", nil)
	if err != nil {
		t.Fatal(err)
	}
	var res ContextResult
	b, _ := json.Marshal(out)
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("decode result %s: %v", b, err)
	}
	if res.Language != "ko" {
		t.Errorf("language in the action = %q, want ko (WithLanguage)", res.Language)
	}
	if msgs := rec.Messages(synapse.LevelSuccess); !slices.Contains(msgs, "평가 완료") {
		t.Errorf("success messages = %q, want the Korean text", msgs)
	}
	if msgs := rec.Messages(synapse.LevelDanger); !slices.Equal(msgs, []string{"accuracy below 90%"}) {
		t.Errorf("danger messages = %q", msgs)
	}
	if msgs := rec.Messages(synapse.LevelCritical); !slices.Equal(msgs, []string{"critical check"}) {
		t.Errorf("critical messages = %q", msgs)
	}

	// The record: what the caller rebuilt equals what the action saw
	// (times aside: the caller's clock and rounding differ).
	got, want := normalize(tracker.Record()), normalize(res.Progress)
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("progress record rebuilt by the caller:\n%s\nthe action's:\n%s", gb, wb)
	}
	if want.Current.Overall != 100 || want.Steps["train"].Proportion != 67.5 || want.Steps["evaluate"].Proportion != 10 ||
		want.Steps["optional"].Status != "failed" || *want.Steps["evaluate"].Order != 2 {
		b, _ := json.Marshal(want)
		t.Errorf("record = %s; want overall 100, train 67.5%%, evaluate 10%% (order 2), optional failed", b)
	}

	loss := rec.Series("train", "loss")
	if len(loss) != 5 {
		t.Fatalf("train/loss has %d points, want 5", len(loss))
	}
	for i, p := range loss {
		if p.Value != 1/float64(i+1) || fmt.Sprint(p.Extra["epoch"]) != fmt.Sprint(i) {
			t.Errorf("point %d = %+v", i, p)
		}
	}
	vis := rec.Visualizations()
	if len(vis) != 1 || vis[0].Group != "predictions" || vis[0].Index != 0 || fmt.Sprint(vis[0].Meta["iou"]) != "0.75" ||
		vis[0].ContentType != "image/png" || !slices.Equal(vis[0].Image, PNG) || vis[0].Category != "val" {
		t.Errorf("visualizations = %+v", vis)
	}
	if logs := rec.Logs("confusion"); len(logs) != 1 || logs[0].FileName != "cm.png" {
		t.Errorf("log events with a file = %+v", logs)
	} else if ct, data, err := synapse.DecodeDataURI(logs[0].File); err != nil || ct != "image/png" || !slices.Equal(data, PNG) {
		t.Errorf("file = %s, %d bytes, %v", ct, len(data), err)
	}
	if tr, ok := rec.Trials(); !ok || tr.BestTrial != "t2" || len(tr.Trials) != 2 || fmt.Sprint(tr.Trials["t1"]["lr"]) != "0.1" {
		t.Errorf("trials = %+v, %v", tr, ok)
	}
}

// normalize drops the times of a progress record.
func normalize(r synapse.ProgressRecord) synapse.ProgressRecord {
	for name, s := range r.Steps {
		s.TimeRemaining = nil
		r.Steps[name] = s
	}
	r.TimeRemaining, r.Current.TimeRemaining, r.Current.TimeElapsed = nil, nil, nil
	return r
}

func testEnv(t *testing.T, ctx context.Context, newExecutor NewExecutor, noEnv bool) {
	env := synapse.NewEnv(map[string]any{"LAYER": "option", "FROM_OPTION": "x"})
	opts := []synapse.Option{synapse.WithLogger(synapse.DiscardLogger)}
	if !noEnv {
		opts = append(opts, synapse.WithEnv(env))
	}
	ex := newExecutor(t, opts...)
	got, err := ex.Run(ctx, "env", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := got.(map[string]string)
	if m == nil {
		b, _ := json.Marshal(got)
		_ = json.Unmarshal(b, &m)
	}
	if noEnv {
		// config.yaml env reaches the action.
		if m["LAYER"] != "config" || m["FROM_CONFIG"] != "yes" || m["FROM_OPTION"] != "" {
			t.Errorf("env seen by the action = %v, want config.yaml env (LAYER=config, FROM_CONFIG=yes)", m)
		}
		return
	}
	// WithEnv reaches the action and wins over config.yaml env (LAYER:
	// config), which an executor of the plugin directory layers under it.
	if m["LAYER"] != "option" || m["FROM_OPTION"] != "x" || (m["FROM_CONFIG"] != "" && m["FROM_CONFIG"] != "yes") {
		t.Errorf("env seen by the action = %v", m)
	}
}

func testJobID(t *testing.T, ctx context.Context, newExecutor NewExecutor, noJobID bool) {
	if noJobID {
		sub, ok := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger)).(synapse.Submitter)
		if !ok {
			t.Fatal("a mode that names its jobs must be a synapse.Submitter, so its callers learn the job's ID")
		}
		job, err := sub.Submit(ctx, "job", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := job.Follow(ctx, synapse.DiscardLogger); err != nil {
			t.Fatal(err)
		}
		got, err := job.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if job.ID() == "" {
			t.Fatal("the job has no ID")
		}
		jsonEqual(t, got, `{"job_id":"`+job.ID()+`"}`)
		return
	}
	id := fmt.Sprintf("conformance-%d", time.Now().UnixNano())
	ex := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger), synapse.WithJobID(id))
	got, err := ex.Run(ctx, "job", nil)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, `{"job_id":"`+id+`"}`)
}

func testConcurrent(t *testing.T, ctx context.Context, newExecutor NewExecutor) {
	ex := newExecutor(t, synapse.WithLogger(synapse.DiscardLogger))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			got, err := ex.Run(ctx, "echo", map[string]any{"n": i + 1, "text": fmt.Sprint("run ", i)})
			if err == nil {
				b, _ := json.Marshal(got)
				if want := fmt.Sprintf(`{"n":%d,"text":"run %d"}`, i+1, i); string(b) != want {
					err = fmt.Errorf("result %s, want %s", b, want)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d of 4 at once: %v", i, err)
		}
	}
}
