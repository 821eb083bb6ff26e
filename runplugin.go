package synapse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
)

// Mode is where an action runs (docs/modes.md).
type Mode string

// The execution modes. ModeLocal runs in this process (a registered code,
// WithAction) or, for a plugin directory, in the plugin's binary (package
// plugin registers that); ModeJob and ModeTask run on a Ray cluster and
// are registered by package ray; ModeRemote runs through a Synapse backend.
const (
	ModeLocal  Mode = "local"  // this machine: in-process or a child process
	ModeTask   Mode = "task"   // a reused worker on a Ray cluster
	ModeJob    Mode = "job"    // a Ray job
	ModeRemote Mode = "remote" // through a Synapse backend
)

// ErrModeUnavailable matches an error for a mode this program cannot run:
// no package registered it (see RegisterMode).
var ErrModeUnavailable = errors.New("mode not available")

// ExecutorConfig is what RunPlugin passes to a mode's Opener.
type ExecutorConfig struct {
	// Env holds the values given with WithEnv (nil when none were). Each
	// mode layers it over config.yaml env (and, running on this machine,
	// over the OS environment).
	Env *Env
	// JobID is the job identifier given with WithJobID ("" for none).
	JobID string
	// Logger receives the run's events; never nil.
	Logger Logger
	// Options is the value given with WithModeOptions, nil when none was:
	// the mode's own options struct (ray.JobOptions, ray.TaskOptions, …).
	// An Opener rejects a value of a type it does not take.
	Options any
}

// NewExecutorConfig resolves opts for an executor of another package:
// Env is the WithEnv value (nil when none was given) with WithLanguage's
// language as SYNAPSE_LANGUAGE, Logger defaults to
// NewConsoleLogger(os.Stderr).
func NewExecutorConfig(opts ...Option) ExecutorConfig {
	var c execConfig
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = NewConsoleLogger(os.Stderr)
	}
	if c.lang != "" {
		c.env = MergeEnv(c.env, NewEnv(map[string]any{LanguageEnv: c.lang}))
	}
	return ExecutorConfig{Env: c.env, JobID: c.jobID, Logger: c.logger}
}

// Opener opens an Executor of one mode for the plugin at plugin (a plugin
// directory or config.yaml path).
type Opener func(plugin string, cfg ExecutorConfig) (Executor, error)

var modes struct {
	sync.RWMutex
	open map[Mode]Opener
}

// modePackage is the package that registers each mode, for the error that
// names the import a program lacks.
var modePackage = map[Mode]string{
	ModeLocal:  "github.com/synapse-sdk/synapse-go/plugin",
	ModeJob:    "github.com/synapse-sdk/synapse-go/ray",
	ModeTask:   "github.com/synapse-sdk/synapse-go/ray",
	ModeRemote: "github.com/synapse-sdk/synapse-go/remote",
}

// RegisterMode makes mode available to RunPlugin, like database/sql.Register
// does for drivers: packages that implement a mode call it from init, so
// importing them (`import _ "github.com/synapse-sdk/synapse-go/ray"`) is
// enough. It panics if open is nil or mode is registered twice.
func RegisterMode(mode Mode, open Opener) {
	if open == nil {
		panic(fmt.Sprintf("synapse.RegisterMode(%q): opener is nil", mode))
	}
	modes.Lock()
	defer modes.Unlock()
	if modes.open == nil {
		modes.open = map[Mode]Opener{}
	}
	if _, dup := modes.open[mode]; dup {
		panic(fmt.Sprintf("synapse.RegisterMode(%q): mode registered twice", mode))
	}
	modes.open[mode] = open
}

// opener returns the Opener of mode, or an error naming the package to
// import.
func opener(mode Mode) (Opener, error) {
	modes.RLock()
	open, ok := modes.open[mode]
	modes.RUnlock()
	if ok {
		return open, nil
	}
	if pkg, known := modePackage[mode]; known {
		return nil, fmt.Errorf("%w: %s mode is not linked into this program; add `import _ %q`", ErrModeUnavailable, mode, pkg)
	}
	return nil, fmt.Errorf("%w: unknown mode %q (want local, task, job or remote)", ErrModeUnavailable, mode)
}

// RunOption configures RunPlugin: WithMode, WithAction, WithModeOptions,
// and every Option (WithEnv, WithJobID, WithLogger).
type RunOption interface {
	applyRun(*runConfig)
}

type runConfig struct {
	mode        Mode
	action      Action
	actionSet   bool // WithAction was given (its action may be nil)
	exec        execConfig
	modeOptions any
}

func (o Option) applyRun(c *runConfig) { o(&c.exec) }

type runOptionFunc func(*runConfig)

func (f runOptionFunc) applyRun(c *runConfig) { f(c) }

// WithMode sets the execution mode (default ModeLocal).
func WithMode(m Mode) RunOption { return runOptionFunc(func(c *runConfig) { c.mode = m }) }

// WithAction runs a directly, in-process, in local mode: no discovery
// (pluginCode is only a label). Other modes reject it: they run the
// plugin's own binary.
func WithAction(a Action) RunOption {
	return runOptionFunc(func(c *runConfig) { c.action, c.actionSet = a, true })
}

// WithModeOptions passes the mode's own options (ray.JobOptions for
// ModeJob, ray.TaskOptions for ModeTask, remote.Options for ModeRemote) to
// its Opener. A mode given options of a type it does not take fails with
// an error, so an option is never silently ignored.
func WithModeOptions(opts any) RunOption {
	return runOptionFunc(func(c *runConfig) { c.modeOptions = opts })
}

var registry struct {
	sync.RWMutex
	plugins map[string]*ActionSet
}

// Register makes actions linked into this program runnable by RunPlugin
// under the plugin code. It panics if code is registered twice or two
// actions share a name (like database/sql.Register).
func Register(code string, actions ...Action) {
	set, err := NewActionSet(actions)
	if err != nil {
		panic(fmt.Sprintf("synapse.Register(%q): %v", code, err))
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.plugins == nil {
		registry.plugins = map[string]*ActionSet{}
	}
	if _, dup := registry.plugins[code]; dup {
		panic(fmt.Sprintf("synapse.Register(%q): plugin code registered twice", code))
	}
	registry.plugins[code] = set
}

func registered(code string) (*ActionSet, []string) {
	registry.RLock()
	defer registry.RUnlock()
	return registry.plugins[code], slices.Sorted(maps.Keys(registry.plugins))
}

// RunPlugin runs action of a plugin and returns its result, in any mode.
// In local mode (the default) pluginCode is resolved in this order:
//
//   - with WithAction, that action runs in-process (pluginCode is only a label);
//   - a code passed to Register runs in-process;
//   - otherwise pluginCode is a plugin directory or config.yaml path: the
//     plugin binary is built (cached) and the action runs in a child process
//     (package plugin provides this mode).
//
// Other modes take a plugin directory and need the package that registers
// them (ModeJob and ModeTask: package ray; ModeRemote: package remote,
// which also takes the code of a published plugin); their options come
// with WithModeOptions. In job mode RunPlugin submits the job, follows its
// events and returns its result; use ray.JobExecutor.Submit for a handle.
//
// The environment of an in-process run is the OS environment < WithEnv;
// other modes layer config.yaml env under WithEnv. Errors are the typed
// errors of Executor in every mode.
func RunPlugin(ctx context.Context, pluginCode, action string, params any, opts ...RunOption) (any, error) {
	rc := runConfig{mode: ModeLocal}
	for _, o := range opts {
		o.applyRun(&rc)
	}
	if rc.exec.logger == nil {
		rc.exec.logger = NewConsoleLogger(os.Stderr)
	}
	explicitEnv := rc.exec.env
	if rc.exec.lang != "" {
		explicitEnv = MergeEnv(explicitEnv, NewEnv(map[string]any{LanguageEnv: rc.exec.lang}))
	}
	set, _ := registered(pluginCode)
	switch {
	case rc.action == nil && rc.actionSet:
		return nil, fmt.Errorf("run plugin %q: WithAction was given a nil action", pluginCode)
	case rc.action != nil && rc.mode != ModeLocal:
		return nil, fmt.Errorf("run plugin %q: WithAction runs in-process in local mode, not in %s mode (which runs the plugin's own binary)", pluginCode, rc.mode)
	case rc.mode == ModeLocal && (rc.action != nil || set != nil):
		if rc.modeOptions != nil {
			return nil, fmt.Errorf("run plugin %q: an in-process run takes no mode options (got %T)", pluginCode, rc.modeOptions)
		}
		inProcess := rc.exec
		inProcess.env = MergeEnv(EnvFromOS(""), explicitEnv)
		if rc.action != nil {
			if action != "" && action != rc.action.Name() {
				return nil, fmt.Errorf("run plugin %q: WithAction gives action %q but %q was asked for", pluginCode, rc.action.Name(), action)
			}
			return execute(ctx, inProcess, rc.action, params)
		}
		a, err := set.Lookup(action)
		if err != nil {
			return nil, err
		}
		return execute(ctx, inProcess, a, params)
	}
	open, err := opener(rc.mode)
	if err != nil {
		if rc.mode == ModeLocal {
			what := "no plugins are registered"
			if _, codes := registered(pluginCode); len(codes) > 0 {
				what = "registered: " + strings.Join(codes, ", ")
			}
			return nil, fmt.Errorf("run plugin %q: not a registered plugin code (%s); running a plugin directory needs package plugin: %w", pluginCode, what, err)
		}
		return nil, fmt.Errorf("run plugin %q: %w", pluginCode, err)
	}
	ex, err := open(pluginCode, ExecutorConfig{Env: explicitEnv, JobID: rc.exec.jobID, Logger: rc.exec.logger, Options: rc.modeOptions})
	if err != nil {
		return nil, err
	}
	return ex.Run(ctx, action, params)
}
