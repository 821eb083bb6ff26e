package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/internal/supervise"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/remote"
)

func newRunCmd(io *IOStreams, g *globals) *cobra.Command {
	var flags runflags.Flags
	cmd := &cobra.Command{
		Use:   "run ACTION",
		Short: "Run an action of the plugin",
		Long: `Run an action of the plugin in --path.

Local mode builds the plugin binary (cached: an unchanged plugin is never rebuilt) and runs the
action in it. Task and job modes run it on a Ray cluster; remote mode runs the published release
(synapse plugin publish) on a Synapse backend's agent (synapse login, synapse agent select). Logs, progress and metrics go to stderr; the result goes to stdout (indented on a
terminal, compact JSON otherwise or with -o json).

Exit codes: 0 success; 1 the action failed or panicked, or the build failed; 2 bad flags, config,
params or an unknown action; 130 interrupted.`,
		Example: `  synapse plugin run train --params '{"epochs": 10}' --mode local
  synapse plugin run train --path ./my-plugin --params @params.json --env SEED=7
  echo '{"epochs": 3}' | synapse plugin run train --params - -o json
  synapse plugin run train --mode remote --agent 1 --params '{"epochs": 3}'`,
		Args: exactArgs(1, "one argument, the action name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			flags.Verbose = g.verbose
			return runAction(cmd.Context(), io, &flags, args[0])
		},
	}
	flags.Register(cmd.Flags())
	return cmd
}

func runAction(ctx context.Context, io *IOStreams, flags *runflags.Flags, action string) error {
	mode := synapse.ModeLocal
	if flags.Mode != "" {
		m, err := runflags.NormalizeMode(flags.Mode)
		if err != nil {
			return err
		}
		mode = m
	} else if io.IsTerminal() {
		m, err := promptMode(io)
		if err != nil {
			return err
		}
		mode = m
	}
	if err := flags.Check(mode); err != nil {
		return err
	}
	if mode == synapse.ModeRemote {
		return runRemote(ctx, io, flags, action)
	}
	cfg, err := loadConfig(io, flags.Path, true)
	if err != nil {
		return err
	}
	if _, ok := cfg.Action(action); !ok && len(cfg.Actions) > 0 {
		return synapse.NotFound(action, cfg.ActionNames())
	}
	if pyplugin.Is(cfg) {
		return runPython(ctx, io, flags, cfg, action, mode)
	}
	if mode == synapse.ModeLocal {
		return execLocal(ctx, io, flags, cfg, action)
	}
	ex, err := newExecutor(io, flags, mode, plugin.FromConfig(cfg))
	if err != nil {
		return err
	}
	return runWith(ctx, io, flags, ex, action)
}

// runRemote runs the action through a Synapse backend. The plugin
// directory is optional with -p CODE (params are then checked by the
// backend only); infer and deploy are the Python CLI's short names of
// inference and deployment unless the plugin has actions of those names.
func runRemote(ctx context.Context, io *IOStreams, flags *runflags.Flags, action string) error {
	var p *plugin.Plugin
	cfg, err := loadConfig(io, flags.Path, true)
	switch {
	case err == nil:
		p = plugin.FromConfig(cfg)
	case flags.Plugin != "" && !flags.Changed("path") && errors.Is(err, os.ErrNotExist):
		// A published plugin by its code, no directory at hand.
	default:
		return err
	}
	if p != nil && flags.Plugin != "" && p.Code() != flags.Plugin {
		if flags.Changed("path") {
			return &runflags.UsageError{Flag: "plugin", Message: fmt.Sprintf("-p %s and the plugin in %s (code %s) disagree: give one of them, or the --path of plugin %s", flags.Plugin, cfg.Dir, p.Code(), flags.Plugin)}
		}
		// -p names a published plugin other than the one here: run it
		// without this directory (the backend checks the params).
		p, cfg = nil, nil
	}
	if p == nil || !slices.Contains(p.Actions(), action) {
		action = runflags.RemoteAction(action)
	}
	if p != nil {
		if _, ok := cfg.Action(action); !ok && len(cfg.Actions) > 0 {
			return synapse.NotFound(action, cfg.ActionNames())
		}
		if pyplugin.Is(cfg) {
			if err := pyplugin.CheckEntrypoint(cfg, action); err != nil {
				return err
			}
		}
	}
	ex, err := newExecutor(io, flags, synapse.ModeRemote, p)
	if err != nil {
		return remoteOptionError(err)
	}
	return remoteOptionError(runWith(ctx, io, flags, ex, action))
}

// remoteOptionError words a *remote.OptionError (a Go option, such as
// "Agent") as the flag that sets it: "--agent: the backend … has 2
// agents; choose one …". Other errors are returned as they are.
func remoteOptionError(err error) error {
	var oe *remote.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	flag := map[string]string{"Agent": "agent", "Plugin": "plugin", "Release": "release", "Language": "lang",
		"Backend.Host": "host", "Backend.Token": "token", "Arch": "arch"}[oe.Field]
	if flag == "" {
		return err
	}
	return &runflags.UsageError{Flag: flag, Message: oe.Err.Error()}
}

// execLocal runs the action in local mode: it builds the plugin binary and
// execs it (`BINARY plugin run ACTION …`), so the action's process owns
// Ctrl-C, the terminal and the exit code.
func execLocal(ctx context.Context, io *IOStreams, flags *runflags.Flags, cfg *config.Config, action string) error {
	var err error
	var dlv string
	if flags.Dlv {
		if dlv, err = exec.LookPath("dlv"); err != nil {
			return &runflags.UsageError{Flag: "dlv", Message: "the Delve debugger (dlv) is not installed; install it with `go install github.com/go-delve/delve/cmd/dlv@latest`"}
		}
	}
	bin, err := buildPlugin(ctx, io, cfg, build.Options{Debug: flags.Dlv}, flags.DebugSDK, flags.Verbose)
	if err != nil {
		return err
	}
	argv := []string{bin, "plugin", "run", action, "--path", cfg.Path, "--params", flags.Params, "--output", flags.Output}
	for _, kv := range flags.Env {
		argv = append(argv, "--env", kv)
	}
	if flags.Lang != "" { // as an env value, which binaries of any SDK version take
		argv = append(argv, "--env", synapse.LanguageEnv+"="+flags.Lang)
	}
	if flags.EnvFile != "" {
		argv = append(argv, "--env-file", flags.EnvFile)
	}
	if flags.JobID != "" {
		argv = append(argv, "--job-id", flags.JobID)
	}
	if flags.Verbose {
		argv = append(argv, "--verbose")
	}
	if dlv != "" {
		argv = append([]string{dlv, "exec", bin, "--"}, argv[1:]...)
		// One process, the one Delve started, so breakpoints hit.
		if err := os.Setenv(supervise.Env, "off"); err != nil {
			return err
		}
		return replaceProcess(io, argv)
	}
	if err := os.Setenv(plugin.ConfigWarnedEnv, "1"); err != nil {
		return err
	}
	// The binary runs as a supervised child (no more processes than an exec):
	// an exit its action forced is reported, not mistaken for ours.
	if code, ok := supervise.Run(argv[0], argv[1:], io.ErrOut); ok {
		if code == 0 {
			return nil
		}
		return &execReplaced{code: code}
	}
	return replaceProcess(io, argv)
}

// loadConfig reads the plugin config and, with warn, prints a warning per
// unknown key (a typo such as `actons:` would otherwise change what runs
// in silence). A plugin binary the CLI execs is told (configWarnedEnv) not
// to print them again.
func loadConfig(io *IOStreams, path string, warn bool) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if warn {
		for _, w := range cfg.Warnings() {
			fmt.Fprintln(io.ErrOut, "Warning:", w)
		}
	}
	return cfg, nil
}

// buildPlugin builds the plugin binary of cfg (cached), showing a spinner
// on a terminal while a build runs.
func buildPlugin(ctx context.Context, io *IOStreams, cfg *config.Config, opts build.Options, debugSDK, verbose bool) (string, error) {
	opts.Dir = cfg.Dir
	if debugSDK {
		dir, err := sdkDir()
		if err != nil {
			return "", &runflags.UsageError{Flag: "debug-sdk", Message: err.Error()}
		}
		opts.SDKDir = dir
	}
	stop := func() {}
	if io.IsTerminal() {
		stop = spin(io.ErrOut, "Building plugin "+cfg.Code+" (a first build takes a few seconds)")
	}
	var res *build.Result
	err := interruptible(ctx, func(ctx context.Context) (err error) {
		res, err = build.Build(ctx, opts)
		return err
	})
	stop()
	if err != nil {
		return "", err
	}
	if verbose {
		state := "built in " + res.Duration.Round(1e6).String()
		if res.Cached {
			state = "cached"
		}
		fmt.Fprintf(io.ErrOut, "plugin binary: %s (%s)\n", res.Binary, state)
	}
	return res.Binary, nil
}

// interruptible runs fn with a context that Ctrl-C (or SIGTERM) cancels,
// for work that must stop and clean up when interrupted (a build, which
// runs in a process group of its own that the terminal's Ctrl-C does not
// reach, and removes its temporary files). An interrupted fn gives
// ErrInterrupted (exit 130) once it has returned.
func interruptible(ctx context.Context, fn func(ctx context.Context) error) error {
	ictx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := fn(ictx)
	if ictx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", synapse.ErrInterrupted, err)
	}
	return err
}

// promptMode asks for the mode on a terminal.
func promptMode(io *IOStreams) (synapse.Mode, error) {
	fmt.Fprintln(io.ErrOut, "Select executor mode:")
	for i, m := range runflags.ModeDescriptions {
		fmt.Fprintf(io.ErrOut, "  %d) %-6s - %s\n", i+1, m.Mode, m.Text)
	}
	fmt.Fprint(io.ErrOut, "Mode [1]: ")
	line, err := bufio.NewReader(io.In).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no mode selected (stdin closed); pass --mode")
	}
	answer := strings.TrimSpace(line)
	if answer == "" {
		return synapse.ModeLocal, nil
	}
	if n, err := strconv.Atoi(answer); err == nil && n >= 1 && n <= len(runflags.ModeDescriptions) {
		return runflags.ModeDescriptions[n-1].Mode, nil
	}
	return runflags.NormalizeMode(answer)
}
