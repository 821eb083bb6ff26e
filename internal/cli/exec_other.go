//go:build !unix

package cli

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
)

// replaceProcess runs argv in the foreground with this process's streams
// and reports its exit code (systems without exec).
func replaceProcess(io *IOStreams, argv []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = io.In, io.Out, io.ErrOut
	signal.Ignore(os.Interrupt) // the child handles Ctrl-C
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &execReplaced{code: ee.ExitCode()}
	}
	return err
}
