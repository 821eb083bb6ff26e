//go:build unix

package pyenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLockTakenAnew: a lock file a prune removes between a process's
// open and its lock is not the one locked: the process locks the file then
// at the path, so a prune cannot lock the environment it uses.
func TestLockTakenAnew(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), envKey('a')+".lock")
			removed := 0
			testHookOpened = func() {
				if removed == 0 {
					removed++
					if err := os.Remove(path); err != nil {
						t.Error(err)
					}
				}
			}
			t.Cleanup(func() { testHookOpened = nil })
			l, err := lockEnv(t.Context(), path, shared, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.unlock()
			if removed != 1 || !sameFile(l.f, path) {
				t.Fatalf("removed %d times; the lock is on the file at the path: %v", removed, sameFile(l.f, path))
			}
			if _, held, _ := tryLockEnv(path, true); !held {
				t.Fatal("a prune could lock the environment exclusively")
			}
		})
	}
}
