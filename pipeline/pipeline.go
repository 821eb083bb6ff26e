// Package pipeline runs actions one after another in this process: each
// action's result fields flow into the params of the next, a checkpoint is
// written after each, and a failed run can be resumed where it stopped
// (docs/steps-and-pipelines.md). `synapse plugin run-pipeline` runs the
// pipelines a config.yaml declares.
package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/params"
)

// Category is the progress category of a pipeline's overall
// progress: current is the number of actions done, total the number of
// actions.
const Category = "pipeline"

// Pipeline runs actions one after another, feeding each the params
// accumulated from the initial params and the results of the actions before
// it. Every run has a working directory and is checkpointed after each
// action, so a failed run can be resumed. A Pipeline is immutable and safe
// for concurrent use; concurrent Runs get different run IDs.
type Pipeline struct {
	name     string
	actions  []synapse.Action
	info     []actionInfo
	workDir  string
	warnings []string
}

// actionInfo is what a pipeline knows about an action's params and result.
type actionInfo struct {
	name string
	// declared are the top-level params the action takes; all (nil) when
	// its params accept any field.
	declared []string
	// required are the params a run must be given (see neededParams), in
	// the order of the schema's properties.
	required []string
	// results are the top-level fields of the action's result, when
	// resultsKnown; a result that is not a JSON object has none.
	results      []string
	resultsKnown bool
	resultType   reflect.Type
}

// Option configures a Pipeline created by New.
type Option func(*config)

type config struct {
	strict  bool
	workDir string
}

// Strict makes New fail, instead of warn, when an action's required
// params are not provided by the results of the actions before it (see
// New).
func Strict() Option { return func(c *config) { c.strict = true } }

// WithWorkDir sets the directory under which runs keep their files:
// dir/<pipeline>/<run-id>/. The default is "synapse-go/pipelines" under the
// user's cache directory (os.UserCacheDir), or under os.TempDir when there
// is none.
func WithWorkDir(dir string) Option { return func(c *config) { c.workDir = dir } }

// DefaultWorkDir is the directory under which runs keep their files when
// WithWorkDir is not given: "synapse-go/pipelines" under the user's cache
// directory (os.UserCacheDir; ~/.cache/synapse-go/pipelines on Linux), or
// "synapse-pipelines" under os.TempDir when there is none. Runs are never
// removed from it by the SDK or the CLI: they hold the checkpoints that
// Resume continues from.
func DefaultWorkDir() string { return defaultWorkDir() }

func defaultWorkDir() string {
	if d, err := os.UserCacheDir(); err == nil && d != "" {
		return filepath.Join(d, "synapse-go", "pipelines")
	}
	return filepath.Join(os.TempDir(), "synapse-pipelines")
}

// New returns a pipeline named name that runs actions in order.
// The name names the runs' directory, so it must be a valid file name.
//
// For each action after the first, New checks that its required params
// are fields of the result of an earlier action. (Params accumulate, so a
// field returned by any earlier action reaches it.) A param is required
// when the action has no default for it and leaving it out fails the
// action's `validate` rules: validate:"required", but also a rule that its
// zero value breaks, such as min=1 on an int or a string. Rules that
// depend on other fields (required_without, gtfield, …) and the params'
// Validate method are not considered, since other params may satisfy
// them. A required param that no earlier result provides must come from
// the initial params. A result that is a map, an interface or a type with
// its own MarshalJSON has fields that cannot be known, and the check
// cannot be made (a result that is not a struct has no fields). Either is
// an error with Strict, and otherwise a warning, returned by Warnings and
// reported when a run starts. Pipeline.Check lists what the initial params
// of a run must still provide.
func New(name string, actions []synapse.Action, opts ...Option) (*Pipeline, error) {
	if err := checkPathElement(name); err != nil {
		return nil, fmt.Errorf("create pipeline %q: name %w", name, err)
	}
	if len(actions) == 0 {
		return nil, fmt.Errorf("create pipeline %q: a pipeline needs at least one action", name)
	}
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.workDir == "" {
		cfg.workDir = defaultWorkDir()
	}
	p := &Pipeline{name: name, actions: slices.Clone(actions), workDir: cfg.workDir}
	for i, a := range p.actions {
		if a == nil {
			return nil, fmt.Errorf("create pipeline %q: action %d is nil", name, i)
		}
		info, err := inspectAction(a)
		if err != nil {
			return nil, fmt.Errorf("create pipeline %q: %w", name, err)
		}
		p.info = append(p.info, info)
	}
	var problems []string
	for i := 1; i < len(p.info); i++ {
		problems = append(problems, p.gaps(i)...)
	}
	if len(problems) > 0 && cfg.strict {
		return nil, fmt.Errorf("create pipeline %q: %s", name, strings.Join(problems, "; "))
	}
	p.warnings = problems
	return p, nil
}

// gaps describes the required params of action i that no earlier action's
// result is known to provide.
func (p *Pipeline) gaps(i int) []string {
	target := p.info[i]
	var missing []string
	for _, f := range target.required {
		if !p.provided(i, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var unknown []string
	for _, src := range p.info[:i] {
		if !src.resultsKnown {
			unknown = append(unknown, fmt.Sprintf("action %q (%s)", src.name, typeName(src.resultType)))
		}
	}
	if len(unknown) > 0 {
		return []string{fmt.Sprintf("cannot check that %s, required by action %q, will be provided: the result fields of %s are not known (return a struct to declare them)",
			quoteList(missing), target.name, strings.Join(unknown, ", "))}
	}
	prev := p.info[i-1]
	return []string{fmt.Sprintf("action %q requires %s, which %s: it must be given in the initial params",
		target.name, quoteList(missing), noEarlierResult(prev.name, i))}
}

func noEarlierResult(prev string, i int) string {
	if i == 1 {
		return fmt.Sprintf("the result of action %q does not have", prev)
	}
	return fmt.Sprintf("neither the result of action %q nor of an earlier action has", prev)
}

// provided reports whether the known result of an action before i has
// field f.
func (p *Pipeline) provided(i int, f string) bool {
	for _, src := range p.info[:i] {
		if src.resultsKnown && slices.Contains(src.results, f) {
			return true
		}
	}
	return false
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func typeName(t reflect.Type) string { return "result type " + t.String() }

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.name }

// Actions returns the pipeline's actions, in order (a copy).
func (p *Pipeline) Actions() []synapse.Action { return slices.Clone(p.actions) }

// WorkDir returns the directory under which runs keep their files.
func (p *Pipeline) WorkDir() string { return p.workDir }

// Warnings returns the problems New found without Strict (a copy).
func (p *Pipeline) Warnings() []string { return slices.Clone(p.warnings) }

// Check returns the required params (as defined in New) that a run with
// initial params would lack, as "action.field", in action order and, within
// an action, in the order of its params' fields: required params of an
// action that are neither in initial nor fields of an earlier action's
// result. A
// param that an earlier action with an unknown result type (a map, say)
// might provide is not listed. Run fails with the first such gap before it
// runs any action.
func (p *Pipeline) Check(initial map[string]any) []string {
	var out []string
	for i, info := range p.info {
		for _, f := range p.missing(i, initial) {
			out = append(out, info.name+"."+f)
		}
	}
	return out
}

// missing returns the required params of action i that neither initial nor
// an earlier result can provide.
func (p *Pipeline) missing(i int, initial map[string]any) []string {
	var out []string
	for _, f := range p.info[i].required {
		if _, ok := initial[f]; ok || p.provided(i, f) {
			continue
		}
		if slices.ContainsFunc(p.info[:i], func(a actionInfo) bool { return !a.resultsKnown }) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// Run is one run of a pipeline. Run and Resume return it also when
// they fail, so that the run can be resumed by its ID.
type Run struct {
	// ID identifies the run (12 hex digits) for Resume.
	ID string
	// Result is the last action's result: its Go value when the action ran
	// in this call, the JSON-decoded value of its checkpoint when Resume
	// found every action completed. Nil unless the run succeeded.
	Result any
	// WorkDir is the run's directory: <work dir>/<pipeline>/<run id>.
	WorkDir string
}

// Dirs are the directories of a pipeline run, created when the run
// starts. Actions of a pipeline reach them through WorkDir(ctx).
type Dirs struct {
	Root        string // <work dir>/<pipeline>/<run id>
	Datasets    string // Root/datasets
	Models      string // Root/models
	Artifacts   string // Root/artifacts
	Logs        string // Root/logs
	Checkpoints string // Root/checkpoints: one JSON file per completed action
}

func newDirs(root string) Dirs {
	return Dirs{
		Root:        root,
		Datasets:    filepath.Join(root, "datasets"),
		Models:      filepath.Join(root, "models"),
		Artifacts:   filepath.Join(root, "artifacts"),
		Logs:        filepath.Join(root, "logs"),
		Checkpoints: filepath.Join(root, "checkpoints"),
	}
}

func (d Dirs) create() error {
	for _, dir := range []string{d.Datasets, d.Models, d.Artifacts, d.Logs, d.Checkpoints} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return nil
}

type dirsKey struct{}

// WorkDir returns the directories of the pipeline run that ctx (an
// action's *synapse.Context) belongs to, and false when the action is not
// run by a Pipeline.
func WorkDir(ctx context.Context) (Dirs, bool) {
	d, ok := ctx.Value(dirsKey{}).(Dirs)
	return d, ok
}

// Error reports a pipeline run that failed. errors.As reaches the
// failing action's *synapse.ValidationError or *synapse.ExecutionError through it.
type Error struct {
	// Pipeline is the pipeline's name.
	Pipeline string
	// RunID is the run's ID; "" for a run rejected before it started
	// (nothing to resume).
	RunID string
	// Action is the name of the failing action, and Index its position
	// (from 0); "" and -1 when the run failed outside any action (its
	// files could not be written or read).
	Action string
	Index  int
	// Err is the action's error, or what failed outside any action.
	Err error
}

func (e *Error) Error() string {
	if e.RunID == "" {
		if e.Action == "" {
			return fmt.Sprintf("pipeline %q: %v", e.Pipeline, e.Err)
		}
		return fmt.Sprintf("pipeline %q: action %q: %v", e.Pipeline, e.Action, e.Err)
	}
	if e.Action == "" {
		return fmt.Sprintf("pipeline %q (run %s): %v", e.Pipeline, e.RunID, e.Err)
	}
	return fmt.Sprintf("pipeline %q (run %s): action %q failed: %v", e.Pipeline, e.RunID, e.Action, e.Err)
}

// Unwrap returns the action's error.
func (e *Error) Unwrap() error { return e.Err }

// Run runs the actions in order with params as initial params (a map, a
// struct, or JSON as in synapse.LocalExecutor.Execute) and returns the run
// with the last action's result. opts are executor options
// (synapse.WithEnv, WithJobID, WithLogger) applied to every action.
//
//   - Params accumulate: each action receives the accumulated values of the
//     params it declares (so unknown-field rejection still holds; an action
//     with untyped params receives them all), and the fields of its result,
//     when the result is a JSON object, are merged in, later values
//     winning.
//   - Before any action runs, Run rejects initial params that no action
//     takes (when every action's params are typed) and required params
//     that Check reports missing, as a *synapse.ValidationError of the action
//     concerned: a run that cannot succeed fails before it starts.
//   - The run's directories (Dirs) are created under the work dir,
//     and actions see them through WorkDir(ctx). After each completed
//     action a checkpoint is written to checkpoints/, for Resume.
//   - A failing action stops the run: the error is a *Error naming
//     it, wrapping its typed error.
//   - Progress: before each action, and when all are done, the pipeline
//     reports its overall progress under Category (actions done of
//     actions in total), with the pipeline's name as the events' Action;
//     each action reports its own progress as usual.
//
// The returned run is non-nil, also with an error, so it can be resumed
// (a run rejected before its first action has no files to resume from).
func (p *Pipeline) Run(ctx context.Context, params any, opts ...synapse.Option) (*Run, error) {
	id, err := newRunID()
	if err != nil {
		return &Run{}, fmt.Errorf("run pipeline %q: %w", p.name, err)
	}
	dirs := newDirs(filepath.Join(p.workDir, p.name, id))
	run := &Run{ID: id, WorkDir: dirs.Root}
	fail := func(action string, index int, err error) (*Run, error) {
		return run, &Error{Pipeline: p.name, RunID: id, Action: action, Index: index, Err: err}
	}
	// A run rejected before it starts has no ID: there is nothing to resume.
	reject := func(action string, index int, err error) (*Run, error) {
		return &Run{}, &Error{Pipeline: p.name, Action: action, Index: index, Err: err}
	}

	initial, err := paramsMap(params)
	if err != nil {
		return reject("", -1, &synapse.ValidationError{Action: p.name, Fields: []synapse.FieldError{{Message: err.Error()}}})
	}
	if unknown := p.unknownParams(initial); len(unknown) > 0 {
		// Params no action takes are the pipeline's fault, not an action's.
		return reject("", -1, &synapse.ValidationError{Action: p.name, Fields: unknown})
	}
	if i, verr := p.precheck(initial); verr != nil {
		return reject(p.info[i].name, i, verr)
	}
	if err := dirs.create(); err != nil {
		return fail("", -1, fmt.Errorf("create run directory: %w", err))
	}
	meta := runMeta{Pipeline: p.name, RunID: id, Actions: p.actionNames(), Params: initial, Created: time.Now().UTC()}
	if err := writeJSONFile(filepath.Join(dirs.Root, runFile), meta); err != nil {
		return fail("", -1, fmt.Errorf("write run file: %w", err))
	}
	return p.runFrom(ctx, opts, run, dirs, 0, initial, nil)
}

// precheck returns the index and validation error of the first action
// whose params the run could not provide.
func (p *Pipeline) precheck(initial map[string]any) (int, error) {
	fields := make([][]synapse.FieldError, len(p.info))
	for i := range p.info {
		for _, f := range p.missing(i, initial) {
			fields[i] = append(fields[i], synapse.FieldError{Field: f, Message: "required: not in the pipeline's params nor in the result of an earlier action"})
		}
	}
	for i, fe := range fields {
		if len(fe) > 0 {
			sort.Slice(fe, func(a, b int) bool { return fe[a].Field < fe[b].Field })
			return i, &synapse.ValidationError{Action: p.info[i].name, Fields: fe}
		}
	}
	return 0, nil
}

// unknownParams reports the initial params that no action declares, when
// every action's params are typed.
func (p *Pipeline) unknownParams(initial map[string]any) []synapse.FieldError {
	var all []string
	for _, info := range p.info {
		if info.declared == nil {
			return nil
		}
		all = append(all, info.declared...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	var out []synapse.FieldError
	for k := range initial {
		if slices.Contains(all, k) {
			continue
		}
		hint := ""
		if s := params.Suggest(k, all); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s)
		}
		out = append(out, synapse.FieldError{Field: k, Message: "unknown field: no action of the pipeline takes it (" + hint + "valid fields: " + strings.Join(all, ", ") + ")"})
	}
	return out
}

// Resume continues the run runID of this pipeline: actions with a
// checkpoint are skipped and the run goes on from the first incomplete one
// with the accumulated params restored. The pipeline must have the run's
// actions, by name and in order. A run whose actions all completed returns
// the last checkpoint's result without running anything. opts are as for
// Run. Resuming the same run twice at once is not supported.
//
// The returned run is non-nil, also with an error.
func (p *Pipeline) Resume(ctx context.Context, runID string, opts ...synapse.Option) (*Run, error) {
	run := &Run{ID: runID}
	fail := func(err error) (*Run, error) {
		return run, &Error{Pipeline: p.name, RunID: runID, Action: "", Index: -1, Err: err}
	}
	if err := checkPathElement(runID); err != nil {
		return fail(fmt.Errorf("resume: run ID %w", err))
	}
	dirs := newDirs(filepath.Join(p.workDir, p.name, runID))
	run.WorkDir = dirs.Root
	meta, cps, err := p.loadRun(dirs)
	if err != nil {
		return fail(fmt.Errorf("resume: %w", err))
	}
	if err := dirs.create(); err != nil {
		return fail(fmt.Errorf("create run directory: %w", err))
	}
	acc := meta.Params
	if acc == nil {
		acc = map[string]any{}
	}
	var last any
	if k := len(cps); k > 0 {
		acc, last = cps[k-1].Accumulated, cps[k-1].Result
	}
	return p.runFrom(ctx, opts, run, dirs, len(cps), acc, last)
}

// runFrom runs the actions from index start on, with the accumulated
// params acc; last is the result of action start-1, if any. The pipeline
// itself runs as an action named after it, so its messages and progress
// are a run of their own (category Category) on the same logger.
func (p *Pipeline) runFrom(ctx context.Context, opts []synapse.Option, run *Run, dirs Dirs, start int, acc map[string]any, last any) (*Run, error) {
	ctx = context.WithValue(ctx, dirsKey{}, dirs)
	exec := synapse.NewLocalExecutor(opts...)
	var failed *Error
	fail := func(i int, err error) error {
		failed = &Error{Pipeline: p.name, RunID: run.ID, Action: p.info[i].name, Index: i, Err: err}
		return failed
	}
	body := synapse.NewAction(p.name, func(pc *synapse.Context, _ json.RawMessage) (any, error) {
		pc = pc.WithCategory(Category)
		for _, w := range p.warnings {
			pc.LogMessage(w, synapse.LevelWarning)
		}
		n := len(p.actions)
		if start > 0 {
			pc.LogMessage(fmt.Sprintf("Resuming run %s: %d of %d actions already completed", run.ID, start, n), synapse.LevelInfo)
		} else {
			pc.LogMessage(fmt.Sprintf("Run %s started (work dir %s)", run.ID, run.WorkDir), synapse.LevelInfo)
		}
		began := pc.Now()
		progress := func(done int) {
			eta := time.Duration(-1)
			if done == n {
				eta = 0
			} else if ran := done - start; ran > 0 {
				eta = time.Duration(float64(pc.Now().Sub(began)) / float64(ran) * float64(n-done))
			}
			pc.Emit(synapse.Event{Type: synapse.EventProgress, Level: synapse.LevelInfo, Current: done, Total: n,
				Percent: math.Round(float64(done)/float64(n)*10000) / 100, ETA: eta})
		}
		for i := start; i < n; i++ {
			progress(i)
			info := p.info[i]
			in := restrict(acc, info.declared)
			result, err := exec.Execute(ctx, p.actions[i], in)
			if err != nil {
				return nil, fail(i, err)
			}
			encoded, err := json.Marshal(result)
			if err != nil {
				return nil, fail(i, fmt.Errorf("encode result of action %q as JSON for the next actions and the checkpoint: %w", info.name, err))
			}
			next := make(map[string]any, len(acc))
			maps.Copy(next, acc)
			var fields map[string]any
			if decodeJSON(encoded, &fields) == nil {
				maps.Copy(next, fields)
			}
			cp := checkpoint{
				Pipeline: p.name, RunID: run.ID, Action: info.name, Index: i,
				Params: in, Accumulated: next, Result: json.RawMessage(encoded), Completed: time.Now().UTC(),
			}
			if err := writeJSONFile(filepath.Join(dirs.Checkpoints, checkpointName(i, info.name)), cp); err != nil {
				return nil, fail(i, fmt.Errorf("write checkpoint: %w", err))
			}
			acc = next
			last = result
		}
		progress(n)
		return nil, nil
	})
	if _, err := exec.Execute(ctx, body, nil); failed != nil {
		return run, failed
	} else if err != nil {
		// The pipeline did not start (ctx was already cancelled).
		return run, fail(start, err)
	}
	run.Result = last
	return run, nil
}

// restrict returns the values of acc named in declared (all of acc when
// declared is nil).
func restrict(acc map[string]any, declared []string) map[string]any {
	if declared == nil {
		return maps.Clone(acc)
	}
	out := make(map[string]any, len(declared))
	for _, k := range declared {
		if v, ok := acc[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (p *Pipeline) actionNames() []string {
	names := make([]string, len(p.info))
	for i, info := range p.info {
		names[i] = info.name
	}
	return names
}

// inspectAction reads what a pipeline needs from the action's params
// schema and result type.
func inspectAction(a synapse.Action) (actionInfo, error) {
	info := actionInfo{name: a.Name()}
	var schema struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties json.RawMessage            `json:"additionalProperties"`
	}
	if err := json.Unmarshal(a.Schema(), &schema); err != nil {
		return info, fmt.Errorf("read the params schema of action %q: %w", info.name, err)
	}
	if string(bytes.TrimSpace(schema.AdditionalProperties)) == "false" {
		info.declared = slices.Sorted(maps.Keys(schema.Properties))
		if info.declared == nil {
			info.declared = []string{}
		}
	}
	info.required = neededParams(a.ParamsType(), schema.Required, propertyOrder(a.Schema()))
	info.resultType = a.ResultType()
	info.results, info.resultsKnown = resultFields(info.resultType)
	return info, nil
}

// neededParams returns the params of type t that a run must be given, in
// the order of the schema's properties: those the schema requires, and
// the top-level fields whose `validate` rules reject the params decoded
// from an empty object, with its defaults applied (Epochs int
// `validate:"min=1"` without a default). The decode is the one an action
// makes of its params before running, but without the params' Validate
// method: that is code of the action's own, which need not be safe to call
// with empty params, and whose per-field errors are commonly conditional.
// A failure of a rule that depends on other fields (required_without,
// gtfield, …) is not counted either: another param may satisfy it. A
// nested failure ("optimizer.lr") counts for its top-level field.
func neededParams(t reflect.Type, schemaRequired, properties []string) []string {
	need := map[string]bool{}
	for _, f := range schemaRequired {
		need[f] = true
	}
	if c, err := params.NewCodec(t); err == nil {
		var pe *params.Error
		if errors.As(c.Decode([]byte("{}"), reflect.New(t).Interface()), &pe) {
			for _, fe := range pe.Fields {
				top, _, _ := strings.Cut(fe.Field, ".")
				top, _, _ = strings.Cut(top, "[")
				if top == "" || !slices.Contains(properties, top) || dependsOnOtherFields(t, fe.Field) {
					continue
				}
				need[top] = true
			}
		}
	}
	var out []string
	for _, f := range properties {
		if need[f] {
			out = append(out, f)
			delete(need, f)
		}
	}
	// Required names that are not properties (there should be none) keep
	// the schema's order.
	for _, f := range schemaRequired {
		if need[f] {
			out = append(out, f)
			delete(need, f)
		}
	}
	return out
}

// dependsOnOtherFields reports whether a field on the dotted JSON path
// (from the params type t down to the failing field) has a `validate`
// rule that compares it with, or makes it conditional on, another field.
func dependsOnOtherFields(t reflect.Type, path string) bool {
	for _, seg := range strings.Split(path, ".") {
		seg, _, _ = strings.Cut(seg, "[")
		sf, ok := jsonField(t, seg)
		if !ok {
			return false
		}
		for _, rule := range strings.Split(sf.Tag.Get("validate"), ",") {
			for _, alt := range strings.Split(rule, "|") {
				name, _, _ := strings.Cut(strings.TrimSpace(alt), "=")
				if strings.Contains(name, "field") || strings.HasPrefix(name, "required_") ||
					strings.HasPrefix(name, "excluded_") || strings.HasPrefix(name, "skip_") {
					return true
				}
			}
		}
		t = sf.Type
	}
	return false
}

// jsonField finds the struct field that encoding/json decodes the key name
// into, in t or, through pointers, slices, arrays and maps, in their
// element struct (promoted fields of embedded structs included).
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch {
		case tag == "-":
		case tag == "" && sf.Anonymous && embedsStruct(sf.Type):
			if f, ok := jsonField(sf.Type, name); ok {
				return f, true
			}
		case !sf.IsExported():
		case tag == name || tag == "" && sf.Name == name:
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// embedsStruct reports whether an embedded field of type t has its fields
// promoted by encoding/json: t is a struct or a pointer to one.
func embedsStruct(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// propertyOrder returns the names of a JSON schema's top-level properties
// in the order the schema lists them (the params' field order).
func propertyOrder(schema json.RawMessage) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(schema, &top) != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(top["properties"]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return names
		}
		name, _ := tok.(string)
		names = append(names, name)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return names
		}
	}
	return names
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// resultFields returns the top-level JSON fields of a result of type t, and
// whether they are known: a struct's fields are, a map's or interface's
// are not, and other types are not JSON objects (no fields).
func resultFields(t reflect.Type) ([]string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) {
		return nil, false
	}
	switch t.Kind() {
	case reflect.Struct:
		c, err := params.NewCodec(t)
		if err != nil {
			return nil, false
		}
		return slices.Clone(c.Names()), true
	case reflect.Map, reflect.Interface:
		return nil, false
	}
	return nil, true
}

// paramsMap turns initial params, in any form Execute accepts, into a JSON
// object.
func paramsMap(in any) (map[string]any, error) {
	data, err := params.JSON(in)
	if err != nil {
		return nil, fmt.Errorf("params cannot be encoded as JSON: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := decodeJSON(data, &m); err != nil {
		return nil, fmt.Errorf("pipeline params must be a JSON object: %v", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// decodeJSON decodes data into v keeping numbers as json.Number, so large
// integers pass between actions exactly.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// runFile is the file in a run's root holding its pipeline, actions and
// initial params.
const runFile = "run.json"

type runMeta struct {
	Pipeline string         `json:"pipeline"`
	RunID    string         `json:"run_id"`
	Actions  []string       `json:"actions"`
	Params   map[string]any `json:"params"`
	Created  time.Time      `json:"created"`
}

// checkpoint is the file written after a completed action.
type checkpoint struct {
	Pipeline string `json:"pipeline"`
	RunID    string `json:"run_id"`
	Action   string `json:"action"`
	Index    int    `json:"index"`
	// Params are the params the action received.
	Params map[string]any `json:"params"`
	// Accumulated are the pipeline's params after its result was merged.
	Accumulated map[string]any  `json:"accumulated"`
	Result      json.RawMessage `json:"result"`
	Completed   time.Time       `json:"completed"`
}

// checkpointName is the file name of action index's checkpoint:
// 000-train.json.
func checkpointName(index int, action string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, action)
	return fmt.Sprintf("%03d-%s.json", index, safe)
}

// loadRun reads a run's file and its checkpoints, checking that they belong
// to this pipeline. It returns the checkpoints of the completed actions:
// those of actions 0, 1, … up to the first one missing.
func (p *Pipeline) loadRun(dirs Dirs) (runMeta, []resumed, error) {
	var meta runMeta
	data, err := os.ReadFile(filepath.Join(dirs.Root, runFile))
	if errors.Is(err, fs.ErrNotExist) {
		return meta, nil, fmt.Errorf("pipeline %q has no run %q in %s", p.name, filepath.Base(dirs.Root), filepath.Dir(dirs.Root))
	}
	if err != nil {
		return meta, nil, err
	}
	if err := decodeJSON(data, &meta); err != nil {
		return meta, nil, fmt.Errorf("read %s: %w", filepath.Join(dirs.Root, runFile), err)
	}
	names := p.actionNames()
	if !slices.Equal(meta.Actions, names) {
		return meta, nil, fmt.Errorf("the run was made with actions [%s], but the pipeline has [%s]: resume it with the same actions in the same order",
			strings.Join(meta.Actions, ", "), strings.Join(names, ", "))
	}
	files, err := filepath.Glob(filepath.Join(dirs.Checkpoints, "*.json"))
	if err != nil {
		return meta, nil, err
	}
	byIndex := map[int]resumed{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return meta, nil, err
		}
		var cp checkpoint
		if err := decodeJSON(data, &cp); err != nil {
			return meta, nil, fmt.Errorf("read checkpoint %s: %w", f, err)
		}
		if cp.Index < 0 || cp.Index >= len(names) || cp.Action != names[cp.Index] {
			return meta, nil, fmt.Errorf("checkpoint %s is for action %q at index %d, which the pipeline does not have", f, cp.Action, cp.Index)
		}
		r := resumed{Accumulated: cp.Accumulated}
		if len(cp.Result) > 0 {
			if err := decodeJSON(cp.Result, &r.Result); err != nil {
				return meta, nil, fmt.Errorf("read checkpoint %s: result: %w", f, err)
			}
		}
		if r.Accumulated == nil {
			r.Accumulated = map[string]any{}
		}
		byIndex[cp.Index] = r
	}
	var done []resumed
	for i := range names {
		r, ok := byIndex[i]
		if !ok {
			break
		}
		done = append(done, r)
	}
	return meta, done, nil
}

// resumed is what Resume needs of a checkpoint.
type resumed struct {
	Accumulated map[string]any
	Result      any
}

// writeJSONFile writes v as indented JSON to path atomically: through a
// temporary file in the same directory, renamed over path.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// newRunID returns 12 random hex digits.
func newRunID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make run ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// checkPathElement reports why s cannot be one element of a path.
func checkPathElement(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a valid file name", s)
	case strings.ContainsAny(s, `/\`+"\x00"):
		return fmt.Errorf("%q must not contain a path separator", s)
	}
	return nil
}
