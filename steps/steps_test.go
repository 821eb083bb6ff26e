package steps_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
	"github.com/synapse-sdk/synapse-go/steps"
)

// stepRun is what running an orchestrator inside an action produced.
type stepRun struct {
	summary steps.Summary
	err     error
	*plugintest.Result
}

// runSteps runs steps with an Orchestrator inside an action, through
// plugintest, and returns the summary, the orchestrator's error and what
// was reported. before, if not nil, runs first with the action's synapse.Context.
func runSteps(t *testing.T, before func(*synapse.Context) *synapse.Context, list ...steps.Step) stepRun {
	t.Helper()
	reg := steps.NewRegistry()
	reg.Register(list...)
	var out stepRun
	action := synapse.NewAction("steps", func(ctx *synapse.Context, _ struct{}) (string, error) {
		if before != nil {
			ctx = before(ctx)
		}
		out.summary, out.err = steps.NewOrchestrator(reg).Run(ctx)
		return "done", nil
	})
	out.Result = plugintest.Run(t, action, nil)
	if out.Result.Err != nil {
		t.Fatalf("action failed: %v", out.Result.Err)
	}
	return out
}

// stepTrace records what steps did, in order: "run:a", "skip?:a", "rollback:a".
type stepTrace struct{ calls []string }

func (tr *stepTrace) add(format string, args ...any) {
	tr.calls = append(tr.calls, fmt.Sprintf(format, args...))
}

// step is a configurable test step that records its calls in a stepTrace.
type recStep struct {
	steps.Base
	name        string
	weight      float64
	tr          *stepTrace
	skip        bool
	result      *steps.Result // nil: Succeeded
	panicValue  any
	rollbackErr error
	rollbackPan any
}

func (s *recStep) Name() string            { return s.name }
func (s *recStep) ProgressWeight() float64 { return s.weight }
func (s *recStep) CanSkip(*steps.Context) bool {
	return s.skip
}

func (s *recStep) Execute(ctx *steps.Context) steps.Result {
	s.tr.add("run:%s", s.name)
	if s.panicValue != nil {
		panic(s.panicValue)
	}
	if s.result != nil {
		return *s.result
	}
	return steps.Result{Success: true, Data: map[string]any{"from": s.name}, RollbackData: map[string]any{"undo": s.name}}
}

func (s *recStep) Rollback(ctx *steps.Context, res steps.Result) error {
	s.tr.add("rollback:%s(undo=%v)", s.name, res.RollbackData["undo"])
	if s.rollbackPan != nil {
		panic(s.rollbackPan)
	}
	return s.rollbackErr
}

func TestOrchestratorRunsStepsInOrder(t *testing.T) {
	tr := &stepTrace{}
	var seen [][]string // names of the results each step saw
	mk := func(name string) steps.Step {
		return steps.New(name, 1, func(ctx *steps.Context) steps.Result {
			tr.add("run:%s", name)
			var names []string
			for _, r := range ctx.Results {
				names = append(names, r.Step)
			}
			seen = append(seen, names)
			if ctx.CurrentStep != name {
				t.Errorf("CurrentStep = %q in step %q", ctx.CurrentStep, name)
			}
			if ctx.Category() != name {
				t.Errorf("Category() = %q in step %q", ctx.Category(), name)
			}
			return steps.Succeeded(map[string]any{"n": len(ctx.Results)})
		})
	}
	r := runSteps(t, nil, mk("download"), mk("convert"), mk("train"))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if want := []string{"run:download", "run:convert", "run:train"}; !slices.Equal(tr.calls, want) {
		t.Errorf("calls = %v, want %v", tr.calls, want)
	}
	if want := [][]string{nil, {"download"}, {"download", "convert"}}; !reflect.DeepEqual(seen, want) {
		t.Errorf("results seen by the steps = %v, want %v", seen, want)
	}
	s := r.summary
	if !s.Success || s.StepsExecuted != 3 || s.StepsTotal != 3 {
		t.Errorf("summary = %+v, want success, 3 executed of 3", s)
	}
	if len(s.Results) != 3 || s.Results[2].Step != "train" || s.Results[2].Data["n"] != 2 {
		t.Errorf("summary results = %+v", s.Results)
	}
}

func TestOrchestratorSkipsSteps(t *testing.T) {
	tests := []struct {
		name         string
		skip         []bool
		wantCalls    []string
		wantExecuted int
	}{
		{"none", []bool{false, false, false}, []string{"run:a", "run:b", "run:c"}, 3},
		{"middle", []bool{false, true, false}, []string{"run:a", "run:c"}, 2},
		{"all", []bool{true, true, true}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &stepTrace{}
			var list []steps.Step
			for i, name := range []string{"a", "b", "c"} {
				list = append(list, &recStep{name: name, weight: 1, tr: tr, skip: tt.skip[i]})
			}
			r := runSteps(t, nil, list...)
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			if !slices.Equal(tr.calls, tt.wantCalls) {
				t.Errorf("calls = %v, want %v", tr.calls, tt.wantCalls)
			}
			if r.summary.StepsExecuted != tt.wantExecuted || r.summary.StepsTotal != 3 || !r.summary.Success {
				t.Errorf("summary = %+v, want success, %d executed of 3", r.summary, tt.wantExecuted)
			}
			for i, res := range r.summary.Results {
				if res.Skipped != tt.skip[i] || !res.Success {
					t.Errorf("result %d = %+v, want Skipped %v and Success", i, res, tt.skip[i])
				}
			}
		})
	}
}

func TestOrchestratorFailureRollsBackInReverse(t *testing.T) {
	errConvert := errors.New("convert: bad format")
	errDisk := errors.New("disk full")
	fail := &steps.Result{Err: errConvert, RollbackData: map[string]any{"undo": "partial-c"}}
	tests := []struct {
		name string
		// steps a, b, c, d; setup configures them.
		setup         func(a, b, c, d *recStep)
		wantStep      string
		wantCalls     []string
		wantExecuted  int
		wantIs        error
		wantMsg       []string
		wantRollbacks int
		wantStack     bool
	}{
		{
			name:         "error",
			setup:        func(a, b, c, d *recStep) { c.result = fail },
			wantStep:     "c",
			wantCalls:    []string{"run:a", "run:b", "run:c", "rollback:c(undo=partial-c)", "rollback:b(undo=b)", "rollback:a(undo=a)"},
			wantExecuted: 3,
			wantIs:       errConvert,
			wantMsg:      []string{`step "c" failed: convert: bad format`},
		},
		{
			name:         "first step fails",
			setup:        func(a, b, c, d *recStep) { a.result = fail },
			wantStep:     "a",
			wantCalls:    []string{"run:a", "rollback:a(undo=partial-c)"},
			wantExecuted: 1,
			wantIs:       errConvert,
		},
		{
			name:         "success false without error",
			setup:        func(a, b, c, d *recStep) { b.result = &steps.Result{} },
			wantStep:     "b",
			wantCalls:    []string{"run:a", "run:b", "rollback:b(undo=<nil>)", "rollback:a(undo=a)"},
			wantExecuted: 2,
			wantMsg:      []string{`step "b" failed: the step returned Success false without an Err`},
		},
		{
			name:         "error despite success",
			setup:        func(a, b, c, d *recStep) { b.result = &steps.Result{Success: true, Err: errConvert} },
			wantStep:     "b",
			wantCalls:    []string{"run:a", "run:b", "rollback:b(undo=<nil>)", "rollback:a(undo=a)"},
			wantExecuted: 2,
			wantIs:       errConvert,
		},
		{
			name:         "skipped steps are not rolled back",
			setup:        func(a, b, c, d *recStep) { b.skip = true; c.result = fail },
			wantStep:     "c",
			wantCalls:    []string{"run:a", "run:c", "rollback:c(undo=partial-c)", "rollback:a(undo=a)"},
			wantExecuted: 2,
			wantIs:       errConvert,
		},
		{
			name:         "panic",
			setup:        func(a, b, c, d *recStep) { c.panicValue = errDisk },
			wantStep:     "c",
			wantCalls:    []string{"run:a", "run:b", "run:c", "rollback:c(undo=<nil>)", "rollback:b(undo=b)", "rollback:a(undo=a)"},
			wantExecuted: 3,
			wantIs:       errDisk, // a panic with an error value: errors.Is reaches it
			wantMsg:      []string{`step "c" failed: panic: disk full`},
			wantStack:    true,
		},
		{
			name: "rollback fails",
			setup: func(a, b, c, d *recStep) {
				c.result = fail
				b.rollbackErr = errDisk
			},
			wantStep:      "c",
			wantCalls:     []string{"run:a", "run:b", "run:c", "rollback:c(undo=partial-c)", "rollback:b(undo=b)", "rollback:a(undo=a)"},
			wantExecuted:  3,
			wantIs:        errConvert, // the original failure is kept
			wantMsg:       []string{`step "c" failed: convert: bad format (and 1 rollback failed: rollback step "b": disk full)`},
			wantRollbacks: 1,
		},
		{
			name: "rollbacks fail and panic",
			setup: func(a, b, c, d *recStep) {
				c.result = fail
				c.rollbackPan = "boom"
				a.rollbackErr = errDisk
			},
			wantStep:      "c",
			wantCalls:     []string{"run:a", "run:b", "run:c", "rollback:c(undo=partial-c)", "rollback:b(undo=b)", "rollback:a(undo=a)"},
			wantExecuted:  3,
			wantIs:        errConvert,
			wantMsg:       []string{`(and 2 rollbacks failed: rollback step "c": panic: boom; rollback step "a": disk full)`},
			wantRollbacks: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &stepTrace{}
			a, b, c, d := &recStep{name: "a", weight: 1, tr: tr}, &recStep{name: "b", weight: 1, tr: tr}, &recStep{name: "c", weight: 1, tr: tr}, &recStep{name: "d", weight: 1, tr: tr}
			tt.setup(a, b, c, d)
			r := runSteps(t, nil, a, b, c, d)
			if !slices.Equal(tr.calls, tt.wantCalls) {
				t.Errorf("calls:\n got %v\nwant %v", tr.calls, tt.wantCalls)
			}
			if r.summary.Success || r.summary.StepsExecuted != tt.wantExecuted || r.summary.StepsTotal != 4 {
				t.Errorf("summary = %+v, want failure with %d executed of 4", r.summary, tt.wantExecuted)
			}
			var se *steps.Error
			if !errors.As(r.err, &se) {
				t.Fatalf("error = %#v, want *Error", r.err)
			}
			if se.Step != tt.wantStep {
				t.Errorf("Error.Step = %q, want %q", se.Step, tt.wantStep)
			}
			if !errors.Is(r.err, steps.ErrFailed) {
				t.Error("errors.Is(err, ErrFailed) = false")
			}
			if tt.wantIs != nil && !errors.Is(r.err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false; err = %v", tt.wantIs, r.err)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(r.err.Error(), m) {
					t.Errorf("error %q does not contain %q", r.err, m)
				}
			}
			if len(se.RollbackErrors) != tt.wantRollbacks {
				t.Errorf("RollbackErrors = %v, want %d", se.RollbackErrors, tt.wantRollbacks)
			}
			if (se.Stack != "") != tt.wantStack {
				t.Errorf("Stack set = %v, want %v", se.Stack != "", tt.wantStack)
			}
			last := r.summary.Results[len(r.summary.Results)-1]
			if last.Step != tt.wantStep || last.Err == nil {
				t.Errorf("last result = %+v, want the failure of %q", last, tt.wantStep)
			}
		})
	}
}

func TestOrchestratorRollbackSeesEarlierRollbackErrors(t *testing.T) {
	errFirst := errors.New("cannot delete")
	var seen []error
	var rollbackCtxErr error
	a := steps.New("a", 1, func(*steps.Context) steps.Result { return steps.Succeeded(nil) },
		steps.WithRollback(func(ctx *steps.Context, _ steps.Result) error {
			seen = append([]error(nil), ctx.Errors...)
			rollbackCtxErr = ctx.Err()
			if ctx.CurrentStep != "a" || ctx.Category() != "a" {
				t.Errorf("rollback of a: CurrentStep %q, Category %q", ctx.CurrentStep, ctx.Category())
			}
			return nil
		}))
	b := steps.New("b", 1, func(*steps.Context) steps.Result { return steps.Failed(errors.New("b broke")) },
		steps.WithRollback(func(*steps.Context, steps.Result) error { return errFirst }))
	r := runSteps(t, nil, a, b)
	if r.err == nil {
		t.Fatal("Run succeeded, want failure")
	}
	if len(seen) != 1 || !errors.Is(seen[0], errFirst) || !strings.Contains(seen[0].Error(), `rollback step "b"`) {
		t.Errorf("ctx.Errors in the rollback of a = %v, want the rollback error of b", seen)
	}
	if rollbackCtxErr != nil {
		t.Errorf("ctx.Err() in rollback = %v, want nil", rollbackCtxErr)
	}
}

func TestOrchestratorCanSkipPanic(t *testing.T) {
	tr := &stepTrace{}
	a := &recStep{name: "a", weight: 1, tr: tr}
	b := steps.New("b", 1, func(*steps.Context) steps.Result {
		tr.add("run:b")
		return steps.Succeeded(nil)
	}, steps.WithSkipCheck(func(*steps.Context) bool { panic("no state") }),
		steps.WithRollback(func(*steps.Context, steps.Result) error {
			tr.add("rollback:b")
			return nil
		}))
	r := runSteps(t, nil, a, b)
	var se *steps.Error
	if !errors.As(r.err, &se) || se.Step != "b" || !strings.Contains(se.Error(), "panic: no state") || se.Stack == "" {
		t.Fatalf("error = %v, want a Error for the panic in b's CanSkip, with stack", r.err)
	}
	// b never executed: only a is rolled back.
	if want := []string{"run:a", "rollback:a(undo=a)"}; !slices.Equal(tr.calls, want) {
		t.Errorf("calls = %v, want %v", tr.calls, want)
	}
	if r.summary.StepsExecuted != 1 {
		t.Errorf("StepsExecuted = %d, want 1", r.summary.StepsExecuted)
	}
}

func TestOrchestratorStopsWhenCancelled(t *testing.T) {
	tr := &stepTrace{}
	var cancel context.CancelFunc
	a := steps.New("a", 1, func(*steps.Context) steps.Result {
		tr.add("run:a")
		cancel()
		return steps.Succeeded(nil)
	}, steps.WithRollback(func(ctx *steps.Context, _ steps.Result) error {
		tr.add("rollback:a ctx.Err=%v", ctx.Err())
		return nil
	}))
	b := &recStep{name: "b", weight: 1, tr: tr}
	r := runSteps(t, func(ctx *synapse.Context) *synapse.Context {
		c, cf := context.WithCancel(ctx)
		cancel = cf
		cctx := *ctx
		cctx.Context = c
		return &cctx
	}, a, b)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", r.err)
	}
	var se *steps.Error
	if errors.As(r.err, &se); se == nil || se.Step != "b" {
		t.Errorf("Error = %+v, want step b (not started)", se)
	}
	if want := []string{"run:a", "rollback:a ctx.Err=<nil>"}; !slices.Equal(tr.calls, want) {
		t.Errorf("calls = %v, want %v", tr.calls, want)
	}
}

func TestOrchestratorProgress(t *testing.T) {
	tests := []struct {
		name        string
		weights     []float64
		skip        int // index of the skipped step, or -1
		fail        int // index of the failing step, or -1
		proportions []float64
		overall     []float64 // overall after each progress event
	}{
		{"weighted", []float64{0.3, 0.2, 0.5}, -1, -1, []float64{30, 20, 50}, []float64{30, 50, 100}},
		{"skipped step counts as done", []float64{0.3, 0.2, 0.5}, 1, -1, []float64{30, 20, 50}, []float64{30, 50, 100}},
		{"largest remainder rounding", []float64{1, 1, 1}, -1, -1, []float64{33.34, 33.33, 33.33}, []float64{33.34, 66.67, 100}},
		{"zero-weight step has no share", []float64{1, 0, 1}, -1, -1, []float64{50, 0, 50}, []float64{50, 50, 100}},
		{"negative and NaN weights count as 0", []float64{1, -5, math.NaN()}, -1, -1, []float64{100, 0, 0}, []float64{100, 100, 100}},
		{"no weight at all: equal shares", []float64{0, 0, 0}, -1, -1, []float64{33.34, 33.33, 33.33}, []float64{33.34, 66.67, 100}},
		{"failure marks the step failed, overall stays", []float64{0.3, 0.2, 0.5}, -1, 1, []float64{30, 20, 50}, []float64{30, 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &stepTrace{}
			var list []steps.Step
			for i, name := range []string{"a", "b", "c"} {
				s := &recStep{name: name, weight: tt.weights[i], tr: tr, skip: i == tt.skip}
				if i == tt.fail {
					s.result = &steps.Result{Err: errors.New("x")}
				}
				list = append(list, s)
			}
			r := runSteps(t, nil, list...)
			pt := synapse.NewProgressTracker()
			var overall []float64
			var plan []synapse.StepInfo
			for _, e := range r.Events() {
				pt.Handle(e)
				switch e.Type {
				case synapse.EventSteps:
					plan = e.Steps
				case synapse.EventProgress:
					overall = append(overall, pt.Record().Current.Overall)
				}
			}
			var props []float64
			for i, s := range plan {
				if s.Order != i || s.Name != []string{"a", "b", "c"}[i] {
					t.Errorf("plan step %d = %+v", i, s)
				}
				props = append(props, s.Proportion)
			}
			if !slices.Equal(props, tt.proportions) {
				t.Errorf("proportions = %v, want %v", props, tt.proportions)
			}
			if !slices.Equal(overall, tt.overall) {
				t.Errorf("overall after each progress event = %v, want %v", overall, tt.overall)
			}
			rec := pt.Record()
			if tt.fail >= 0 {
				name := []string{"a", "b", "c"}[tt.fail]
				if st := rec.Steps[name]; st.Status != "failed" || rec.Current.Step != name {
					t.Errorf("failed step record = %+v, current %+v; want status failed and current", st, rec.Current)
				}
			} else if rec.Current.Step != "c" || *rec.Current.Order != 2 || rec.Current.Percent != 100 {
				t.Errorf("current = %+v, want step c, order 2, 100%%", rec.Current)
			}
		})
	}
}

func TestPlanExplicitProportions(t *testing.T) {
	tests := []struct {
		name string
		in   []steps.Step
		want []float64
	}{
		{"explicit kept, rest by weight", []steps.Step{
			steps.New("a", 1, nil, steps.WithProportion(20)),
			steps.New("b", 3, nil),
			steps.New("c", 1, nil),
		}, []float64{20, 60, 20}},
		{"explicit only, scaled up to 100", []steps.Step{
			steps.New("a", 0, nil, steps.WithProportion(10)),
			steps.New("b", 0, nil, steps.WithProportion(30)),
		}, []float64{25, 75}},
		{"explicit over 100, scaled down; others get nothing", []steps.Step{
			steps.New("a", 0, nil, steps.WithProportion(150)),
			steps.New("b", 0, nil, steps.WithProportion(50)),
			steps.New("c", 5, nil),
		}, []float64{75, 25, 0}},
		{"wrappers pass the proportion on", []steps.Step{
			steps.Logging(steps.Timing(steps.New("a", 0, nil, steps.WithProportion(40)))),
			steps.New("b", 1, nil),
		}, []float64{40, 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := steps.NewRegistry()
			reg.Register(tt.in...)
			var got []float64
			for _, s := range reg.Plan() {
				got = append(got, s.Proportion)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("proportions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanRounding(t *testing.T) {
	for _, n := range []int{1, 3, 7, 201, 202, 300, 3000, 30001} {
		reg := steps.NewRegistry()
		for i := range n {
			reg.Register(steps.New(fmt.Sprintf("s%d", i), 1, nil))
		}
		var sum int
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range reg.Plan() {
			if s.Proportion < 0 {
				t.Fatalf("n=%d: step %s has proportion %v", n, s.Name, s.Proportion)
			}
			sum += int(math.Round(s.Proportion * 100))
			lo, hi = min(lo, s.Proportion), max(hi, s.Proportion)
		}
		if sum != 10000 || hi-lo > 0.011 {
			t.Errorf("n=%d: proportions add up to %v (want 100), range %v–%v (want within a hundredth)", n, float64(sum)/100, lo, hi)
		}
	}
}

func TestDuplicateStepNames(t *testing.T) {
	tr := &stepTrace{}
	r := runSteps(t, nil, &recStep{name: "a", weight: 1, tr: tr}, &recStep{name: "b", weight: 2, tr: tr}, &recStep{name: "a", weight: 1, tr: tr})
	pt := synapse.NewProgressTracker()
	var overall []float64
	for _, e := range r.Events() {
		pt.Handle(e)
		if e.Type == synapse.EventSteps && (len(e.Steps) != 2 || e.Steps[0].Proportion != 50 || e.Steps[1].Proportion != 50) {
			t.Errorf("plan = %+v, want a (50%%, both steps) and b (50%%)", e.Steps)
		}
		if e.Type == synapse.EventProgress {
			overall = append(overall, pt.Record().Current.Overall)
		}
	}
	if want := []float64{25, 75, 100}; !slices.Equal(overall, want) {
		t.Errorf("overall = %v, want %v (the first a is half of a's share)", overall, want)
	}
}

func TestBeforeStepPanicIsNamed(t *testing.T) {
	reg := steps.NewRegistry()
	reg.Register(steps.New("b", 1, nil))
	o := steps.NewOrchestrator(reg)
	o.BeforeStep = func(*steps.Context, string) error { panic("boom") }
	res := plugintest.Run(t, synapse.NewAction("x", func(ctx *synapse.Context, _ struct{}) (any, error) {
		_, err := o.Run(ctx)
		return nil, err
	}), nil)
	var pe *synapse.PanicError
	if !errors.As(res.Err, &pe) || !strings.Contains(res.Err.Error(), `before step "b": panic: boom`) {
		t.Errorf("error = %v, want the hook's panic, named", res.Err)
	}
}

func TestFailedStepMarkedOnce(t *testing.T) {
	s := steps.New("train", 1, func(ctx *steps.Context) steps.Result {
		ctx.SetProgressFailed()
		return steps.Failed(errors.New("diverged"))
	})
	var n int
	r := runSteps(t, nil, s)
	for _, e := range r.Events() {
		if e.Type == synapse.EventProgress && e.Failed {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d failed-progress events, want 1", n)
	}
}

func TestBeforeStep(t *testing.T) {
	tr := &stepTrace{}
	a := &recStep{name: "a", weight: 1, tr: tr}
	b := &recStep{name: "b", weight: 1, tr: tr, skip: true}
	c := &recStep{name: "c", weight: 1, tr: tr}
	reg := steps.NewRegistry()
	reg.Register(a, b, c)
	o := steps.NewOrchestrator(reg)
	var seen []string
	o.BeforeStep = func(ctx *steps.Context, name string) error {
		seen = append(seen, name+"/"+ctx.CurrentStep+"/"+ctx.Category())
		if name == "c" {
			return errors.New("no GPU")
		}
		return nil
	}
	var sc *steps.Context
	o.BeforeStep = func(prev func(*steps.Context, string) error) func(*steps.Context, string) error {
		return func(ctx *steps.Context, name string) error { sc = ctx; return prev(ctx, name) }
	}(o.BeforeStep)
	res := plugintest.Run(t, synapse.NewAction("x", func(ctx *synapse.Context, _ struct{}) (any, error) {
		_, err := o.Run(ctx)
		return nil, err
	}), nil)
	if want := []string{"a/a/a", "b/b/b", "c/c/c"}; !slices.Equal(seen, want) {
		t.Errorf("hook saw %v, want %v (called before each skip check, with the step's context)", seen, want)
	}
	var se *steps.Error
	if !errors.As(res.Err, &se) || se.Step != "c" || !strings.Contains(se.Error(), "no GPU") {
		t.Fatalf("error = %v, want step c failing with the hook's error", res.Err)
	}
	if want := []string{"run:a", "rollback:a(undo=a)"}; !slices.Equal(tr.calls, want) {
		t.Errorf("calls = %v, want %v (c never runs; a is rolled back)", tr.calls, want)
	}
	if sc.CurrentStep != "" {
		t.Errorf("CurrentStep = %q after Run, want it cleared", sc.CurrentStep)
	}
}

func TestOrchestratorStepReportsUnderItsName(t *testing.T) {
	s := steps.New("train", 1, func(ctx *steps.Context) steps.Result {
		ctx.Log("epoch", map[string]any{"n": 1})
		ctx.SetMetrics(map[string]any{"loss": 0.5}, "")
		return steps.Succeeded(nil)
	})
	r := runSteps(t, nil, s)
	logs := r.Logs("epoch")
	if len(logs) != 1 || logs[0].Category != "train" {
		t.Errorf("log events = %+v, want one in category train", logs)
	}
	if r.Metrics("train")["loss"] != 0.5 {
		t.Errorf("metrics of train = %v", r.Metrics("train"))
	}
}

func TestStepContextResult(t *testing.T) {
	var got steps.Result
	var ok, okMissing bool
	a := steps.New("download", 1, func(*steps.Context) steps.Result {
		return steps.Succeeded(map[string]any{"path": "/data"})
	})
	b := steps.New("convert", 1, func(ctx *steps.Context) steps.Result {
		got, ok = ctx.Result("download")
		_, okMissing = ctx.Result("train")
		return steps.Succeeded(nil)
	})
	if r := runSteps(t, nil, a, b); r.err != nil {
		t.Fatal(r.err)
	}
	if !ok || got.Data["path"] != "/data" || got.Step != "download" {
		t.Errorf("Result(download) = %+v, %v", got, ok)
	}
	if okMissing {
		t.Error("Result(train) found a result for a step that has not run")
	}
}

func stepNames(list []steps.Step) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name())
	}
	return out
}

func TestStepRegistry(t *testing.T) {
	mk := func(name string, w float64) steps.Step { return steps.New(name, w, nil) }
	tests := []struct {
		name    string
		edit    func(r *steps.Registry) error
		want    []string
		wantErr bool
	}{
		{"register keeps order", func(r *steps.Registry) error { return nil }, []string{"a", "b", "c"}, false},
		{"insert before", func(r *steps.Registry) error { return r.InsertBefore("b", mk("x", 1)) }, []string{"a", "x", "b", "c"}, false},
		{"insert before first", func(r *steps.Registry) error { return r.InsertBefore("a", mk("x", 1)) }, []string{"x", "a", "b", "c"}, false},
		{"insert after", func(r *steps.Registry) error { return r.InsertAfter("b", mk("x", 1)) }, []string{"a", "b", "x", "c"}, false},
		{"insert after last", func(r *steps.Registry) error { return r.InsertAfter("c", mk("x", 1)) }, []string{"a", "b", "c", "x"}, false},
		{"insert before unknown", func(r *steps.Registry) error { return r.InsertBefore("zz", mk("x", 1)) }, []string{"a", "b", "c"}, true},
		{"insert after unknown", func(r *steps.Registry) error { return r.InsertAfter("zz", mk("x", 1)) }, []string{"a", "b", "c"}, true},
		{"insert nil", func(r *steps.Registry) error { return r.InsertAfter("a", nil) }, []string{"a", "b", "c"}, true},
		{"unregister", func(r *steps.Registry) error { r.Unregister("b"); return nil }, []string{"a", "c"}, false},
		{"unregister unknown", func(r *steps.Registry) error { r.Unregister("zz"); return nil }, []string{"a", "b", "c"}, false},
		{"unregister removes every match", func(r *steps.Registry) error {
			r.Register(mk("b", 1))
			r.Unregister("b")
			return nil
		}, []string{"a", "c"}, false},
		{"insert uses the first match", func(r *steps.Registry) error {
			r.Register(mk("b", 1))
			return r.InsertAfter("b", mk("x", 1))
		}, []string{"a", "b", "x", "c", "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := steps.NewRegistry()
			r.Register(mk("a", 1), mk("b", 1), mk("c", 1))
			err := tt.edit(r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(tt.name, "unknown") {
				if !errors.Is(err, steps.ErrNotFound) || !strings.Contains(err.Error(), `"zz"`) || !strings.Contains(err.Error(), "steps: a, b, c") {
					t.Errorf("error = %v, want ErrNotFound naming zz and listing the steps", err)
				}
			}
			if got := stepNames(r.Steps()); !slices.Equal(got, tt.want) {
				t.Errorf("steps = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStepRegistryStepsIsACopy(t *testing.T) {
	r := steps.NewRegistry()
	r.Register(steps.New("a", 1, nil))
	s := r.Steps()
	s[0] = steps.New("changed", 1, nil)
	if got := stepNames(r.Steps()); !slices.Equal(got, []string{"a"}) {
		t.Errorf("steps after changing the copy = %v", got)
	}
}

func TestStepRegistryRegisterNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Register(nil) did not panic")
		}
	}()
	steps.NewRegistry().Register(nil)
}

func TestStepRegistryTotalWeight(t *testing.T) {
	tests := []struct {
		weights []float64
		want    float64
	}{
		{nil, 0},
		{[]float64{0.3, 0.2, 0.5}, 1},
		{[]float64{2, 3}, 5},
		{[]float64{1, -1, math.NaN(), math.Inf(1)}, 1},
	}
	for _, tt := range tests {
		r := steps.NewRegistry()
		for i, w := range tt.weights {
			r.Register(steps.New(fmt.Sprint(i), w, nil))
		}
		if got := r.TotalWeight(); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("TotalWeight(%v) = %v, want %v", tt.weights, got, tt.want)
		}
	}
}

func TestBaseStepDefaults(t *testing.T) {
	var b steps.Base
	if b.CanSkip(nil) {
		t.Error("Base.CanSkip = true")
	}
	if err := b.Rollback(nil, steps.Result{}); err != nil {
		t.Errorf("Base.Rollback = %v", err)
	}
}

func TestNewStepWithoutFunctionSucceeds(t *testing.T) {
	r := runSteps(t, nil, steps.New("noop", 1, nil))
	if r.err != nil || !r.summary.Success || r.summary.StepsExecuted != 1 {
		t.Errorf("summary %+v, error %v", r.summary, r.err)
	}
}

func TestLoggingStep(t *testing.T) {
	tests := []struct {
		name        string
		inner       *recStep
		wantSuccess bool
		wantErr     bool
		wantRolled  bool
	}{
		{"success", &recStep{name: "convert", weight: 1}, true, false, false},
		{"failure", &recStep{name: "convert", weight: 1, result: &steps.Result{Err: errors.New("x")}}, false, true, true},
		{"panic", &recStep{name: "convert", weight: 1, panicValue: "boom"}, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.inner.tr = &stepTrace{}
			s := steps.Logging(tt.inner)
			if s.Name() != "convert" || s.ProgressWeight() != 1 {
				t.Errorf("wrapper name %q weight %v, want the wrapped step's", s.Name(), s.ProgressWeight())
			}
			r := runSteps(t, nil, s)
			if (r.err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", r.err, tt.wantErr)
			}
			var names []string
			for _, e := range r.Logs() {
				names = append(names, e.Event)
				if e.Category != "convert" || e.Data["step"] != "convert" {
					t.Errorf("event %s: category %q, data %v", e.Event, e.Category, e.Data)
				}
			}
			want := []string{"step_start", "step_end"}
			if tt.wantRolled {
				want = append(want, "step_rollback")
			}
			if !slices.Equal(names, want) {
				t.Fatalf("logged %v, want %v", names, want)
			}
			end := r.Logs("step_end")[0].Data
			if end["success"] != tt.wantSuccess || end["skipped"] != false {
				t.Errorf("step_end data = %v, want success %v, skipped false", end, tt.wantSuccess)
			}
			if el, ok := end["elapsed"].(float64); !ok || el < 0 {
				t.Errorf("step_end elapsed = %#v, want seconds >= 0", end["elapsed"])
			}
			if tt.wantRolled && !slices.Contains(tt.inner.tr.calls, "rollback:convert(undo=<nil>)") {
				t.Errorf("rollback not delegated: %v", tt.inner.tr.calls)
			}
		})
	}
}

func TestLoggingStepDelegatesCanSkip(t *testing.T) {
	r := runSteps(t, nil, steps.Logging(&recStep{name: "a", weight: 1, skip: true, tr: &stepTrace{}}))
	if !r.summary.Results[0].Skipped {
		t.Error("wrapped skippable step was not skipped")
	}
	if n := len(r.Logs()); n != 0 {
		t.Errorf("a skipped step logged %d events", n)
	}
}

func TestTimingStep(t *testing.T) {
	data := map[string]any{"rows": 3}
	inner := steps.New("convert", 0.5, func(*steps.Context) steps.Result {
		return steps.Succeeded(data)
	})
	s := steps.Timing(inner)
	if s.Name() != "convert" || s.ProgressWeight() != 0.5 {
		t.Errorf("wrapper name %q weight %v", s.Name(), s.ProgressWeight())
	}
	r := runSteps(t, nil, s)
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := r.summary.Results[0].Data
	if d, ok := got["duration_seconds"].(float64); !ok || d < 0 {
		t.Errorf("duration_seconds = %#v, want seconds >= 0", got["duration_seconds"])
	}
	if got["rows"] != 3 {
		t.Errorf("data = %v, want the step's data kept", got)
	}
	if _, changed := data["duration_seconds"]; changed {
		t.Error("Timing changed the step's own Data map")
	}
}

func TestTimingStepKeepsFailure(t *testing.T) {
	errX := errors.New("x")
	r := runSteps(t, nil, steps.Timing(steps.New("a", 1, func(*steps.Context) steps.Result {
		return steps.Failed(errX)
	})))
	if !errors.Is(r.err, errX) {
		t.Errorf("error = %v, want the step's", r.err)
	}
	if _, ok := r.summary.Results[0].Data["duration_seconds"]; !ok {
		t.Error("no duration_seconds on a failed step")
	}
}

func TestStepWrappersUnwrap(t *testing.T) {
	inner := steps.New("a", 1, nil)
	for _, w := range []steps.Step{steps.Logging(inner), steps.Timing(inner)} {
		u, ok := w.(interface{ Unwrap() steps.Step })
		if !ok || u.Unwrap() != inner {
			t.Errorf("%T does not unwrap to the wrapped step", w)
		}
	}
}

func TestStepErrorInsideActionIsExecutionError(t *testing.T) {
	reg := steps.NewRegistry()
	errBad := errors.New("bad")
	reg.Register(steps.New("convert", 1, func(*steps.Context) steps.Result { return steps.Failed(errBad) }))
	action := synapse.NewAction("steps", func(ctx *synapse.Context, _ struct{}) (steps.Summary, error) {
		return steps.NewOrchestrator(reg).Run(ctx)
	})
	res := plugintest.Run(t, action, nil)
	var se *steps.Error
	if !errors.Is(res.Err, synapse.ErrExecution) || !errors.As(res.Err, &se) || !errors.Is(res.Err, errBad) {
		t.Fatalf("error = %v, want an synapse.ExecutionError wrapping the Error", res.Err)
	}
	if want := `run action "steps": step "convert" failed: bad`; res.Err.Error() != want {
		t.Errorf("error = %q, want %q", res.Err, want)
	}
}

func TestOrchestratorNilContext(t *testing.T) {
	if _, err := steps.NewOrchestrator(steps.NewRegistry()).Run(nil); err == nil {
		t.Error("Run(nil) succeeded")
	}
}
