// Package exit is where errors leave a process: the one mapping from an
// error to the exit code of the synapse CLI and plugin binaries
// (docs/cli.md), and the message printed for it.
package exit

import (
	"errors"
	"fmt"
	"strings"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/pipeline"
)

// Exit codes of the synapse CLI and plugin binaries.
const (
	OK          = 0   // success
	Failure     = 1   // the action failed or panicked, or the build failed
	Usage       = 2   // bad flags, config, params, or an unknown action
	Interrupted = 130 // stopped by Ctrl-C
)

// SetupError is a command that cannot run until something is set up: not
// logged in, no agent selected, no plugin code. Its text says what is
// missing and the command that sets it up; it is a usage error (exit 2):
// nothing was sent.
type SetupError struct {
	// Problem is what is missing, such as "not logged in to http://h".
	Problem string
	// Fix is the command to run, such as "run synapse login".
	Fix string
}

// Error implements error: "PROBLEM: FIX".
func (e *SetupError) Error() string { return e.Problem + ": " + e.Fix }

// ExitCode returns Usage.
func (e *SetupError) ExitCode() int { return Usage }

// Code maps an error to the process exit code. It is the one place where
// errors become exit codes. An error (or one it wraps) may choose its code
// with an `ExitCode() int` method (a *SetupError and the backend client's
// unusable host are 2). Every other error is Failure (1), among them the
// Synapse backend's answers (401 token refused, 403, 404, 409, 5xx), an
// unreachable backend, and a request whose answer was lost.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var coder interface{ ExitCode() int }
	switch {
	case errors.Is(err, synapse.ErrValidation), errors.Is(err, synapse.ErrActionNotFound):
		return Usage
	case errors.Is(err, synapse.ErrInterrupted):
		return Interrupted
	case errors.As(err, &coder):
		return coder.ExitCode()
	}
	return Failure
}

// Message returns the message the CLI prints for err: every failing
// field of a validation error on its own line, the stack of a panic when
// verbose (a hint to use -v otherwise).
func Message(err error, verbose bool) string {
	var (
		ve *synapse.ValidationError
		xe *synapse.ExecutionError
	)
	var pe *pipeline.Error
	switch {
	case errors.As(err, &ve):
		var b strings.Builder
		if errors.As(err, &pe) && pe.Action == "" {
			fmt.Fprintf(&b, "invalid params for pipeline %q:", pe.Pipeline)
		} else {
			fmt.Fprintf(&b, "invalid params for action %q:", ve.Action)
		}
		for _, f := range ve.Fields {
			b.WriteString("\n  " + f.String())
		}
		return b.String()
	case errors.As(err, &xe) && xe.Panicked():
		if verbose && xe.Stack != "" {
			return err.Error() + "\n\n" + strings.TrimRight(xe.Stack, "\n")
		}
		return err.Error() + " (run with -v for the stack trace)"
	}
	return err.Error()
}
