package synapse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// Mode is where RunPlugin runs an action.
type Mode string

// The execution modes (docs/modes.md).
const (
	ModeLocal  Mode = "local"  // this machine: in-process or a child process
	ModeTask   Mode = "task"   // a reused worker on a Ray cluster
	ModeJob    Mode = "job"    // a Ray job
	ModeRemote Mode = "remote" // through a Synapse backend
)

// ErrModeUnavailable matches a request for a mode this build cannot run yet.
var ErrModeUnavailable = errors.New("mode not available")

// RunOption configures RunPlugin. Every Option (WithEnv, WithJobID,
// WithLogger) is also a RunOption.
type RunOption interface {
	applyRun(*runConfig)
}

type runConfig struct {
	mode         Mode
	action       Action
	exec         execConfig
	rayAddress   string
	resources    Resources
	arch         string
	replicas     int
	maxOngoing   int
	serveAddress string
	deployStatus func(string)
}

func (o Option) applyRun(c *runConfig) { o(&c.exec) }

type runOptionFunc func(*runConfig)

func (f runOptionFunc) applyRun(c *runConfig) { f(c) }

// WithMode sets the execution mode (default ModeLocal).
func WithMode(m Mode) RunOption { return runOptionFunc(func(c *runConfig) { c.mode = m }) }

// WithAction runs a directly: no discovery, in-process.
func WithAction(a Action) RunOption { return runOptionFunc(func(c *runConfig) { c.action = a }) }

var registry struct {
	sync.RWMutex
	plugins map[string]*actionSet
}

// Register makes actions linked into this program runnable by RunPlugin
// under the plugin code. It panics if code is registered twice or two
// actions share a name (like database/sql.Register).
func Register(code string, actions ...Action) {
	set, err := newActionSet(actions)
	if err != nil {
		panic(fmt.Sprintf("synapse.Register(%q): %v", code, err))
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.plugins == nil {
		registry.plugins = map[string]*actionSet{}
	}
	if _, dup := registry.plugins[code]; dup {
		panic(fmt.Sprintf("synapse.Register(%q): plugin code registered twice", code))
	}
	registry.plugins[code] = set
}

func registered(code string) (*actionSet, []string) {
	registry.RLock()
	defer registry.RUnlock()
	return registry.plugins[code], slices.Sorted(maps.Keys(registry.plugins))
}

// RunPlugin runs action of a plugin and returns its result. pluginCode is
// resolved in this order:
//
//   - with WithAction, that action runs in-process (pluginCode is only a label);
//   - a code passed to Register runs in-process;
//   - a plugin directory or config.yaml path: the plugin binary is built
//     (cached) and the action runs in a child process over the worker
//     protocol, its events forwarded to the logger.
//
// The environment is layered OS < config.yaml env < WithEnv. Errors are
// the typed errors of Execute, rebuilt on this side for a child process.
//
// With WithMode(ModeJob), pluginCode must be a plugin directory: the
// plugin is cross-compiled, packaged, uploaded and submitted as a Ray job,
// and RunPlugin returns a *Job at once (use its Follow, Wait and Result).
// The job's env is config.yaml env < WithEnv (never this process's whole
// environment), plus SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN when set.
func RunPlugin(ctx context.Context, pluginCode, action string, params any, opts ...RunOption) (any, error) {
	var rc runConfig
	rc.mode = ModeLocal
	for _, o := range opts {
		o.applyRun(&rc)
	}
	explicitEnv := rc.exec.env
	switch rc.mode {
	case ModeLocal:
	case ModeJob:
		if st, err := os.Stat(pluginCode); err != nil || !(st.IsDir() || strings.HasSuffix(pluginCode, ".yaml")) {
			return nil, fmt.Errorf("run plugin %q in job mode: need a plugin directory or config.yaml path (job mode ships the plugin binary to the cluster)", pluginCode)
		}
		return submitJob(ctx, pluginCode, action, params, rc, explicitEnv)
	case ModeTask:
		t, err := newTaskExecutor(pluginCode, rc, explicitEnv)
		if err != nil {
			return nil, err
		}
		return t.Run(ctx, action, params)
	default:
		return nil, fmt.Errorf("run plugin %q: %w: %s mode arrives in a later release; use ModeLocal, ModeTask or ModeJob", pluginCode, ErrModeUnavailable, rc.mode)
	}
	if rc.exec.logger == nil {
		rc.exec.logger = NewConsoleLogger(os.Stderr)
	}
	rc.exec.env = MergeEnv(EnvFromOS(""), explicitEnv)

	if rc.action != nil {
		if action != "" && action != rc.action.Name() {
			return nil, fmt.Errorf("run plugin %q: WithAction gives action %q but %q was asked for", pluginCode, rc.action.Name(), action)
		}
		return execute(ctx, rc.exec, rc.action, params)
	}
	set, codes := registered(pluginCode)
	if set != nil {
		a, err := set.find(action)
		if err != nil {
			return nil, err
		}
		return execute(ctx, rc.exec, a, params)
	}
	if st, err := os.Stat(pluginCode); err == nil && (st.IsDir() || strings.HasSuffix(pluginCode, ".yaml")) {
		return runPluginDir(ctx, pluginCode, action, params, rc.exec, explicitEnv)
	}
	what := "no plugins are registered"
	if len(codes) > 0 {
		what = "registered: " + strings.Join(codes, ", ")
	}
	return nil, fmt.Errorf("run plugin %q: not a registered plugin code (%s) nor a plugin directory or config.yaml path", pluginCode, what)
}

// runPluginDir builds the plugin at path and runs action in its binary.
func runPluginDir(ctx context.Context, path, action string, params any, ec execConfig, explicitEnv *Env) (any, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if len(cfg.Actions) > 0 {
		if _, ok := cfg.Action(action); !ok {
			return nil, notFound(action, cfg.ActionNames())
		}
	}
	built, err := build.Build(ctx, build.Options{Dir: cfg.Dir})
	if err != nil {
		return nil, err
	}
	raw, err := paramsJSON(params)
	if err != nil {
		return nil, &ValidationError{Action: action, Fields: []FieldError{{Message: "params cannot be encoded as JSON: " + err.Error()}}}
	}
	entry := action
	if ca, ok := cfg.Action(action); ok {
		entry = ca.Entrypoint
	}
	env := MergeEnv(NewEnv(cfg.Env), explicitEnv)
	return runInWorker(ctx, built.Binary, cfg.Dir, protocol.Request{
		Type: protocol.TypeRun, ID: "1", Action: entry, Params: raw, JobID: ec.jobID, Env: env.Map(),
	}, ec.logger)
}

// paramsJSON returns params as JSON: JSON forms ([]byte, json.RawMessage,
// string) as they are, nil as nil, anything else encoded.
func paramsJSON(params any) (json.RawMessage, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return p, nil
	case []byte:
		return p, nil
	case string:
		return json.RawMessage(p), nil
	}
	return json.Marshal(params)
}

// workerCancelGrace is how long a cancelled run may take to stop before its
// process is killed.
const workerCancelGrace = 5 * time.Second

// runInWorker starts binary as a worker in dir, sends req and waits for its
// outcome, forwarding events to logger.
func runInWorker(ctx context.Context, binary, dir string, req protocol.Request, logger Logger) (any, error) {
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
	outcome := make(chan workerOutcome, 1)
	go func() { outcome <- readWorker(stdout, req.ID, logger) }()

	select {
	case o := <-outcome:
		settled = o.settled
		return o.result, o.err
	case <-ctx.Done():
	}
	_ = in.Write(protocol.Request{Type: protocol.TypeCancel, ID: req.ID})
	select {
	case o := <-outcome:
		settled = o.settled
		var xe *ExecutionError
		if errors.As(o.err, &xe) && !errors.Is(o.err, ctx.Err()) {
			xe.Err = wrapCause(ctx.Err(), xe.Err) // the caller's reason (a deadline, say)
		}
		return o.result, o.err
	case <-time.After(workerCancelGrace):
		_ = cmd.Process.Kill()
		return nil, &ExecutionError{Action: req.Action, JobID: req.JobID, Err: fmt.Errorf("%w: the plugin worker did not stop within %v and was killed", ctx.Err(), workerCancelGrace)}
	}
}

type workerOutcome struct {
	result  any
	err     error
	settled bool // the outcome came from the worker (not a broken stream)
}

var errWorkerGone = errors.New("the plugin worker exited before reporting a result")

// readWorker reads worker messages until run id ends. An empty id accepts
// any run's messages (a stream that carries one run only).
func readWorker(r io.Reader, id string, logger Logger) workerOutcome {
	run := runIDs.Add(1)
	sc := protocol.NewScanner(r)
	for sc.Scan() {
		var m protocol.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Type == "" {
			// Not protocol: the action printed to stdout. Pass it on as text
			// and keep reading, so the run's outcome is not lost.
			logger.Handle(Event{Type: EventMessage, Time: time.Now(), Level: LevelInfo, Category: "stdout", Message: sc.Text(), run: run})
			continue
		}
		if id != "" && m.ID != id && m.Type != protocol.TypeError || m.Type == protocol.TypeReady {
			continue // the ready line, or another run's messages
		}
		switch m.Type {
		case protocol.TypeEvent:
			var e Event
			if err := json.Unmarshal(m.Event, &e); err == nil {
				e.run = run
				logger.Handle(e)
			}
		case protocol.TypeResult:
			var v any
			if err := json.Unmarshal(m.Result, &v); err != nil {
				return workerOutcome{err: fmt.Errorf("read plugin result: %w", err)}
			}
			return workerOutcome{result: v, settled: true}
		case protocol.TypeError:
			if m.Error == nil {
				return workerOutcome{err: errors.New("plugin worker reported an error without details"), settled: true}
			}
			if m.Error.Kind == protocol.KindProtocol {
				return workerOutcome{err: fmt.Errorf("plugin worker: %s", m.Error.Message), settled: true}
			}
			return workerOutcome{err: fromWireError(m.Error), settled: true}
		}
	}
	if err := sc.Err(); err != nil {
		return workerOutcome{err: fmt.Errorf("read plugin worker output: %w", err)}
	}
	return workerOutcome{err: &ExecutionError{Err: errWorkerGone}}
}
