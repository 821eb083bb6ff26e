//go:build unix

package supervise

import (
	"os"

	"golang.org/x/sys/unix"
)

// inTerminalForeground reports whether this process is in the foreground
// process group of its controlling terminal, where a Ctrl-C reaches every
// process of the group.
func inTerminalForeground() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false // no controlling terminal
	}
	defer tty.Close()
	pgrp, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
