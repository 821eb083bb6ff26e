package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

func init() { synapse.RegisterMode(synapse.ModeLocal, openLocal) }

// openLocal is the ModeLocal Opener of RunPlugin for a plugin directory.
func openLocal(path string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
	if cfg.Options != nil {
		return nil, fmt.Errorf("run plugin %q in local mode: local mode takes no mode options (got %T)", path, cfg.Options)
	}
	if st, err := os.Stat(path); err != nil || !(st.IsDir() || strings.HasSuffix(path, ".yaml")) {
		return nil, fmt.Errorf("run plugin %q: not a registered plugin code nor a plugin directory or config.yaml path", path)
	}
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	return NewExecutor(p, synapse.WithEnv(cfg.Env), synapse.WithJobID(cfg.JobID), synapse.WithLogger(cfg.Logger)), nil
}

// Executor runs a plugin's actions in local mode in a child process: the
// plugin binary, built for this machine (cached), serving the worker
// protocol (docs/protocol.md). Events are forwarded to the logger and
// errors rebuilt as the typed errors of an in-process run. Each Run starts
// one worker process. It is safe for concurrent use.
type Executor struct {
	p      *Plugin
	env    *synapse.Env
	jobID  string
	logger synapse.Logger
}

var _ synapse.Executor = (*Executor)(nil)

// NewExecutor returns the local executor of p. The action's environment is
// the OS environment < config.yaml env < WithEnv.
func NewExecutor(p *Plugin, opts ...synapse.Option) *Executor {
	cfg := synapse.NewExecutorConfig(opts...)
	return &Executor{p: p, env: cfg.Env, jobID: cfg.JobID, logger: cfg.Logger}
}

// workerCancelGrace is how long a cancelled run may take to stop before its
// process is killed.
const workerCancelGrace = 5 * time.Second

// Run runs action (a config.yaml action, mapped to its entrypoint) in a
// new worker process. Cancelling ctx sends the worker a cancel request;
// a worker that has not stopped after 5 s is killed.
func (e *Executor) Run(ctx context.Context, action string, params any) (any, error) {
	entry, err := e.p.Entrypoint(action)
	if err != nil {
		return nil, err
	}
	raw, err := ParamsJSON(action, params)
	if err != nil {
		return nil, err
	}
	bin, err := e.p.Binary(ctx)
	if err != nil {
		return nil, err
	}
	env := synapse.MergeEnv(e.p.Env(), e.env)
	res, err := runInWorker(ctx, bin, e.p.Dir(), protocol.Request{
		Type: protocol.TypeRun, ID: "1", Action: entry, Params: raw, JobID: e.jobID, Env: env.Map(),
	}, e.logger)
	return res, worker.Rename(err, entry, action)
}

// runInWorker starts binary as a worker in dir, sends req and waits for its
// outcome, forwarding events to logger.
func runInWorker(ctx context.Context, binary, dir string, req protocol.Request, logger synapse.Logger) (any, error) {
	cmd := exec.Command(binary, "worker")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start plugin worker %s: %w", binary, err)
	}
	settled := false // the worker reported the run's outcome
	defer func() {
		_ = stdin.Close() // a worker whose input ends exits once idle
		if !settled {
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	}()

	in := protocol.NewWriter(stdin)
	if err := in.Write(req); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("send run request to plugin worker: %w", err)
	}
	outcome := make(chan worker.Outcome, 1)
	go func() { outcome <- worker.Read(stdout, req.ID, logger) }()

	gone := func(o worker.Outcome) (any, error) {
		// The worker's output ended without an outcome: say how it ended.
		var xe *synapse.ExecutionError
		if !o.Settled && errors.As(o.Err, &xe) && errors.Is(xe.Err, worker.ErrGone) {
			_ = stdin.Close()
			werr := cmd.Wait()
			settled = true // waited for
			xe.Action, xe.JobID = req.Action, req.JobID
			if werr != nil {
				xe.Err = fmt.Errorf("%w (%v)", worker.ErrGone, werr)
			}
		}
		return o.Result, o.Err
	}
	select {
	case o := <-outcome:
		settled = o.Settled
		return gone(o)
	case <-ctx.Done():
	}
	_ = in.Write(protocol.Request{Type: protocol.TypeCancel, ID: req.ID})
	select {
	case o := <-outcome:
		settled = o.Settled
		var xe *synapse.ExecutionError
		if errors.As(o.Err, &xe) && !errors.Is(o.Err, ctx.Err()) {
			xe.Err = worker.WrapCause(ctx.Err(), xe.Err) // the caller's reason (a deadline, say)
		}
		return o.Result, o.Err
	case <-time.After(workerCancelGrace):
		_ = cmd.Process.Kill()
		return nil, &synapse.ExecutionError{Action: req.Action, JobID: req.JobID, Err: fmt.Errorf("%w: the plugin worker did not stop within %v and was killed", ctx.Err(), workerCancelGrace)}
	}
}
