package synapse

import "errors"

// Exit codes of the synapse CLI and plugin binaries.
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // the action failed or panicked, or the build failed
	ExitUsage       = 2   // bad flags, config, params, or an unknown action
	ExitInterrupted = 130 // stopped by Ctrl-C
)

// ExitCode maps an error to the process exit code of the CLI contract. It
// is the one place where errors become exit codes. An error (or one it
// wraps) may choose its code with an `ExitCode() int` method.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var coder interface{ ExitCode() int }
	switch {
	case errors.Is(err, ErrValidation), errors.Is(err, ErrActionNotFound):
		return ExitUsage
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.As(err, &coder):
		return coder.ExitCode()
	}
	return ExitFailure
}

// ErrInterrupted marks a run stopped by the user (Ctrl-C). A run cancelled
// any other way is an ordinary failure (exit 1).
var ErrInterrupted = errors.New("interrupted")
