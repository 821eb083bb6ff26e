//go:build !unix

package pyenv

import (
	"context"
	"os/exec"
	"sync"
	"time"
)

var locks sync.Map // path → *sync.RWMutex

// envLock is an environment's lock within this process (no cross-process
// lock outside Unix: a prune in another process does not see an
// environment in use here; removing it then fails while its files are
// open, and is reported).
type envLock struct {
	mu     *sync.RWMutex
	shared bool
}

func mutex(path string) *sync.RWMutex {
	m, _ := locks.LoadOrStore(path, &sync.RWMutex{})
	return m.(*sync.RWMutex)
}

// lockEnv takes the shared or exclusive lock of path, polling every 100ms
// while it is held, until ctx ends or enough (may be nil) reports true:
// then the lock is nil, not needed.
func lockEnv(ctx context.Context, path string, shared bool, enough func() bool) (*envLock, error) {
	mu := mutex(path)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if shared && mu.TryRLock() || !shared && mu.TryLock() {
			return &envLock{mu: mu, shared: shared}, nil
		}
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

// tryLockEnv takes the exclusive lock of path without waiting.
func tryLockEnv(path string, create bool) (*envLock, bool, error) {
	mu := mutex(path)
	if !mu.TryLock() {
		return nil, true, nil
	}
	return &envLock{mu: mu}, false, nil
}

// unlock releases l; a nil l is no lock.
func (l *envLock) unlock() {
	switch {
	case l == nil:
	case l.shared:
		l.mu.RUnlock()
	default:
		l.mu.Unlock()
	}
}

func setCancel(cmd *exec.Cmd) {}
