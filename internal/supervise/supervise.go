// Package supervise runs a plugin binary's `plugin run` in a child process
// and tells an exit the binary chose from one it did not (os.Exit or
// log.Fatal in action code, a crash), which is reported as an error with
// exit code 1 instead of passing for one of the CLI's exit codes. The synapse
// CLI supervises the binary it runs; a binary run by hand supervises itself.
package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/synapse-sdk/synapse-go/internal/exit"
)

// Env controls supervision: a supervised child has it set to "1"; set it
// to "off" to run in one process (the CLI does for --dlv, so breakpoints
// are in the process the debugger started).
const Env = "SYNAPSE_PLUGIN_SUPERVISED"

// chosenExitFD is the child's file descriptor to the supervisor, on which
// it says that the exit that follows is the binary's own.
const chosenExitFD = 3

var markOnce sync.Once

// MarkChosenExit tells the supervisor, if there is one, that the process
// is about to exit with a code the binary chose.
func MarkChosenExit() {
	if os.Getenv(Env) != "1" {
		return
	}
	markOnce.Do(func() {
		f := os.NewFile(chosenExitFD, "supervisor")
		_, _ = f.Write([]byte("exit\n"))
		_ = f.Close()
	})
}

// Self runs this binary with args as a supervised child and returns the
// exit code to use; ok is false when the caller should run the command
// itself (it is the child, supervision is off, or not available here).
func Self(args []string, stderr io.Writer) (code int, ok bool) {
	if os.Getenv(Env) != "" {
		return 0, false
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, false
	}
	return Run(exe, args, stderr)
}

// Run runs the plugin binary bin with args as a supervised child, with this
// process's standard streams, and returns the exit code to use; ok is false
// when it could not be started that way (not available here).
func Run(bin string, args []string, stderr io.Writer) (code int, ok bool) {
	if runtime.GOOS == "windows" {
		return 0, false
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, false
	}
	defer r.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), Env+"=1")
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child: chosenExitFD
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return 0, false
	}
	_ = w.Close()
	// A signal sent to this process alone (kill) is passed on. A Ctrl-C on
	// the terminal whose foreground we are reaches the child by itself:
	// passing it on too would count as a second Ctrl-C.
	fromTerminal := inTerminalForeground()
	go func() {
		for s := range sigs {
			if s == os.Interrupt && fromTerminal {
				continue
			}
			_ = cmd.Process.Signal(s)
		}
	}()
	marked := make(chan bool, 1)
	go func() {
		b, _ := io.ReadAll(r)
		marked <- len(b) > 0
	}()
	werr := cmd.Wait()
	chosen := <-marked
	code = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		fmt.Fprintln(stderr, "Error: run the plugin:", werr)
		return exit.Failure, true
	}
	if chosen {
		return code, true
	}
	how := fmt.Sprintf("exited with status %d", code)
	why := "the action (or code it calls) ended the process (os.Exit, log.Fatal, a crash); return an error from the action instead"
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		how = fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		if ws.Signal() == syscall.SIGKILL {
			why = "the system may have run out of memory (see `dmesg`), or something outside killed it"
		}
	}
	fmt.Fprintf(stderr, "Error: the plugin's process %s before the run ended: %s\n", how, why)
	return exit.Failure, true
}
