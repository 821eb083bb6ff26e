package server

import (
	"errors"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// paramsCheckWaitDelay is how long the params check waits for its output
// once the command has ended or was killed: a process that left the group
// and holds the output open must not hold up the run.
const paramsCheckWaitDelay = time.Second

// runOwnGroup runs cmd, made with exec.CommandContext, in a process group
// of its own. When the context is done (the params check's timeout, or
// the client gone), the whole group is killed, not only cmd's process, and
// Wait returns at most paramsCheckWaitDelay later; what is left holding the
// command's output then is killed too. killed reports whether the context
// ended the command.
func runOwnGroup(cmd *exec.Cmd) (killed bool, err error) {
	var cancelled atomic.Bool
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		cancelled.Store(true)
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = paramsCheckWaitDelay
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.Process != nil {
		// Members of the group still hold the output, so the group ID
		// is not reused yet.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return cancelled.Load(), err
}

// paramsTimeout is the params check's time limit: ParamsCheckTimeout, else
// paramsCheckTimeout.
func (a *API) paramsTimeout() time.Duration {
	if a.ParamsCheckTimeout > 0 {
		return a.ParamsCheckTimeout
	}
	return paramsCheckTimeout
}
