//go:build !unix

package pyenv

import (
	"context"
	"os/exec"
	"sync"
)

var locks sync.Map // path → *sync.Mutex

// lock serialises builds of one environment within this process (no
// cross-process lock outside Unix).
func lock(ctx context.Context, path string) (func(), error) {
	m, _ := locks.LoadOrStore(path, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock, nil
}

func setCancel(cmd *exec.Cmd) {}
