package synapse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Executor runs actions. params may be a map[string]any, a json.RawMessage,
// a []byte or string of JSON, or a value of the action's params type.
//
// Errors are typed: *ValidationError when params are rejected (the action
// did not run), *ExecutionError when the action failed, panicked or was
// cancelled.
type Executor interface {
	Execute(ctx context.Context, action Action, params any) (any, error)
}

// Option configures an executor.
type Option func(*execConfig)

type execConfig struct {
	env    *Env
	jobID  string
	logger Logger
}

// WithEnv sets the environment actions see through Context.Env. The default
// is EnvFromOS(""), read when the executor is created.
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
// result. Cancelling ctx cancels the action's Context.
func (e *LocalExecutor) Execute(ctx context.Context, action Action, params any) (any, error) {
	return execute(ctx, e.cfg, action, params)
}

func execute(ctx context.Context, cfg execConfig, action Action, params any) (any, error) {
	if action == nil {
		return nil, errors.New("execute action: action is nil")
	}
	c := newRun(ctx, runIDs.Add(1), action.Name(), cfg.jobID, cfg.env, cfg.logger)
	result, verr, err := action.invoke(c, params)
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
