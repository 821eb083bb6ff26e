//go:build unix

package build

import (
	"os/exec"
	"syscall"
)

// setCancel makes cancellation of cmd stop the go command and every
// compiler and linker it started: cmd runs in a process group of its own,
// which is killed as a whole. (The go command ignores SIGINT sent to it
// alone, and killing only it would leave its children running.)
func setCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
