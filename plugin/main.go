// Package plugin is the runtime of a plugin binary, and the way to run a
// plugin directory from Go.
//
// A plugin binary's main is plugin.Main(actions...): it gives the binary
// the commands the synapse CLI and the cluster modes use (docs/protocol.md).
// It links no cluster code. Load reads a plugin directory once (config.yaml;
// its binary for this machine, built when first needed), and NewExecutor
// runs its actions in local mode in a child process; importing the package
// lets synapse.RunPlugin run a plugin directory in local mode.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/capture"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/internal/supervise"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// Main is the main function of a plugin binary:
//
//	func main() { plugin.Main(Train, Infer) }
//
// It gives the binary these commands (docs/protocol.md):
//
//	plugin run ACTION [flags]   run an action in this process (local mode; the flags of `synapse plugin run`)
//	plugin run-pipeline NAME    run (or --resume) a pipeline declared in config.yaml, in this process
//	actions                     list the actions with descriptions and params schemas (JSON)
//	schema ACTION               print the params JSON Schema of an action
//	worker                      serve the line-delimited JSON worker protocol on stdin/stdout
//	job                         run the action named by $SYNAPSE_ACTION_ENTRYPOINT as a Ray job
//	validate ACTION             check params (JSON on stdin) without running the action
//
// Main exits the process with the CLI's exit codes (docs/cli.md). It
// panics if two actions share a name.
func Main(actions ...synapse.Action) {
	set, err := synapse.NewActionSet(actions)
	if err != nil {
		panic("plugin.Main: " + err.Error())
	}
	args := os.Args[1:]
	if len(args) >= 2 && args[0] == "plugin" && (args[1] == "run" || args[1] == "run-pipeline") {
		if code, ok := supervise.Self(args, os.Stderr); ok {
			os.Exit(code)
		}
	}
	code := runMain(set, args, os.Stdin, os.Stdout, os.Stderr)
	supervise.MarkChosenExit()
	os.Exit(code)
}

const mainUsage = `Usage: %[1]s COMMAND

Commands:
  plugin run ACTION [flags]   run an action in this process (local mode)
  plugin run-pipeline NAME    run (or --resume) a pipeline of config.yaml in this process
  actions                     list actions, descriptions and params schemas (JSON)
  schema ACTION               print the params JSON Schema of an action
  worker                      serve the worker protocol on stdin/stdout
  job                         run the action named by $SYNAPSE_ACTION_ENTRYPOINT as a cluster job
  validate ACTION             check params (JSON on stdin) without running; errors as JSON on stdout

Run '%[1]s plugin run --help' for the flags of plugin run.
`

func runMain(set *synapse.ActionSet, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "plugin"
	if len(os.Args) > 0 {
		prog = baseName(os.Args[0])
	}
	usage := func(msg string) int {
		if msg != "" {
			fmt.Fprintf(stderr, "Error: %s\n\n", msg)
		}
		fmt.Fprintf(stderr, mainUsage, prog)
		return exit.Usage
	}
	if len(args) == 0 {
		return usage("")
	}
	switch args[0] {
	case "plugin":
		switch {
		case len(args) >= 2 && args[1] == "run":
			return runLocal(set, args[2:], stdin, stdout, stderr)
		case len(args) >= 2 && args[1] == "run-pipeline":
			return runPipelineCommand(set, args[2:], stdin, stdout, stderr)
		}
		return usage("unknown command; the plugin command has the subcommands run and run-pipeline")
	case "actions":
		return printJSON(stdout, stderr, infos(set, true))
	case "schema":
		if len(args) != 2 {
			return usage("schema takes one argument, the action name")
		}
		a, err := set.Lookup(args[1])
		if err != nil {
			fmt.Fprintln(stderr, "Error:", err)
			return exit.Code(err)
		}
		return printJSON(stdout, stderr, a.Schema())
	case "job":
		return runJob(set, args[1:], stdout, stderr)
	case "validate":
		if len(args) != 2 {
			return usage("validate takes one argument, the action name (params on stdin)")
		}
		return runValidate(set, args[1], stdin, stdout)
	case "worker":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The protocol owns stdout: what actions print there travels as
		// events of no run in particular (ID ""), never as raw text.
		out := &lockedWriter{w: stdout}
		realOut, capt := captureOutput(stdout, 1, "stdout", newWireLogger("", protocol.NewWriter(out)))
		out.set(realOut)
		defer capt.Stop()
		if err := serveWorker(ctx, set, stdin, out, stderr, capt.Sync, workerOptionsFromEnv()); err != nil {
			fmt.Fprintln(stderr, "Error: worker:", err)
			return exit.Failure
		}
		return exit.OK
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, mainUsage, prog)
		return exit.OK
	}
	return usage(fmt.Sprintf("unknown command %q", args[0]))
}

func printJSON(stdout, stderr io.Writer, v any) int {
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if err := json.Unmarshal(raw, &x); err == nil {
			v = x
		}
	}
	if err := output.Result(stdout, v, true); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return exit.Failure
	}
	return exit.OK
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// ConfigWarnedEnv is set to "1" by the synapse CLI when it runs a plugin
// binary's `plugin run` after printing config.yaml's warnings itself, so
// they are printed once.
const ConfigWarnedEnv = "SYNAPSE_CONFIG_WARNED"

// runLocal is `plugin run` inside a plugin binary.
func runLocal(set *synapse.ActionSet, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var flags runflags.Flags
	return runCommand("plugin run", "ACTION", args, stderr, &flags.Verbose, flags.Register, func(rest []string) error {
		return runLocalAction(set, &flags, rest, stdin, stdout, stderr)
	})
}

// runCommand parses the flags of a binary command (register defines them,
// verbose receives -v), runs it, and reports its error: the shared frame of
// `plugin run` and `plugin run-pipeline`.
func runCommand(name, operands string, args []string, stderr io.Writer, verbose *bool, register func(*pflag.FlagSet), run func(rest []string) error) int {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	register(fs)
	fs.BoolVarP(verbose, "verbose", "v", false, "more detail (stack traces, unknown config keys)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s [flags]\n\nFlags:\n%s", name, operands, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exit.OK
		}
		fmt.Fprintf(stderr, "Error: %v\nRun '%s --help' for usage.\n", err, name)
		return exit.Usage
	}
	err := run(fs.Args())
	if err != nil {
		if errors.Is(err, synapse.ErrInterrupted) {
			fmt.Fprintln(stderr, "Interrupted.")
		} else {
			fmt.Fprintln(stderr, "Error:", exit.Message(err, *verbose))
		}
	}
	return exit.Code(err)
}

// localEnv layers a local run's environment: OS < config.yaml env <
// env file < explicit values.
func localEnv(cfg *config.Config, envFile string, values map[string]any) (*synapse.Env, error) {
	env := synapse.EnvFromOS("")
	if cfg != nil {
		env = synapse.MergeEnv(env, synapse.NewEnv(cfg.Env))
	}
	if envFile != "" {
		fileEnv, err := synapse.EnvFromFile(envFile)
		if err != nil {
			return nil, &runflags.UsageError{Flag: "env-file", Message: err.Error()}
		}
		env = synapse.MergeEnv(env, fileEnv)
	}
	return synapse.MergeEnv(env, synapse.NewEnv(values)), nil
}

func runLocalAction(set *synapse.ActionSet, flags *runflags.Flags, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return &runflags.UsageError{Message: fmt.Sprintf("plugin run takes one argument, the action name (got %d); actions: %s", len(args), strings.Join(set.Names(), ", "))}
	}
	mode := synapse.ModeLocal
	if flags.Mode != "" {
		m, err := runflags.NormalizeMode(flags.Mode)
		if err != nil {
			return err
		}
		if m != synapse.ModeLocal {
			return &runflags.UsageError{Flag: "mode", Message: fmt.Sprintf("a plugin binary runs actions in local mode only; use `synapse plugin run %s --mode %s`", args[0], m)}
		}
	}
	if err := flags.Check(mode); err != nil {
		return err
	}
	if flags.Dlv || flags.DebugSDK {
		return &runflags.UsageError{Flag: map[bool]string{true: "dlv", false: "debug-sdk"}[flags.Dlv], Message: "builds the plugin; use it with `synapse plugin run`"}
	}

	// config.yaml is optional for a binary run by hand; a --path given
	// explicitly must hold one.
	var cfg *config.Config
	if file, err := config.Find(flags.Path); err == nil {
		if cfg, err = config.Load(file); err != nil {
			return err
		}
		if os.Getenv(ConfigWarnedEnv) != "1" {
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(stderr, "Warning:", w)
			}
		}
	} else if flags.Changed("path") {
		return &runflags.UsageError{Flag: "path", Message: err.Error()}
	}
	action, err := resolveAction(set, cfg, args[0])
	if err != nil {
		return err
	}

	env, err := localEnv(cfg, flags.EnvFile, flags.EnvValues())
	if err != nil {
		return err
	}

	params, err := runflags.ReadParams(flags.Params, stdin)
	if err != nil {
		return err
	}

	ctx, logger, done := startRun(stderr)
	defer done()

	// stdout is the result's: what the action prints there is shown with
	// the logs, so `-o json | jq` reads the result only.
	stdout, capt := captureOutput(stdout, 1, "stdout", logger)
	result, err := synapse.NewLocalExecutor(synapse.WithEnv(env), synapse.WithJobID(flags.JobID), synapse.WithLogger(logger)).
		Execute(ctx, action, json.RawMessage(params))
	capt.Stop()
	if err != nil {
		return interrupted(ctx, err)
	}
	pretty := flags.Output == "text" && output.IsTerminal(stdout)
	if err := output.Result(stdout, result, pretty); err != nil {
		return &synapse.ExecutionError{Action: action.Name(), JobID: flags.JobID, Err: fmt.Errorf("encode result as JSON: %w", err)}
	}
	return nil
}

// captureOutput captures file descriptor fd when w is this process's own
// stdout or stderr (not in tests, which pass buffers): what the action
// writes to it becomes messages of category name on logger, as whole valid
// lines. It returns the writer for the binary's own output on that
// descriptor and a function that ends the capture (idempotent).
func captureOutput(w io.Writer, fd int, name string, logger synapse.Logger) (io.Writer, *captured) {
	if f, ok := w.(*os.File); !ok || int(f.Fd()) != fd {
		return w, &captured{}
	}
	s, err := capture.Start(fd, func(line string) {
		logger.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelInfo, Category: name, Message: line})
	})
	if err != nil {
		return w, &captured{} // not supported here: output is not captured
	}
	return s.Orig, &captured{s: s}
}

// captured is a capture of captureOutput; its zero value captures nothing.
type captured struct {
	s    *capture.Stream
	once sync.Once
}

// Sync waits until what was written so far has been passed on.
func (c *captured) Sync() {
	if c.s != nil {
		c.s.Sync()
	}
}

// Stop ends the capture (once).
func (c *captured) Stop() {
	if c.s != nil {
		c.once.Do(c.s.Stop)
	}
}

// resolveAction maps the requested name to a binary action through
// config.yaml: an action listed there runs its entrypoint.
func resolveAction(set *synapse.ActionSet, cfg *config.Config, name string) (synapse.Action, error) {
	if cfg == nil || len(cfg.Actions) == 0 {
		return set.Lookup(name)
	}
	ca, ok := cfg.Action(name)
	if !ok {
		err := synapse.NotFound(name, cfg.ActionNames())
		if _, lerr := set.Lookup(name); lerr == nil {
			return nil, fmt.Errorf("%w (the plugin binary provides %q but %s does not list it; run `synapse plugin update-config`)", err, name, baseName(cfg.Path))
		}
		return nil, err
	}
	a, lerr := set.Lookup(ca.Entrypoint)
	if lerr != nil {
		return nil, &config.Error{File: cfg.Path, Line: ca.Line, Field: "actions." + name + ".entrypoint",
			Message: fmt.Sprintf("the plugin binary has no action %q (it provides: %s)", ca.Entrypoint, strings.Join(set.Names(), ", "))}
	}
	return a, nil
}

// interrupted marks err as the user's interruption when the run's context
// (cancelled only by cancelOnInterrupt) is done.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, synapse.ErrInterrupted) {
		return fmt.Errorf("%w: %w", synapse.ErrInterrupted, err)
	}
	return err
}

// startRun begins a run of `plugin run` or `plugin run-pipeline`: its
// context (cancelled by the first Ctrl-C), its console logger on stderr,
// and the function that ends it.
func startRun(stderr io.Writer) (context.Context, synapse.Logger, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	logger := synapse.NewConsoleLogger(stderr)
	stopSignals := cancelOnInterrupt(cancel, logger, stderr)
	return ctx, logger, func() { stopSignals(); cancel() }
}

// cancelOnInterrupt cancels the run at the first Ctrl-C (or SIGTERM) and
// exits at the second. It returns a function that stops listening.
//
// The notice goes through logger (so a live progress bar on a terminal
// does not draw over it): an action that ignores cancellation would
// otherwise look as if Ctrl-C did nothing.
func cancelOnInterrupt(cancel context.CancelFunc, logger synapse.Logger, stderr io.Writer) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		logger.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelWarning,
			Message: "Interrupted: cancelling the action — press Ctrl-C again to stop now"})
		cancel()
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "Stopped.")
			supervise.MarkChosenExit()
			os.Exit(exit.Interrupted)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// runValidate is `validate ACTION`: it decodes the params on stdin as a run
// would and prints nothing (exit 0) or the protocol error object (exit 2).
func runValidate(set *synapse.ActionSet, name string, stdin io.Reader, stdout io.Writer) int {
	err := func() error {
		a, err := set.Lookup(name)
		if err != nil {
			return err
		}
		params, err := io.ReadAll(stdin)
		if err != nil {
			return &runflags.UsageError{Message: "read params from stdin: " + err.Error()}
		}
		if len(params) == 0 {
			return a.Decode(nil)
		}
		return a.Decode(json.RawMessage(params))
	}()
	if err == nil {
		return exit.OK
	}
	b, _ := json.Marshal(worker.ToError(err))
	fmt.Fprintln(stdout, string(b))
	return exit.Code(err)
}
