// Package cli implements the synapse command. cmd/synapse/main.go only
// calls Main.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/output"
)

// Version is the CLI's version, set at link time with
// -ldflags "-X github.com/synapse-sdk/synapse-go/internal/cli.Version=v1.2.3".
var Version = ""

// IOStreams are the standard streams of a command.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// System returns the process's streams.
func System() *IOStreams { return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// IsTerminal reports whether both stdin and stderr are terminals, the
// condition for prompting.
func (s *IOStreams) IsTerminal() bool { return output.IsTerminal(s.In) && output.IsTerminal(s.ErrOut) }

// Main runs the CLI with os.Args and returns the exit code.
func Main() int { return Run(os.Args[1:], System()) }

// verbose is set by the global -v flag of the command being run.
type globals struct {
	verbose bool
}

// Run runs the CLI with args and returns the exit code. Errors are printed
// here, and mapped to exit codes by exit.Code: nowhere else.
func Run(args []string, io *IOStreams) int {
	g := &globals{}
	root := newRootCmd(io, g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exit.OK
	}
	var exec *execReplaced
	if errors.As(err, &exec) {
		return exec.code
	}
	var buildErr *build.Error
	switch {
	case errors.Is(err, synapse.ErrInterrupted):
		fmt.Fprintln(io.ErrOut, "Interrupted.")
	case errors.As(err, &buildErr) && strings.TrimSpace(buildErr.Output) != "":
		// The compiler's messages, as it printed them.
		fmt.Fprintf(io.ErrOut, "Error: build plugin %s failed:\n%s\n", buildErr.Dir, strings.TrimRight(buildErr.Output, "\n"))
	default:
		fmt.Fprintln(io.ErrOut, "Error:", exit.Message(err, g.verbose))
		if h := backendHint(err); h != "" {
			fmt.Fprintln(io.ErrOut, "Hint:", h)
		}
		if isUsage(err) {
			fmt.Fprintf(io.ErrOut, "Run '%s --help' for usage.\n", commandPath(root, args))
		}
	}
	return exit.Code(err)
}

// execReplaced carries the exit code of a command that ran a child in the
// foreground (only on systems without exec).
type execReplaced struct{ code int }

func (e *execReplaced) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a cobra flag or argument error.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
func (e *usageError) ExitCode() int { return exit.Usage }

// flagError rewrites pflag's "invalid argument" error, whose text is the
// Go parser's (strconv.ParseInt: parsing "x": invalid syntax), as
// "--FLAG: want WHAT (got "VALUE")"; other errors are returned as they are.
func flagError(err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) || ive.GetFlag() == nil {
		return err
	}
	f := ive.GetFlag()
	want := "a valid value"
	switch f.Value.Type() {
	case "int", "int8", "int16", "int32", "int64":
		want = "a whole number"
	case "uint", "uint8", "uint16", "uint32", "uint64":
		want = "a whole number of 0 or more"
	case "float32", "float64":
		want = "a number"
	case "bool":
		want = "true or false"
	case "duration":
		want = "a duration such as 30s, 5m or 1h"
	case "age":
		want = "a duration of 0 or more such as 72h, 30d or 90m"
	}
	return fmt.Errorf("--%s: want %s (got %q)", f.Name, want, ive.GetValue())
}

func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

func commandPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.Name()
	}
	return cmd.CommandPath()
}

func newRootCmd(io *IOStreams, g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "synapse",
		Short:         "Write and run Synapse plugin actions",
		Long:          "synapse runs plugin actions locally, on a Ray cluster (task, job) or through a Synapse backend (remote),\nand creates and inspects plugins.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{flagError(err)} })
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "more detail (stack traces, build info, unknown config keys)")

	plugin := &cobra.Command{
		Use:   "plugin",
		Short: "Run, create and inspect plugins",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	plugin.AddCommand(
		newRunCmd(io, g),
		newRunPipelineCmd(io, g),
		newCreateCmd(io),
		newActionsCmd(io, g),
		newSchemaCmd(io, g),
		newUpdateConfigCmd(io, g),
		newJobCmd(io, g),
		newTaskCmd(io),
		newPublishCmd(io, g),
	)
	root.AddCommand(plugin, newLoginCmd(io), newLogoutCmd(io), newAgentCmd(io), newServerCmd(io), newCacheCmd(io), newVersionCmd(io))
	return root
}

// noArgs rejects arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return nil
}

// exactArgs requires n arguments, naming them in the error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s takes %s (got %d arguments)", cmd.CommandPath(), names, len(args))}
		}
		return nil
	}
}

func newVersionCmd(io *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(io.Out, "synapse %s (%s, %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
