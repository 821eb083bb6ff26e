package synapse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

type trainParams struct {
	Epochs    int     `json:"epochs" default:"10" validate:"min=1,max=1000"`
	LR        float64 `json:"lr" default:"0.01" validate:"gt=0"`
	Optimizer string  `json:"optimizer" default:"adam" validate:"oneof=adam sgd"`
}

type trainResult struct {
	Epochs    int     `json:"epochs"`
	LR        float64 `json:"lr"`
	Optimizer string  `json:"optimizer"`
}

// counted returns an action that echoes its params and counts its runs.
func counted(runs *atomic.Int64) synapse.Action {
	return synapse.NewAction("train", func(ctx *synapse.Context, p trainParams) (trainResult, error) {
		runs.Add(1)
		return trainResult(p), nil
	}, synapse.WithDescription("Train a model"))
}

func TestExecuteParamForms(t *testing.T) {
	var runs atomic.Int64
	action := counted(&runs)
	want := trainResult{Epochs: 3, LR: 0.01, Optimizer: "sgd"}
	tests := []struct {
		name   string
		params any
		want   trainResult
	}{
		{"map", map[string]any{"epochs": 3, "optimizer": "sgd"}, want},
		{"raw message", json.RawMessage(`{"epochs":3,"optimizer":"sgd"}`), want},
		{"bytes", []byte(`{"epochs":3,"optimizer":"sgd"}`), want},
		{"string", `{"epochs":3,"optimizer":"sgd"}`, want},
		{"typed value", trainParams{Epochs: 3, LR: 0.01, Optimizer: "sgd"}, want},
		{"typed pointer", &trainParams{Epochs: 3, LR: 0.01, Optimizer: "sgd"}, want},
		{"nil means defaults", nil, trainResult{Epochs: 10, LR: 0.01, Optimizer: "adam"}},
		{"empty object means defaults", map[string]any{}, trainResult{Epochs: 10, LR: 0.01, Optimizer: "adam"}},
		{"other struct through JSON", struct {
			Epochs int `json:"epochs"`
		}{7}, trainResult{Epochs: 7, LR: 0.01, Optimizer: "adam"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := plugintest.Run(t, action, tt.params)
			if res.Err != nil {
				t.Fatalf("Execute: %v", res.Err)
			}
			if got := res.Value.(trainResult); got != tt.want {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := runs.Load(); got != int64(len(tests)) {
		t.Errorf("action ran %d times, want %d", got, len(tests))
	}
}

func TestExecuteValidationErrors(t *testing.T) {
	tests := []struct {
		name   string
		params any
		fields []string // "field: message" of every expected FieldError, in order
	}{
		{"constraint", map[string]any{"epochs": 0}, []string{"epochs: must be >= 1 (got 0)"}},
		{"max", `{"epochs": 5000}`, []string{"epochs: must be <= 1000 (got 5000)"}},
		{"oneof", `{"optimizer": "rmsprop"}`, []string{`optimizer: must be one of adam, sgd (got "rmsprop")`}},
		{"wrong type", `{"epochs": "ten"}`, []string{`epochs: must be an integer (got "ten")`}},
		{"unknown field", `{"epoch": 3}`, []string{`epoch: unknown field (did you mean "epochs"? valid fields: epochs, lr, optimizer)`}},
		{"every failing field", `{"epochs": 0, "lr": -1, "optimizer": "x", "bogus": true}`, []string{
			"bogus: unknown field (valid fields: epochs, lr, optimizer)",
			"epochs: must be >= 1 (got 0)",
			"lr: must be > 0 (got -1)",
			`optimizer: must be one of adam, sgd (got "x")`,
		}},
		{"bad JSON", `{"epochs": 3,}`, []string{"invalid JSON at line 1, column 14: invalid character '}' looking for beginning of object key string"}},
		{"not an object", `[1, 2]`, []string{"params must be a JSON object (got an array)"}},
		{"typed value is validated", trainParams{Epochs: 0, LR: 1, Optimizer: "adam"}, []string{"epochs: must be >= 1 (got 0)"}},
		{"unencodable", map[string]any{"epochs": make(chan int)}, []string{"params cannot be encoded as JSON: json: unsupported type: chan int"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			res := plugintest.Run(t, counted(&runs), tt.params)
			var ve *synapse.ValidationError
			if !errors.As(res.Err, &ve) {
				t.Fatalf("error = %v (%T), want *ValidationError", res.Err, res.Err)
			}
			if !errors.Is(res.Err, synapse.ErrValidation) || errors.Is(res.Err, synapse.ErrExecution) {
				t.Errorf("errors.Is mismatch for %v", res.Err)
			}
			if ve.Action != "train" {
				t.Errorf("Action = %q", ve.Action)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.fields, "\n") {
				t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.fields, "\n"))
			}
			if runs.Load() != 0 {
				t.Error("the action ran despite invalid params")
			}
			if res.Value != nil {
				t.Errorf("result = %v, want nil", res.Value)
			}
		})
	}
}

// checkedParams has a Validate method that checks a rule across fields.
type checkedParams struct {
	Min  int    `json:"min"`
	Max  int    `json:"max"`
	Mode string `json:"mode"`
}

var errNoMode = errors.New("mode is not supported")

func (p *checkedParams) Validate() error {
	switch {
	case p.Mode == "bad":
		return errNoMode
	case p.Mode == "field":
		return synapse.FieldError{Field: "mode", Message: "must not be field"}
	case p.Min > p.Max:
		return &synapse.ValidationError{Fields: []synapse.FieldError{{Field: "min", Message: "must not exceed max"}}}
	}
	return nil
}

func TestValidateMethod(t *testing.T) {
	action := synapse.NewAction("range", func(ctx *synapse.Context, p checkedParams) (int, error) {
		return p.Max - p.Min, nil
	})
	tests := []struct {
		params  string
		want    string
		wantErr error
	}{
		{`{"min": 1, "max": 3}`, "", nil},
		{`{"min": 5, "max": 3}`, "min: must not exceed max", nil},
		{`{"mode": "field"}`, "mode: must not be field", nil},
		{`{"mode": "bad"}`, "mode is not supported", errNoMode},
	}
	for _, tt := range tests {
		res := plugintest.Run(t, action, tt.params)
		if tt.want == "" {
			if res.Err != nil || res.Value != 2 {
				t.Errorf("%s: got %v, %v", tt.params, res.Value, res.Err)
			}
			continue
		}
		var ve *synapse.ValidationError
		if !errors.As(res.Err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].String() != tt.want {
			t.Errorf("%s: error = %v, want one field %q", tt.params, res.Err, tt.want)
		}
		if tt.wantErr != nil && !errors.Is(res.Err, tt.wantErr) {
			t.Errorf("%s: errors.Is(err, %v) = false", tt.params, tt.wantErr)
		}
	}
}

var errDiskFull = errors.New("disk full")

func TestExecuteActionErrors(t *testing.T) {
	fail := synapse.NewAction("fail", func(ctx *synapse.Context, p map[string]any) (any, error) {
		return nil, fmt.Errorf("save checkpoint: %w", errDiskFull)
	})
	ex := synapse.NewLocalExecutor(synapse.WithJobID("job-7"), synapse.WithLogger(synapse.DiscardLogger))
	_, err := ex.Execute(context.Background(), fail, nil)
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) {
		t.Fatalf("error = %v (%T), want *ExecutionError", err, err)
	}
	if !errors.Is(err, errDiskFull) || !errors.Is(err, synapse.ErrExecution) || errors.Is(err, synapse.ErrValidation) {
		t.Errorf("errors.Is chain broken: %v", err)
	}
	if xe.Action != "fail" || xe.JobID != "job-7" || xe.Stack != "" || xe.Panicked() {
		t.Errorf("ExecutionError = %+v", xe)
	}
	if want := `run action "fail": save checkpoint: disk full`; err.Error() != want {
		t.Errorf("message = %q, want %q", err.Error(), want)
	}
}

var cheese []int

func explode(n int) int {
	return cheese[n] // index out of range: a runtime panic
}

func TestExecutePanics(t *testing.T) {
	tests := []struct {
		name    string
		fn      func()
		message string
		is      error
	}{
		{"string", func() { panic("out of cheese") }, `run action "crash": panic: out of cheese`, nil},
		{"error value", func() { panic(errDiskFull) }, `run action "crash": panic: disk full`, errDiskFull},
		{"runtime error", func() { explode(1) }, `run action "crash": panic: runtime error: index out of range [1] with length 0`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crash := synapse.NewAction("crash", func(ctx *synapse.Context, p map[string]any) (any, error) {
				tt.fn()
				return "unreachable", nil
			})
			res := plugintest.Run(t, crash, nil)
			var xe *synapse.ExecutionError
			if !errors.As(res.Err, &xe) {
				t.Fatalf("error = %v, want *ExecutionError", res.Err)
			}
			if res.Err.Error() != tt.message {
				t.Errorf("message = %q, want %q", res.Err.Error(), tt.message)
			}
			if !xe.Panicked() {
				t.Error("Panicked() = false")
			}
			var pe *synapse.PanicError
			if !errors.As(res.Err, &pe) || pe.Value == nil {
				t.Errorf("no PanicError with the value in %v", res.Err)
			}
			if !strings.Contains(xe.Stack, "executor_test.go") {
				t.Errorf("stack does not show the panicking code:\n%s", xe.Stack)
			}
			if tt.is != nil && !errors.Is(res.Err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
		})
	}
	// The process survived: another run works.
	var runs atomic.Int64
	if res := plugintest.Run(t, counted(&runs), nil); res.Err != nil || runs.Load() != 1 {
		t.Fatalf("run after panics: %v", res.Err)
	}
}

func TestExecuteCancellation(t *testing.T) {
	t.Run("cancelled before start does not run", func(t *testing.T) {
		var runs atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := plugintest.RunContext(ctx, counted(&runs), nil)
		if !errors.Is(res.Err, context.Canceled) || !errors.Is(res.Err, synapse.ErrExecution) {
			t.Fatalf("error = %v, want ExecutionError wrapping context.Canceled", res.Err)
		}
		if runs.Load() != 0 {
			t.Error("the action ran")
		}
	})
	t.Run("invalid params win over cancellation", func(t *testing.T) {
		var runs atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := plugintest.RunContext(ctx, counted(&runs), `{"epochs": -1}`)
		if !errors.Is(res.Err, synapse.ErrValidation) {
			t.Fatalf("error = %v, want a validation error", res.Err)
		}
	})
	t.Run("deadline reaches the action", func(t *testing.T) {
		wait := synapse.NewAction("wait", func(ctx *synapse.Context, p map[string]any) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		res := plugintest.RunContext(ctx, wait, nil)
		var xe *synapse.ExecutionError
		if !errors.As(res.Err, &xe) || !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want ExecutionError wrapping DeadlineExceeded", res.Err)
		}
	})
	t.Run("cancel during run with an unrelated error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		stop := synapse.NewAction("stop", func(c *synapse.Context, p map[string]any) (any, error) {
			cancel()
			return nil, errDiskFull
		})
		res := plugintest.RunContext(ctx, stop, nil)
		if !errors.Is(res.Err, context.Canceled) || !errors.Is(res.Err, errDiskFull) {
			t.Fatalf("error = %v, want both context.Canceled and the action's error", res.Err)
		}
	})
}

func TestExecuteContextValues(t *testing.T) {
	type key struct{}
	var got struct {
		job, action, region string
		value               any
	}
	probe := synapse.NewAction("probe", func(ctx *synapse.Context, p map[string]any) (bool, error) {
		got.job, got.action = ctx.JobID(), ctx.ActionName()
		got.region = ctx.Env().GetString("REGION", "none")
		got.value = ctx.Value(key{})
		return true, nil
	})
	ctx := context.WithValue(context.Background(), key{}, "carried")
	ex := synapse.NewLocalExecutor(
		synapse.WithJobID("j-1"),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"REGION": "eu"})),
		synapse.WithLogger(synapse.DiscardLogger),
	)
	if _, err := ex.Execute(ctx, probe, nil); err != nil {
		t.Fatal(err)
	}
	if got.job != "j-1" || got.action != "probe" || got.region != "eu" || got.value != "carried" {
		t.Errorf("context saw %+v", got)
	}
}

func TestExecuteNilAction(t *testing.T) {
	_, err := synapse.NewLocalExecutor(synapse.WithLogger(synapse.DiscardLogger)).Execute(context.Background(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "action is nil") {
		t.Fatalf("error = %v", err)
	}
}

// TestExecuteConcurrent runs many actions at once on one executor and one
// logger: every run must see only its own metrics and progress state.
func TestExecuteConcurrent(t *testing.T) {
	type p struct {
		ID int `json:"id"`
	}
	action := synapse.NewAction("worker", func(ctx *synapse.Context, p p) (int, error) {
		for i := 0; i <= 10; i++ {
			ctx.SetProgress(i, 10, "work")
			ctx.SetMetrics(map[string]any{fmt.Sprintf("m%d", i%3): p.ID}, "stats")
		}
		return p.ID, nil
	})
	rec := plugintest.NewRecorder()
	ex := synapse.NewLocalExecutor(synapse.WithLogger(rec), synapse.WithEnv(synapse.NewEnv(nil)))
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			got, err := ex.Execute(context.Background(), action, map[string]any{"id": i})
			if err != nil {
				errs <- err
			} else if got != i {
				errs <- fmt.Errorf("run %d returned %v", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	metrics := 0
	for _, e := range rec.Events() {
		if e.Type != synapse.EventMetrics {
			continue
		}
		metrics++
		var id any
		for _, v := range e.Values {
			if id == nil {
				id = v
			} else if v != id {
				t.Fatalf("metrics of two runs mixed: %v", e.Values)
			}
		}
	}
	if metrics != n*11 {
		t.Errorf("%d metrics events, want %d", metrics, n*11)
	}
	if got := len(rec.Progress("work")); got != n*11 {
		t.Errorf("%d progress events, want %d", got, n*11)
	}
}

func TestActionMetadata(t *testing.T) {
	var runs atomic.Int64
	a := counted(&runs)
	if a.Name() != "train" || a.Description() != "Train a model" {
		t.Errorf("Name, Description = %q, %q", a.Name(), a.Description())
	}
	var schema struct {
		Title       string                    `json:"title"`
		Description string                    `json:"description"`
		Properties  map[string]map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(a.Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Title != "train" || schema.Description != "Train a model" || schema.Properties["epochs"]["default"] != 10.0 {
		t.Errorf("schema = %s", a.Schema())
	}
	if err := a.Decode(`{"epochs": 0}`); !errors.Is(err, synapse.ErrValidation) {
		t.Errorf("Decode = %v, want a validation error", err)
	}
	if err := a.Decode(nil); err != nil {
		t.Errorf("Decode(nil) = %v", err)
	}
	if runs.Load() != 0 {
		t.Error("Decode ran the action")
	}
}

func TestNewActionPanicsOnBadDefault(t *testing.T) {
	type bad struct {
		N int `json:"n" default:"many"`
	}
	defer func() {
		v := recover()
		if v == nil || !strings.Contains(fmt.Sprint(v), `field n: invalid default "many"`) {
			t.Errorf("panic = %v", v)
		}
	}()
	synapse.NewAction("bad", func(ctx *synapse.Context, p bad) (any, error) { return nil, nil })
}

func TestActionNotFoundError(t *testing.T) {
	err := error(&synapse.ActionNotFoundError{Action: "trian", Available: []string{"infer", "train"}, Suggestion: "train"})
	if !errors.Is(err, synapse.ErrActionNotFound) {
		t.Error("errors.Is(err, ErrActionNotFound) = false")
	}
	want := `find action "trian": no such action (did you mean "train"?); available: infer, train`
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err.Error(), want)
	}
	empty := &synapse.ActionNotFoundError{Action: "x"}
	if !strings.HasSuffix(empty.Error(), "there are no actions") {
		t.Errorf("message = %q", empty.Error())
	}
}

func TestExecutionErrorText(t *testing.T) {
	inner := errors.New("job j-1 was stopped")
	for _, tt := range []struct {
		err  *synapse.ExecutionError
		want string
	}{
		{&synapse.ExecutionError{Action: "train", JobID: "j-1", Err: inner}, `run action "train": job j-1 was stopped`},
		{&synapse.ExecutionError{JobID: "j-1", Err: inner}, `run job j-1: job j-1 was stopped`},
		{&synapse.ExecutionError{Err: inner}, `run action: job j-1 was stopped`},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
