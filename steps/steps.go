// Package steps runs the stages of one action in order, with weighted
// progress and rollback: a Registry of Steps run by an Orchestrator with
// the action's *synapse.Context, each step reporting under its own name
// as category. It follows the Python SDK's step orchestrator
// (docs/steps-and-pipelines.md).
package steps

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	synapse "github.com/synapse-sdk/synapse-go"
	"maps"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// Step is one stage of an action run by an Orchestrator: "download",
// "convert", "train". Embed Base to get the optional methods (CanSkip
// and Rollback), or build a step from functions with New.
type Step interface {
	// Name identifies the step in a Registry and is the category its
	// logs and progress are reported under.
	Name() string
	// ProgressWeight is the step's share of the work, relative to the other
	// steps' weights (nominally 0–1). Weights that are not > 0 count as 0.
	ProgressWeight() float64
	// Execute does the step's work. A result with Success false, or with a
	// non-nil Err, fails the run.
	Execute(ctx *Context) Result
	// CanSkip reports whether the step has nothing to do; a skipped step is
	// recorded as skipped and neither executed nor rolled back.
	CanSkip(ctx *Context) bool
	// Rollback undoes what Execute did, after this step or a later one
	// failed. result is what Execute returned (for a step that panicked,
	// a failed result holding the panic).
	Rollback(ctx *Context, result Result) error
}

// Proportioner is implemented by a step with an explicit proportion: its
// share of the whole run in percent (Python: progress_proportion). Values
// that are not > 0 mean none. Steps made by New take one with
// WithProportion; the wrappers pass on the wrapped step's.
type Proportioner interface {
	ProgressProportion() float64
}

// Base provides the optional methods of Step: CanSkip returns false
// and Rollback does nothing. Embed it and define Name, ProgressWeight and
// Execute.
type Base struct{}

// CanSkip returns false: the step always runs.
func (Base) CanSkip(*Context) bool { return false }

// Rollback does nothing and returns nil.
func (Base) Rollback(*Context, Result) error { return nil }

// Result is the outcome of a step.
type Result struct {
	// Step is the name of the step; the orchestrator sets it.
	Step string `json:"step"`
	// Success reports that the step did its work. The zero Result is a
	// failure: return Succeeded(data) or set Success.
	Success bool `json:"success"`
	// Skipped reports that the step had nothing to do. The orchestrator sets
	// it, with Success, when CanSkip returns true; a result of Execute with
	// Skipped set and no Err counts as a success.
	Skipped bool `json:"skipped,omitempty"`
	// Data is what the step produced, for later steps (Context.Result)
	// and for the caller (Summary.Results).
	Data map[string]any `json:"data,omitempty"`
	// Err is why the step failed. A non-nil Err fails the step even when
	// Success is true. It is not part of the JSON form.
	Err error `json:"-"`
	// RollbackData is what Rollback needs to undo the step (files created,
	// IDs registered…). It is handed back to Rollback with the result and
	// is not part of the JSON form (it may hold what should not leave the
	// process).
	RollbackData map[string]any `json:"-"`
}

// Succeeded returns a successful Result carrying data.
func Succeeded(data map[string]any) Result {
	return Result{Success: true, Data: data}
}

// Failed returns a failed Result carrying err.
func Failed(err error) Result {
	return Result{Err: err}
}

// failed reports whether r stops the run.
func (r Result) failed() bool { return r.Err != nil || (!r.Success && !r.Skipped) }

// Context is what a step receives. Its embedded *synapse.Context reports under
// the current step's name as category (so ctx.SetProgress(i, n) and
// ctx.Log(...) inside a step are attributed to it) and shares the action's
// run, cancellation and environment.
type Context struct {
	*synapse.Context
	// Results are the results of the steps run or skipped so far, in order.
	Results []Result
	// Errors are the errors of failed rollbacks, in the order they happened.
	Errors []error
	// CurrentStep is the name of the step being executed, skip-checked or
	// rolled back.
	CurrentStep string
}

// Result returns the last result of the step named name, and whether that
// step has run or been skipped.
func (c *Context) Result(name string) (Result, bool) {
	for i := len(c.Results) - 1; i >= 0; i-- {
		if c.Results[i].Step == name {
			return c.Results[i], true
		}
	}
	return Result{}, false
}

// ErrNotFound matches the error of Registry.InsertBefore and
// InsertAfter for a name no registered step has.
var ErrNotFound = errors.New("step not found")

// ErrFailed matches a *Error: a step of an Orchestrator run failed.
var ErrFailed = errors.New("step failed")

// Registry is an ordered list of steps. Steps are matched by name;
// several steps may share a name. It is safe for concurrent use.
type Registry struct {
	mu    sync.Mutex
	steps []Step
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register appends steps, in order. It panics if a step is nil: that is a
// bug in the program, best found when it starts.
func (r *Registry) Register(steps ...Step) {
	for _, s := range steps {
		if s == nil {
			panic("steps: Registry.Register: step is nil")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, steps...)
}

// Unregister removes every step named name. An unknown name is ignored.
func (r *Registry) Unregister(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = slices.DeleteFunc(r.steps, func(s Step) bool { return s.Name() == name })
}

// InsertBefore inserts s before the first step named name. An unknown name
// is an error matching ErrNotFound, and s is not inserted.
func (r *Registry) InsertBefore(name string, s Step) error {
	return r.insert(name, s, 0)
}

// InsertAfter inserts s after the first step named name. An unknown name is
// an error matching ErrNotFound, and s is not inserted.
func (r *Registry) InsertAfter(name string, s Step) error {
	return r.insert(name, s, 1)
}

func (r *Registry) insert(name string, s Step, offset int) error {
	if s == nil {
		return fmt.Errorf("insert step next to %q: step is nil", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.steps, func(x Step) bool { return x.Name() == name })
	if i < 0 {
		names := make([]string, len(r.steps))
		for j, x := range r.steps {
			names[j] = x.Name()
		}
		list := "there are no steps"
		if len(names) > 0 {
			list = "steps: " + strings.Join(names, ", ")
		}
		return fmt.Errorf("insert step %q next to %q: %w (%s)", s.Name(), name, ErrNotFound, list)
	}
	r.steps = slices.Insert(r.steps, i+offset, s)
	return nil
}

// Steps returns the registered steps, in order (a copy).
func (r *Registry) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

// TotalWeight returns the sum of the steps' progress weights (weights that
// are not > 0, or not finite, count as 0).
func (r *Registry) TotalWeight() float64 {
	return totalWeight(r.Steps())
}

func totalWeight(steps []Step) float64 {
	var total float64
	for _, s := range steps {
		total += weightOf(s)
	}
	return total
}

func weightOf(s Step) float64 {
	w := s.ProgressWeight()
	if !(w > 0) || math.IsInf(w, 0) {
		return 0
	}
	return w
}

// Plan returns the steps' names, 0-based orders and proportions, the way
// an Orchestrator announces them (synapse.EventSteps) and the progress
// record weighs them. Proportions are in percent and add up to 100:
//
//   - explicit proportions (Proportioner) are kept when they add up to at
//     most 100 (scaled down to 100 when they add up to more);
//   - the rest of 100 is shared by the other steps by progress weight;
//   - when no other step has weight, the explicit proportions are scaled
//     up to 100; when no step has either, all share equally.
//
// Proportions are rounded to 2 decimals by largest remainder (so they add
// up to 100 exactly and none is negative). Steps that share a name share
// one entry, with the sum of their proportions, at the place of the first.
func (r *Registry) Plan() []synapse.StepInfo { return plan(r.Steps()) }

func plan(steps []Step) []synapse.StepInfo {
	if len(steps) == 0 {
		return nil
	}
	out := make([]synapse.StepInfo, len(steps))
	explicit := make([]float64, len(steps))
	var sumExplicit, sumWeight float64
	for i, s := range steps {
		out[i] = synapse.StepInfo{Name: s.Name(), Order: i}
		if p := proportionOf(s); p > 0 {
			explicit[i] = p
			sumExplicit += p
		} else {
			sumWeight += weightOf(s)
		}
	}
	share := make([]float64, len(steps))
	switch {
	case sumExplicit == 0 && sumWeight == 0:
		for i := range share {
			share[i] = 100 / float64(len(steps))
		}
	case sumWeight == 0 || sumExplicit >= 100:
		for i := range share {
			share[i] = explicit[i] / sumExplicit * 100
		}
	default:
		rest := 100 - sumExplicit
		for i, s := range steps {
			if explicit[i] > 0 {
				share[i] = explicit[i]
			} else {
				share[i] = weightOf(s) / sumWeight * rest
			}
		}
	}
	// Steps that share a name share one entry (its order is its first
	// step's place among the distinct names), since progress is reported
	// by name.
	var merged []synapse.StepInfo
	var shares []float64
	at := map[string]int{}
	for i, st := range out {
		j, ok := at[st.Name]
		if !ok {
			j = len(merged)
			at[st.Name] = j
			merged = append(merged, synapse.StepInfo{Name: st.Name, Order: j})
			shares = append(shares, 0)
		}
		shares[j] += share[i]
	}
	// Round to hundredths by largest remainder: never negative, adding up
	// to 100 exactly.
	units := make([]int, len(shares))
	byRemainder := make([]int, len(shares))
	left := 10000
	for j, sh := range shares {
		units[j] = int(math.Floor(sh * 100))
		left -= units[j]
		byRemainder[j] = j
	}
	slices.SortStableFunc(byRemainder, func(x, y int) int {
		rx, ry := shares[x]*100-float64(units[x]), shares[y]*100-float64(units[y])
		return cmp.Compare(ry, rx)
	})
	for k := 0; k < left && k < len(byRemainder); k++ {
		units[byRemainder[k]]++
	}
	for j := range merged {
		merged[j].Proportion = float64(units[j]) / 100
	}
	return merged
}

func proportionOf(s Step) float64 {
	p, ok := s.(Proportioner)
	if !ok {
		return 0
	}
	v := p.ProgressProportion()
	if !(v > 0) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// Summary is the outcome of an Orchestrator run.
type Summary struct {
	// Success reports that every step succeeded or was skipped.
	Success bool `json:"success"`
	// StepsExecuted counts the steps whose Execute ran, the failed one
	// included; skipped steps are not counted.
	StepsExecuted int `json:"steps_executed"`
	// StepsTotal is the number of steps in the registry.
	StepsTotal int `json:"steps_total"`
	// Results holds the result of every step run or skipped, in order.
	Results []Result `json:"results"`
}

// Error is the error of an Orchestrator run whose step failed,
// panicked or was not started because the run was cancelled. errors.Is
// reaches the step's own error (and context.Canceled for a cancelled run)
// and ErrFailed.
type Error struct {
	// Step is the name of the failing step.
	Step string
	// Err is the step's error: its Result.Err, a *synapse.PanicError, or the
	// context's error.
	Err error
	// RollbackErrors are the errors of the rollbacks that failed. They never
	// replace Err.
	RollbackErrors []error
	// Stack is the goroutine stack at the panic; empty unless the step
	// panicked.
	Stack string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("step %q failed: %v", e.Step, e.Err)
	if n := len(e.RollbackErrors); n > 0 {
		parts := make([]string, n)
		for i, err := range e.RollbackErrors {
			parts[i] = err.Error()
		}
		plural := "s"
		if n == 1 {
			plural = ""
		}
		msg += fmt.Sprintf(" (and %d rollback%s failed: %s)", n, plural, strings.Join(parts, "; "))
	}
	return msg
}

// Is reports whether target is ErrFailed.
func (e *Error) Is(target error) bool { return target == ErrFailed }

// Unwrap returns the step's error.
func (e *Error) Unwrap() error { return e.Err }

// errNoSuccess is the Err of a step that returned Success false without an error.
var errNoSuccess = errors.New("the step returned Success false without an Err")

// Orchestrator runs the steps of a Registry in order, inside an action.
type Orchestrator struct {
	reg *Registry

	// BeforeStep, when set, is called before each step's skip check, with
	// the step's name and the Context the step will get (Python: the
	// orchestrator's before_step hook): it can prepare state the step
	// depends on. An error (or a panic) fails the step without running it;
	// the steps run before it are rolled back.
	BeforeStep func(ctx *Context, name string) error
}

// NewOrchestrator returns an orchestrator for the steps of reg. The steps
// are read when Run starts, so steps registered later are run too.
func NewOrchestrator(reg *Registry) *Orchestrator { return &Orchestrator{reg: reg} }

// Run executes the steps in order with ctx, the action's synapse.Context:
//
//   - A step whose CanSkip returns true is recorded as skipped
//     (Result{Skipped: true, Success: true}) and not executed.
//   - A step that fails (Success false or a non-nil Err) or panics stops
//     the run. Every step executed so far, the failed one included, is then
//     rolled back in reverse order. Rollback is best effort: a rollback that
//     fails or panics is recorded and the others still run. Rollbacks run
//     with a synapse.Context that is not cancelled, so they can clean up after a
//     cancelled run.
//   - A step is not started once ctx is cancelled: the run stops as if it
//     had failed with ctx.Err().
//
// A failure returns a *Error naming the step, with the rollback
// errors; the summary is returned too, with Success false.
//
// Progress: Run first announces the plan (an EventSteps event with
// Registry.Plan's names, orders and proportions), which the run's progress
// record (synapse.Context.Progress) uses to weigh each step's progress in
// the overall percent. Inside a step, ctx.SetProgress reports under the
// step's name. After each step that succeeds or is skipped, Run reports
// 100% for it unless the step already did; a failed step is marked with
// SetProgressFailed. BeforeStep, when set, runs before each skip check.
// The Context's CurrentStep is cleared when Run returns, on success and on
// failure.
func (o *Orchestrator) Run(ctx *synapse.Context) (Summary, error) {
	if ctx == nil {
		return Summary{}, errors.New("run steps: context is nil")
	}
	steps := o.reg.Steps()
	sum := Summary{StepsTotal: len(steps)}
	sc := &Context{Context: ctx}
	count, seen := map[string]int{}, map[string]int{}
	for _, st := range steps {
		count[st.Name()]++
	}
	if len(steps) > 0 {
		ctx.Emit(synapse.Event{Type: synapse.EventSteps, Level: synapse.LevelInfo, Steps: plan(steps)})
	}
	var executed []int // indexes of the steps whose Execute ran

	// sc.Results gets one result per step reached, so sc.Results[i] is the
	// result of steps[i].
	for _, s := range steps {
		name := s.Name()
		sc.CurrentStep = name
		sc.Context = ctx.WithCategory(name)
		if err := ctx.Err(); err != nil {
			return rollback(ctx, sc, steps, executed, sum, &Error{Step: name, Err: err})
		}
		if o.BeforeStep != nil {
			if stack, err := callBefore(o.BeforeStep, sc, name); err != nil {
				sc.Results = append(sc.Results, Result{Step: name, Err: err})
				return rollback(ctx, sc, steps, executed, sum, &Error{Step: name, Err: err, Stack: stack})
			}
		}
		skip, stack, perr := callSkip(s, sc)
		if perr != nil {
			sc.Results = append(sc.Results, Result{Step: name, Err: perr})
			return rollback(ctx, sc, steps, executed, sum, &Error{Step: name, Err: perr, Stack: stack})
		}
		if skip {
			sc.Results = append(sc.Results, Result{Step: name, Success: true, Skipped: true})
		} else {
			res, stack := callExecute(s, sc)
			res.Step = name
			if res.Err == nil && !res.Success && !res.Skipped {
				res.Err = errNoSuccess
			}
			sc.Results = append(sc.Results, res)
			executed = append(executed, len(sc.Results)-1)
			sum.StepsExecuted++
			if res.failed() {
				return rollback(ctx, sc, steps, executed, sum, &Error{Step: name, Err: res.Err, Stack: stack})
			}
		}
		seen[name]++
		if n := count[name]; n > 1 { // steps sharing a name: the share done
			emitProgress(ctx, name, seen[name], n, 0)
		} else if p, ok := ctx.Progress().Steps[name]; !ok || p.Percent != 100 {
			emitProgress(ctx, name, 100, 100, 0)
		}
	}
	sc.CurrentStep = ""
	sc.Context = ctx
	sum.Success = true
	sum.Results = sc.Results
	return sum, nil
}

// rollback rolls back the executed steps (indexes into steps and
// sc.Results) in reverse order and returns the summary and error of a
// failed run. Skipped steps, and a step whose CanSkip panicked, did not
// execute and are not rolled back.
func rollback(ctx *synapse.Context, sc *Context, steps []Step, executed []int, sum Summary, serr *Error) (Summary, error) {
	if ctx.Progress().Steps[serr.Step].Status != "failed" { // unless the step said so itself
		ctx.SetProgressFailed(serr.Step)
	}
	uncancelled := ctx.WithContext(context.WithoutCancel(ctx))
	for _, i := range slices.Backward(executed) {
		res := sc.Results[i]
		sc.CurrentStep = res.Step
		sc.Context = uncancelled.WithCategory(res.Step)
		if err := callRollback(steps[i], sc, res); err != nil {
			err = fmt.Errorf("rollback step %q: %w", res.Step, err)
			sc.Errors = append(sc.Errors, err)
			serr.RollbackErrors = append(serr.RollbackErrors, err)
		}
	}
	sc.CurrentStep = ""
	sc.Context = ctx
	sum.Success = false
	sum.Results = sc.Results
	return sum, serr
}

// emitProgress sends a progress event with a computed ETA; 0 <= current <=
// total and total > 0 are the caller's to guarantee.
func emitProgress(ctx *synapse.Context, category string, current, total int, eta time.Duration) {
	e := synapse.Event{Type: synapse.EventProgress, Level: synapse.LevelInfo, Category: category}
	e.Current, e.Total = current, total
	e.Percent = math.Round(float64(current)/float64(total)*10000) / 100
	e.ETA = eta
	ctx.Emit(e)
}

func callBefore(before func(*Context, string) error, sc *Context, name string) (stack string, err error) {
	defer func() {
		if v := recover(); v != nil {
			stack, err = string(debug.Stack()), fmt.Errorf("before step %q: %w", name, &synapse.PanicError{Value: v})
		}
	}()
	if err := before(sc, name); err != nil {
		return "", fmt.Errorf("before step %q: %w", name, err)
	}
	return "", nil
}

func callSkip(s Step, sc *Context) (skip bool, stack string, err error) {
	defer func() {
		if v := recover(); v != nil {
			skip, stack, err = false, string(debug.Stack()), &synapse.PanicError{Value: v}
		}
	}()
	return s.CanSkip(sc), "", nil
}

func callExecute(s Step, sc *Context) (res Result, stack string) {
	defer func() {
		if v := recover(); v != nil {
			res, stack = Result{Err: &synapse.PanicError{Value: v}}, string(debug.Stack())
		}
	}()
	return s.Execute(sc), ""
}

func callRollback(s Step, sc *Context, res Result) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &synapse.PanicError{Value: v}
		}
	}()
	return s.Rollback(sc, res)
}

// New returns a step named name with progress weight weight that runs
// execute (a nil execute succeeds without data). Options add a skip check
// and a rollback.
func New(name string, weight float64, execute func(ctx *Context) Result, opts ...Option) Step {
	s := &funcStep{name: name, weight: weight, execute: execute}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Option configures a step created by New.
type Option func(*funcStep)

// WithProportion gives the step an explicit proportion: its share of the
// whole run in percent (see Registry.Plan).
func WithProportion(percent float64) Option {
	return func(s *funcStep) { s.proportion = percent }
}

// WithSkipCheck makes the step skipped whenever canSkip returns true.
func WithSkipCheck(canSkip func(ctx *Context) bool) Option {
	return func(s *funcStep) { s.canSkip = canSkip }
}

// WithRollback makes the step undo its work with rollback.
func WithRollback(rollback func(ctx *Context, result Result) error) Option {
	return func(s *funcStep) { s.rollback = rollback }
}

type funcStep struct {
	name       string
	weight     float64
	proportion float64
	execute    func(*Context) Result
	canSkip    func(*Context) bool
	rollback   func(*Context, Result) error
}

func (s *funcStep) Name() string            { return s.name }
func (s *funcStep) ProgressWeight() float64 { return s.weight }

// ProgressProportion returns the WithProportion value (0 for none).
func (s *funcStep) ProgressProportion() float64 { return s.proportion }

func (s *funcStep) Execute(ctx *Context) Result {
	if s.execute == nil {
		return Succeeded(nil)
	}
	return s.execute(ctx)
}

func (s *funcStep) CanSkip(ctx *Context) bool {
	return s.canSkip != nil && s.canSkip(ctx)
}

func (s *funcStep) Rollback(ctx *Context, result Result) error {
	if s.rollback == nil {
		return nil
	}
	return s.rollback(ctx, result)
}

// Logging wraps s so that it logs, under its category:
//
//   - step_start {"step"} before Execute;
//   - step_end {"step", "elapsed" (seconds, 3 decimals), "success",
//     "skipped"} after it (also when Execute panics, with success false);
//   - step_rollback {"step"} before Rollback.
//
// The wrapper keeps the name of s (unlike the Python SDK's "logged_"
// prefix), so registry lookups and progress categories do not change when
// a step is wrapped.
func Logging(s Step) Step { return &loggingStep{wrapped{s}} }

// Timing wraps s so that its result's Data gets "duration_seconds":
// how long Execute took, in seconds with 6 decimals. Data is copied, not
// changed in place. The wrapper keeps the name of s.
func Timing(s Step) Step { return &timingStep{wrapped{s}} }

// wrapped forwards the Step methods a wrapper does not override.
type wrapped struct{ s Step }

func (w wrapped) Name() string                          { return w.s.Name() }
func (w wrapped) ProgressWeight() float64               { return w.s.ProgressWeight() }
func (w wrapped) ProgressProportion() float64           { return proportionOf(w.s) }
func (w wrapped) CanSkip(ctx *Context) bool             { return w.s.CanSkip(ctx) }
func (w wrapped) Rollback(ctx *Context, r Result) error { return w.s.Rollback(ctx, r) }

// Unwrap returns the wrapped step.
func (w wrapped) Unwrap() Step { return w.s }

type loggingStep struct{ wrapped }

func (l *loggingStep) Execute(ctx *Context) (res Result) {
	name := l.s.Name()
	ctx.Log("step_start", map[string]any{"step": name})
	start := time.Now()
	finished := false
	defer func() {
		if !finished { // Execute panicked; the orchestrator recovers
			ctx.Log("step_end", map[string]any{"step": name, "elapsed": seconds(time.Since(start), 3), "success": false, "skipped": false})
		}
	}()
	res = l.s.Execute(ctx)
	finished = true
	ctx.Log("step_end", map[string]any{
		"step":    name,
		"elapsed": seconds(time.Since(start), 3),
		"success": !res.failed(),
		"skipped": res.Skipped,
	})
	return res
}

func (l *loggingStep) Rollback(ctx *Context, r Result) error {
	ctx.Log("step_rollback", map[string]any{"step": l.s.Name()})
	return l.s.Rollback(ctx, r)
}

type timingStep struct{ wrapped }

func (t *timingStep) Execute(ctx *Context) Result {
	start := time.Now()
	res := t.s.Execute(ctx)
	data := maps.Clone(res.Data)
	if data == nil {
		data = map[string]any{}
	}
	data["duration_seconds"] = seconds(time.Since(start), 6)
	res.Data = data
	return res
}

// seconds returns d in seconds rounded to decimals places.
func seconds(d time.Duration, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(d.Seconds()*p) / p
}
