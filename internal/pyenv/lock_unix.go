//go:build unix

package pyenv

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// envLock is a flock held on an environment's lock file, KEY.lock: shared
// by each process using the environment, exclusive while one builds or
// removes it. The lock goes with the process, so a killed process never
// leaves it held.
type envLock struct{ f *os.File }

// lockEnv takes a shared or exclusive flock on path (created when
// missing), polling every 100ms while a conflicting one is held, until ctx
// ends or enough (may be nil) reports true: then the lock is nil, not
// needed (a builder waiting for another one finds the environment built,
// and in use). A lock file removed while we took it (by a prune, which
// removes it holding it exclusively) is opened anew, so a lock is always
// on the file now at path. A shared lock where path cannot be opened for
// want of permission (a read-only cache) is nil, no lock: no one removes
// environments there.
func lockEnv(ctx context.Context, path string, shared bool, enough func() bool) (*envLock, error) {
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		f, err := openLock(path, true)
		if err != nil {
			if shared && readOnly(err) {
				return nil, nil
			}
			return nil, err
		}
		if testHookOpened != nil {
			testHookOpened()
		}
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil && sameFile(f, path):
			return &envLock{f: f}, nil
		case err == nil:
			f.Close() // removed while we took it: take the new file's
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			f.Close()
			return nil, err
		}
		f.Close()
		if enough != nil && enough() {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
}

// testHookOpened, when set by a test, runs in lockEnv between opening the
// lock file and locking it: where a prune may remove it.
var testHookOpened func()

// tryLockEnv takes an exclusive flock on path without waiting: held is
// true (and the lock nil) when another process holds a lock on it. With
// create false a missing path is an error wrapping fs.ErrNotExist.
func tryLockEnv(path string, create bool) (l *envLock, held bool, err error) {
	for {
		f, err := openLock(path, create)
		if err != nil {
			return nil, false, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil && sameFile(f, path):
			return &envLock{f: f}, false, nil
		case err == nil:
			f.Close()
			continue
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, err
	}
}

// openLock opens the lock file path, creating it when create (read-only
// when it cannot be opened for writing: flock does not need it).
func openLock(path string, create bool) (*os.File, error) {
	if create {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err == nil || !readOnly(err) {
			return f, err
		}
	}
	return os.Open(path)
}

// readOnly reports whether err is a lack of permission to write.
func readOnly(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

// sameFile reports whether f is the file now at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// unlock releases l; a nil l is no lock.
func (l *envLock) unlock() {
	if l == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// setCancel makes cancelling cmd kill it and everything it started (pip
// runs build backends as children).
func setCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
