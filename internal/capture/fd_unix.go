//go:build unix

package capture

import (
	"os"

	"golang.org/x/sys/unix"
)

// redirect points fd at the write end of a new pipe. It returns the
// original destination, a function restoring it, and the pipe's read end.
func redirect(fd int) (orig *os.File, restore func() error, r *os.File, err error) {
	saved, err := unix.Dup(fd)
	if err != nil {
		return nil, nil, nil, err
	}
	unix.CloseOnExec(saved)
	r, w, err := os.Pipe()
	if err != nil {
		_ = unix.Close(saved)
		return nil, nil, nil, err
	}
	if err := unix.Dup2(int(w.Fd()), fd); err != nil {
		_ = unix.Close(saved)
		_ = r.Close()
		_ = w.Close()
		return nil, nil, nil, err
	}
	_ = w.Close() // fd is now the pipe's only writer
	orig = os.NewFile(uintptr(saved), "captured-"+[]string{"stdin", "stdout", "stderr"}[min(fd, 2)])
	var once bool
	restore = func() error {
		if once {
			return nil
		}
		once = true
		return unix.Dup2(saved, fd) // closes the pipe's writer: the reader sees EOF
	}
	return orig, restore, r, nil
}

// writeFD writes b to file descriptor fd.
func writeFD(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		b = b[n:]
	}
	return nil
}
