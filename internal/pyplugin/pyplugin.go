// Package pyplugin runs Python plugins (synapse-sdk BaseAction subclasses
// named by `module.Class` or `module:Class` entrypoints in config.yaml,
// dependencies in requirements.txt) through the Python SDK's own worker,
// `python -m synapse_sdk.plugins.entrypoint`, in a virtual environment
// prepared by internal/pyenv. It never runs an action itself: the worker
// loads the params, the action class and runs it.
//
// Locally (Executor) the worker runs under runner.py, which changes one
// thing: the worker's console logger writes synapse-go's JSON events as
// lines on stdout, so the run's logs, progress and metrics reach a synapse.Logger like
// a Go plugin's. On the server's agents the worker runs as it is and
// reports over its own JobLogger.
package pyplugin

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

//go:embed runner.py
var runner string

// WorkerModule is the Python SDK's worker, run as `python -m WorkerModule`.
const WorkerModule = "synapse_sdk.plugins.entrypoint"

// RequirementsFile is a Python plugin's requirements file name.
const RequirementsFile = "requirements.txt"

// Is reports whether cfg's directory holds a Python plugin rather than a
// Go one: it has neither a go.mod nor a .go file (a Go plugin has its main
// package there, with or without a module of its own), and an action's
// entrypoint names a Python class (module.Class or module:Class) or the
// directory has a requirements.txt or .py files.
func Is(cfg *config.Config) bool {
	dir := cfg.Dir
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return false
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(m) > 0 {
		return false
	}
	for _, a := range cfg.Actions {
		if IsEntrypoint(a.Entrypoint) {
			return true
		}
	}
	if _, err := os.Stat(filepath.Join(dir, RequirementsFile)); err == nil {
		return true
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.py"))
	return len(m) > 0
}

// Entrypoint returns the worker's SYNAPSE_ACTION_ENTRYPOINT for a
// config.yaml entrypoint: "plugin.train:TrainAction" becomes
// "plugin.train.TrainAction" (the worker splits at the last dot); a dotted
// one is unchanged.
func Entrypoint(ep string) string {
	if i := strings.LastIndex(ep, ":"); i >= 0 {
		return ep[:i] + "." + ep[i+1:]
	}
	return ep
}

// IsEntrypoint reports whether ep names a Python class (module.Class or
// module:Class) rather than a Go plugin's action name.
func IsEntrypoint(ep string) bool {
	return strings.ContainsAny(ep, ".:")
}

// EnvSpec is the environment a Python plugin in dir needs: synapse-sdk as
// config.yaml's `requires.sdk` asks (pyenv.SDKRequirement) and dir's
// requirements.txt when there is one; python "" means pyenv.FindPython.
func EnvSpec(dir, requiresSDK, python string) pyenv.Spec {
	spec := pyenv.Spec{Python: python, SDK: pyenv.SDKRequirement(requiresSDK), Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, RequirementsFile)); err == nil {
		spec.Requirements = filepath.Join(dir, RequirementsFile)
	}
	return spec
}

// VenvDirEnv names the environment variable that moves the CLI's
// environments out of the plugin directories into one shared directory.
const VenvDirEnv = "SYNAPSE_VENV_DIR"

// LocalCacheDir is where the CLI keeps Python plugins' environments:
// $SYNAPSE_VENV_DIR when set, else the user cache directory's
// synapse-go/venvs (os.UserCacheDir: ~/.cache on Linux), shared by every
// plugin (an environment's key is what it holds). Not the plugin
// directory: the Python SDK's own `synapse plugin publish` would pack an
// environment there and rewrite config.yaml's entrypoints from the classes
// it finds in it. Only without a user cache directory is it the plugin
// directory's .synapse/venvs (never packaged or published by this CLI).
func LocalCacheDir(pluginDir string) string {
	if d := os.Getenv(VenvDirEnv); d != "" {
		return d
	}
	if uc, err := os.UserCacheDir(); err == nil {
		return filepath.Join(uc, "synapse-go", "venvs")
	}
	return filepath.Join(pluginDir, ".synapse", "venvs")
}

// Executor runs a Python plugin's actions in local mode: each Run prepares
// (or reuses) the environment and runs the worker in a child process in
// the plugin directory.
type Executor struct {
	// Config is the plugin's config (its Dir is the plugin directory).
	Config *config.Config
	// Cache holds the environments; nil means LocalCacheDir(Config.Dir).
	Cache *pyenv.Cache
	// Python is the interpreter to build environments from ("" finds one).
	Python string
	// Env holds the action's env values (config.yaml env, --env-file,
	// --env, the last winning), passed as environment variables, which is
	// where the worker's PluginEnvironment reads them.
	Env map[string]string
	// JobID is SYNAPSE_JOB_ID ("" for none).
	JobID string
	// Lang is SYNAPSE_LANGUAGE ("" for none).
	Lang string
	// Logger gets the run's events and the worker's other output, stdout
	// and stderr in order (as "stdout" messages); nil discards them.
	Logger synapse.Logger
	// Setup gets the environment preparation's output (pip); nil
	// discards it.
	Setup io.Writer
	// Verbose shows the worker's own start-up lines ("INFO: synapse-sdk
	// version: ...", "INFO: Using ConsoleLogger ...").
	Verbose bool
	// Grace is how long a cancelled run has between SIGINT (Python's
	// KeyboardInterrupt) and SIGKILL (default 5s).
	Grace time.Duration
}

var _ synapse.Executor = (*Executor)(nil)

// Prepare returns the plugin's environment, building it when needed. It
// is in use (synapse cache prune leaves it alone) until its Close.
func (e *Executor) Prepare(ctx context.Context) (*pyenv.Env, error) {
	cache := e.Cache
	if cache == nil {
		cache = &pyenv.Cache{Dir: LocalCacheDir(e.Config.Dir)}
	}
	return cache.Prepare(ctx, EnvSpec(e.Config.Dir, e.Config.Requires.SDK, e.Python), e.Setup)
}

// Run runs action with params (JSON bytes, json.RawMessage or a value that
// marshals to a JSON object) and returns its result as decoded JSON (a
// non-object result unwrapped from the worker's {"result": x}). Errors: an
// action config.yaml does not list is *synapse.ActionNotFoundError; params
// its params model rejects are *synapse.ValidationError; a failed action
// (or worker) is *synapse.ExecutionError with the exception, or the end of
// the worker's stderr; environment failures are pyenv's errors.
func (e *Executor) Run(ctx context.Context, action string, params any) (any, error) {
	a, ok := e.Config.Action(action)
	if !ok {
		return nil, synapse.NotFound(action, e.Config.ActionNames())
	}
	raw, err := paramsJSON(params)
	if err != nil {
		return nil, &synapse.ValidationError{Action: action, Fields: []synapse.FieldError{{Message: err.Error()}}}
	}
	env, err := e.Prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer env.Close() // in use until the worker has exited
	logger := e.Logger
	if logger == nil {
		logger = synapse.DiscardLogger
	}
	// stdout and stderr are one pipe, so lines keep their order.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	cmd := exec.Command(env.Python, "-c", runner, "run")
	cmd.Dir = e.Config.Dir
	cmd.Stdout, cmd.Stderr = pw, pw
	vars := map[string]string{
		worker.EnvActionEntrypoint: Entrypoint(a.Entrypoint),
		"SYNAPSE_GO_ACTION":        action,
		"PYTHONUNBUFFERED":         "1",
	}
	if len(raw) < worker.MaxEnvParams {
		vars[worker.EnvActionParams] = string(raw)
	} else {
		f, err := os.CreateTemp("", "synapse-params-*.json")
		if err != nil {
			pw.Close()
			return nil, err
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(raw)
		if cerr := f.Close(); werr != nil || cerr != nil {
			pw.Close()
			return nil, errors.Join(werr, cerr)
		}
		vars[worker.EnvActionParamsFile] = f.Name()
	}
	if e.JobID != "" {
		vars[worker.EnvJobID] = e.JobID
	}
	if e.Lang != "" {
		vars["SYNAPSE_LANGUAGE"] = e.Lang
	}
	cmd.Env = Environ(os.Environ(), e.Env, vars)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("run %s: start the Python worker: %w", action, err)
	}

	run := synapse.NewRunLogger(logger)
	stream := worker.NewJobStream(func(ev synapse.Event) {
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		run.Handle(ev)
	}, func(l string) {
		if e.Verbose || !isWorkerBanner(l) {
			run.Handle(outputEvent("stdout", l))
		}
	})
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// SIGINT, as Ctrl-C: Python raises KeyboardInterrupt in the
			// action, so its finally blocks and context managers run.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			grace := e.Grace
			if grace <= 0 {
				grace = 5 * time.Second
			}
			select {
			case <-stopped:
			case <-time.After(grace):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-stopped:
		}
	}()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := protocol.NewScanner(pr)
		for sc.Scan() {
			stream.Write(sc.Text() + "\n")
		}
	}()
	exitErr := cmd.Wait()
	close(stopped)
	select {
	case <-read:
	case <-time.After(time.Second):
		// A process the action started holds the output open: what the
		// worker wrote is in; stop reading.
		pr.Close()
		<-read
	}
	stream.Close()
	werr := stream.Err

	switch {
	case werr != nil:
		if werr.Action == "" {
			werr.Action = action
		}
		if werr.Kind == protocol.KindExecution && ctx.Err() != nil {
			werr.Cause = "canceled"
		}
		return nil, worker.FromError(werr)
	case exitErr != nil || stream.Result == nil:
		msg := "the Python worker ended without a result"
		if exitErr != nil {
			msg = "the Python worker failed (" + exitErr.Error() + ")"
		}
		if len(stream.Tail) > 0 {
			msg += ":\n" + strings.Join(stream.Tail, "\n")
		}
		inner := error(errors.New(msg))
		if ctx.Err() != nil {
			inner = worker.WrapCause(context.Cause(ctx), inner)
		}
		return nil, &synapse.ExecutionError{Action: action, JobID: e.JobID, Err: inner}
	}
	return worker.UnwrapResult(stream.Result)
}

// isWorkerBanner reports whether l is one of the lines the worker prints
// about itself before the action runs.
func isWorkerBanner(l string) bool {
	return strings.HasPrefix(l, "INFO: synapse-sdk version: ") || strings.HasPrefix(l, "INFO: Using ConsoleLogger ") || strings.HasPrefix(l, "INFO: Using JobLogger ")
}

func outputEvent(name, line string) synapse.Event {
	return synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelInfo, Category: name, Message: line}
}

// paramsJSON returns params as the JSON object the worker reads.
func paramsJSON(params any) ([]byte, error) {
	var raw []byte
	switch p := params.(type) {
	case nil:
		raw = []byte("{}")
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("params: %w", err)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, errors.New("params must be a JSON object")
	}
	return raw, nil
}

// Environ is base (KEY=VALUE) with values and then vars set over it, and
// the worker's inputs (SYNAPSE_ACTION_*, SYNAPSE_JOB_ID) that base may
// hold removed first, so a caller's stale value never reaches the worker.
func Environ(base []string, values, vars map[string]string) []string {
	drop := map[string]bool{worker.EnvActionEntrypoint: true, worker.EnvActionParams: true, worker.EnvActionParamsFile: true, worker.EnvJobID: true}
	for k := range values {
		drop[k] = true
	}
	for k := range vars {
		drop[k] = true
	}
	out := make([]string, 0, len(base)+len(values)+len(vars))
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	for _, m := range []map[string]string{values, vars} {
		for k, v := range m {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Actions asks the Python SDK (PluginDiscovery) for the actions of the
// plugin in dir, with python (an environment's interpreter): each with its
// description and its params model's JSON Schema. An action whose class
// cannot be imported has no Schema; its error is in the returned map.
func Actions(ctx context.Context, python, dir string) ([]protocol.ActionInfo, map[string]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-c", runner, "actions")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("list actions of %s with the Python SDK: %w\n%s", dir, err, lastLines(stderr.String(), 20))
	}
	var rows []struct {
		Name, Description, Error string
		Schema                   json.RawMessage
	}
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		return nil, nil, fmt.Errorf("list actions of %s with the Python SDK: unexpected output: %w", dir, err)
	}
	infos := make([]protocol.ActionInfo, 0, len(rows))
	errs := map[string]string{}
	for _, r := range rows {
		infos = append(infos, protocol.ActionInfo{Name: r.Name, Description: r.Description, Schema: r.Schema})
		if r.Error != "" {
			errs[r.Name] = r.Error
		}
	}
	return infos, errs, nil
}

func lastLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
