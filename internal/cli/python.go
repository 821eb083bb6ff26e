package cli

import (
	"bytes"
	"context"
	"fmt"
	stdio "io"
	"strings"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
)

// runPython runs an action of a Python plugin (a directory with
// config.yaml and no Go code) through the Python SDK's worker, in the
// plugin's own virtual environment under .synapse/venvs, or in job mode
// as a Ray job (pyplugin.JobExecutor: Ray installs the environment).
// Remote mode runs its published release (runRemote, as for a Go plugin);
// task mode is not available (docs/modes.md says why).
func runPython(ctx context.Context, io *IOStreams, flags *runflags.Flags, cfg *config.Config, action string, mode synapse.Mode) error {
	if err := pyplugin.CheckEntrypoint(cfg, action); err != nil {
		return err // before any environment is built
	}
	if mode != synapse.ModeLocal && mode != synapse.ModeJob {
		return &runflags.UsageError{Flag: "mode", Message: fmt.Sprintf("%s is a Python plugin: this CLI runs Python plugins in local, job and remote mode (--mode local, job or remote: synapse plugin publish, then run it on a backend's agent; docs/modes.md)", cfg.Dir)}
	}
	if flags.Dlv || flags.DebugSDK {
		return &runflags.UsageError{Flag: map[bool]string{true: "dlv", false: "debug-sdk"}[flags.Dlv], Message: "debugs a Go plugin; " + cfg.Dir + " is a Python plugin"}
	}
	fileEnv, err := explicitEnv(flags)
	if err != nil {
		return err
	}
	env := synapse.MergeEnv(synapse.NewEnv(cfg.Env), fileEnv).Strings()
	if mode == synapse.ModeJob {
		if flags.NoWait {
			return &runflags.UsageError{Flag: "no-wait", Message: "a Python plugin's job is followed to its end (--no-wait is for Go plugins)"}
		}
		client, err := ray.NewClient(flags.RayAddress)
		if err != nil {
			return err
		}
		delete(env, "SYNAPSE_ACCESS_TOKEN") // Ray keeps env_vars in clear
		ex := &pyplugin.JobExecutor{Config: cfg, Client: client, Env: env, JobID: flags.JobID, Lang: flags.Lang,
			Logger: synapse.NewConsoleLogger(io.ErrOut), CPUs: flags.CPUs, GPUs: flags.GPUs, Memory: flags.MemoryBytes(), Custom: flags.CustomResources(),
			Submitted: func(id string) {
				fmt.Fprintf(io.ErrOut, "Job submitted: %s\nDashboard: %s\n", id, client.JobURL(id))
			}}
		return runWith(ctx, io, flags, ex, action)
	}
	ex := &pyplugin.Executor{Config: cfg, Env: env, JobID: flags.JobID, Lang: flags.Lang, Verbose: flags.Verbose,
		Logger: synapse.NewRunLogger(synapse.NewConsoleLogger(io.ErrOut))}
	if err := preparePython(ctx, io, ex, flags.Verbose); err != nil {
		return err
	}
	return runWith(ctx, io, flags, ex, action)
}

// preparePython prepares (or reuses) the plugin's environment, with a
// spinner on a terminal; pip's output is shown with --verbose, and is in
// the error when it fails.
func preparePython(ctx context.Context, io *IOStreams, ex *pyplugin.Executor, verbose bool) error {
	stop := func() {}
	if io.IsTerminal() {
		stop = spin(io.ErrOut, "Preparing the Python environment of "+ex.Config.Code+" (a first run installs synapse-sdk and requirements.txt with pip)")
	}
	var setup stdio.Writer = &prefixLines{w: io.ErrOut, keep: "Prepar"}
	if verbose {
		setup = io.ErrOut
	}
	ex.Setup = setup
	var env *pyenv.Env
	err := interruptible(ctx, func(ctx context.Context) (err error) {
		env, err = ex.Prepare(ctx)
		return err
	})
	stop()
	ex.Setup = nil
	if err != nil {
		return err
	}
	defer env.Close() // the run takes it again
	if verbose {
		state := "built in " + env.Duration.Round(1e6).String()
		if env.Reused {
			state = "reused"
		}
		fmt.Fprintf(io.ErrOut, "python environment: %s (%s)\n", env.Dir, state)
	}
	return nil
}

// pythonActions asks the Python SDK for the plugin's actions and their
// params schemas, named by their config entrypoints the way a Go plugin
// binary names its actions (what reconcile pairs them by). An action whose
// class cannot be imported is left out, with a warning saying why.
func pythonActions(ctx context.Context, io *IOStreams, cfg *config.Config, verbose bool) ([]protocol.ActionInfo, error) {
	ex := &pyplugin.Executor{Config: cfg}
	if err := preparePython(ctx, io, ex, verbose); err != nil {
		return nil, err
	}
	env, err := ex.Prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	infos, errs, err := pyplugin.Actions(ctx, env.Python, cfg.Dir)
	if err != nil {
		return nil, err
	}
	out := infos[:0]
	for _, in := range infos {
		a, _ := cfg.Action(in.Name)
		if e := errs[in.Name]; e != "" {
			fmt.Fprintf(io.ErrOut, "Warning: action %q: its class %s cannot be loaded: %s\n", in.Name, a.Entrypoint, e)
			continue
		}
		in.Name = a.Entrypoint
		out = append(out, in)
	}
	return out, nil
}

// prefixLines passes on the lines that start with keep and drops the
// others (pip's progress, unless --verbose).
type prefixLines struct {
	w       stdio.Writer
	keep    string
	partial []byte
}

func (p *prefixLines) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := p.partial[:i+1]
		if strings.HasPrefix(string(line), p.keep) {
			if _, err := p.w.Write(line); err != nil {
				return len(b), err
			}
		}
		p.partial = p.partial[i+1:]
	}
}
