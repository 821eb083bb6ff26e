package synapse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	"github.com/synapse-sdk/synapse-go/internal/params"
)

// Executor runs a plugin's actions by name: the contract every execution
// mode implements (in-process ActionSet, plugin.Executor in a child process,
// ray.JobExecutor, ray.TaskExecutor, remote.Executor). params may be a map[string]any, a
// json.RawMessage, a []byte or string of JSON, or any value that encodes
// to the action's params as JSON (in-process, a value of the params type
// is used as it is).
//
// Run returns the action's result (decoded from JSON when it crossed a
// process boundary: objects as map[string]any, numbers as float64) and
// errors of the same types in every mode:
//   - *ValidationError: params were rejected; the action did not run;
//   - *ActionNotFoundError: no action of that name, with the available ones;
//   - *ExecutionError: the action failed, panicked or was cancelled; errors.Is
//     reaches context.Canceled or context.DeadlineExceeded for a cancelled run.
//
// Cancelling ctx cancels the run: in-process the action's Context is
// cancelled; a child process or cluster worker is asked to cancel it.
// Events (logs, progress, metrics) go to the Logger the executor was
// created with.
type Executor interface {
	Run(ctx context.Context, action string, params any) (any, error)
}

// Submitter is an Executor whose runs can outlive the call that starts
// them (job mode, remote mode). Submit validates params and starts
// the run, returning its handle without waiting; Run is Submit, Follow and
// Result in one.
type Submitter interface {
	Executor
	Submit(ctx context.Context, action string, params any) (Job, error)
}

// Job is a run that outlives the call that started it.
//
// Cancelling the ctx of a method ends that call only; the job keeps
// running unless Stop is called.
type Job interface {
	// ID is the job's identifier (Ray: the submission ID; a Synapse
	// backend: the job's UUID).
	ID() string
	// Status returns the job's current status.
	Status(ctx context.Context) (JobStatus, error)
	// Follow passes the job's events to logger until the job has ended and
	// its output is drained, or ctx is done.
	Follow(ctx context.Context, logger Logger) error
	// Result waits for the job to end and returns the action's result, or
	// its typed error; a stopped job's error matches ErrJobStopped.
	Result(ctx context.Context) (any, error)
	// Stop stops the job and waits until it has stopped.
	Stop(ctx context.Context) error
}

// JobStatus is the state of a job. The values are Ray's job states, which
// are also the Synapse backend's.
type JobStatus string

// Job states.
const (
	JobPending   JobStatus = "PENDING"
	JobRunning   JobStatus = "RUNNING"
	JobStopped   JobStatus = "STOPPED"
	JobSucceeded JobStatus = "SUCCEEDED"
	JobFailed    JobStatus = "FAILED"
)

// Terminal reports whether the job has ended.
func (s JobStatus) Terminal() bool {
	return s == JobStopped || s == JobSucceeded || s == JobFailed
}

// Option configures an executor: NewLocalExecutor, NewActionSet, RunPlugin
// and the executors of every mode accept the same ones.
type Option func(*execConfig)

type execConfig struct {
	env    *Env
	jobID  string
	logger Logger
	lang   string
}

// WithEnv sets the environment actions see through Context.Env. In this
// process the default is EnvFromOS(""), read when the executor is created;
// a plugin binary on this machine layers it over the OS environment and
// config.yaml env; the cluster modes over config.yaml env only.
func WithEnv(env *Env) Option { return func(c *execConfig) { c.env = env } }

// WithJobID sets the job identifier actions see through Context.JobID.
func WithJobID(id string) Option { return func(c *execConfig) { c.jobID = id } }

// WithLogger sets where the events of runs go. The default is
// NewConsoleLogger(os.Stderr).
func WithLogger(l Logger) Option { return func(c *execConfig) { c.logger = l } }

func newExecConfig(opts []Option) execConfig {
	var c execConfig
	for _, o := range opts {
		o(&c)
	}
	if c.env == nil {
		c.env = EnvFromOS("")
	}
	if c.logger == nil {
		c.logger = NewConsoleLogger(os.Stderr)
	}
	return c
}

// LocalExecutor runs actions in the calling process and goroutine, so a
// debugger's breakpoints in action code work. It is safe for concurrent
// Execute calls; every run has its own Context and progress and metrics
// state.
type LocalExecutor struct {
	cfg execConfig
}

// NewLocalExecutor returns an executor for local mode.
func NewLocalExecutor(opts ...Option) *LocalExecutor {
	return &LocalExecutor{cfg: newExecConfig(opts)}
}

var runIDs atomic.Uint64

// Execute validates params, runs the action synchronously and returns its
// result. Cancelling ctx cancels the action's Context. Errors:
// *ValidationError, *ExecutionError.
func (e *LocalExecutor) Execute(ctx context.Context, action Action, params any) (any, error) {
	return execute(ctx, e.cfg, action, params)
}

func execute(ctx context.Context, cfg execConfig, action Action, params any) (any, error) {
	if action == nil {
		return nil, errors.New("execute action: action is nil")
	}
	env := cfg.env
	if cfg.lang != "" { // as other modes see it: in the env too
		env = MergeEnv(env, NewEnv(map[string]any{LanguageEnv: cfg.lang}))
	}
	c := newRun(ctx, runIDs.Add(1), action.Name(), cfg.jobID, env, cfg.logger)
	c.run.lang = cfg.lang
	start := c.run.now()
	result, verr, err := action.invoke(c, params)
	c.run.tracker.Finish(c.run.now().Sub(start))
	if verr != nil {
		return nil, verr
	}
	if err == nil {
		return result, nil
	}
	xe := &ExecutionError{Action: action.Name(), JobID: cfg.jobID, Err: err}
	var p *panicked
	if errors.As(err, &p) {
		xe.Err, xe.Stack = p.PanicError, p.stack
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		xe.Err = fmt.Errorf("%w: %w", cerr, xe.Err)
	}
	return nil, xe
}

// ActionSet is a plugin's actions in this process, run by name: the
// in-process Executor. RunPlugin uses one for a code passed to Register,
// and plugin.Main for the commands of a plugin binary. It is safe for
// concurrent use.
type ActionSet struct {
	byName map[string]Action
	names  []string
	cfg    execConfig
}

var _ Executor = (*ActionSet)(nil)

// NewActionSet returns the set of actions, run with opts. It fails if an
// action is nil or two share a name.
func NewActionSet(actions []Action, opts ...Option) (*ActionSet, error) {
	s := &ActionSet{byName: make(map[string]Action, len(actions)), cfg: newExecConfig(opts)}
	for _, a := range actions {
		if a == nil {
			return nil, fmt.Errorf("register actions: action %d is nil", len(s.names))
		}
		if _, dup := s.byName[a.Name()]; dup {
			return nil, fmt.Errorf("register actions: two actions are named %q", a.Name())
		}
		s.byName[a.Name()] = a
		s.names = append(s.names, a.Name())
	}
	return s, nil
}

// Names returns the names of the actions, in the order given.
func (s *ActionSet) Names() []string { return slices.Clone(s.names) }

// Lookup returns the action named name, or an *ActionNotFoundError that
// lists the available names and suggests the closest one.
func (s *ActionSet) Lookup(name string) (Action, error) {
	if a, ok := s.byName[name]; ok {
		return a, nil
	}
	return nil, NotFound(name, s.names)
}

// Run runs the action named action in the calling goroutine (see
// Executor).
func (s *ActionSet) Run(ctx context.Context, action string, params any) (any, error) {
	a, err := s.Lookup(action)
	if err != nil {
		return nil, err
	}
	return execute(ctx, s.cfg, a, params)
}

// NotFound returns the error for a request for action name, which is not
// among available: an *ActionNotFoundError suggesting the closest
// available name, if one is close.
func NotFound(name string, available []string) *ActionNotFoundError {
	return &ActionNotFoundError{Action: name, Available: slices.Clone(available), Suggestion: params.Suggest(name, available)}
}
