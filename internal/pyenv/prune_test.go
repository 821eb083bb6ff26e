package pyenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

const day = 24 * time.Hour

// fakeEnv puts a complete environment named key in dir (a marker and a
// python of n bytes), last used ago, and returns its directory.
func fakeEnv(t *testing.T, dir, key string, n int, ago time.Duration) string {
	t.Helper()
	env := filepath.Join(dir, key)
	if err := os.MkdirAll(filepath.Join(env, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env, "bin", "python"), []byte(strings.Repeat("x", n)), 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(env, markerFile)
	if err := os.WriteFile(marker, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-ago)
	if err := os.Chtimes(marker, when, when); err != nil {
		t.Fatal(err)
	}
	return env
}

func envKey(c byte) string { return "py3.12.1-sdk2026.2.17-" + strings.Repeat(string(c), 16) }

// mustLock takes the lock of path, shared or not, until the test ends.
func mustLock(t *testing.T, path string, shared bool) *envLock {
	t.Helper()
	l, err := lockEnv(t.Context(), path, shared, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.unlock)
	return l
}

func TestCachePrune(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	type fixture struct {
		dir   string
		paths map[string]string // name → path
	}
	newFixture := func(t *testing.T) *fixture {
		f := &fixture{dir: t.TempDir(), paths: map[string]string{}}
		f.paths["old"] = fakeEnv(t, f.dir, envKey('a'), 100, 40*day)
		f.paths["recent"] = fakeEnv(t, f.dir, envKey('b'), 200, 2*time.Hour)
		// An old environment a process uses (Prepare's shared lock).
		f.paths["in use"] = fakeEnv(t, f.dir, envKey('c'), 300, 40*day)
		mustLock(t, f.paths["in use"]+".lock", true)
		// A killed build's directory; another being built (locked).
		for name, k := range map[string]string{"killed build": envKey('d'), "building": envKey('e')} {
			p := filepath.Join(f.dir, ".tmp-"+k+"-123")
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, "pyvenv.cfg"), []byte("half"), 0o644); err != nil {
				t.Fatal(err)
			}
			f.paths[name] = p
		}
		mustLock(t, filepath.Join(f.dir, envKey('e')+".lock"), false)
		f.paths["stale lock"] = filepath.Join(f.dir, envKey('f')+".lock")
		if err := os.WriteFile(f.paths["stale lock"], nil, 0o644); err != nil {
			t.Fatal(err)
		}
		f.paths["killed prune"] = filepath.Join(f.dir, fmt.Sprintf("%s%d-1", cachedir.TrashPrefix, dead.Process.Pid))
		if err := os.MkdirAll(filepath.Join(f.paths["killed prune"], "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		// Not the cache's: $SYNAPSE_VENV_DIR may be any directory.
		for _, p := range []string{"my-venv/bin/python", "notes.txt", "py3.12-not-a-key/x"} {
			p = filepath.Join(f.dir, p)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-400 * day)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
			f.paths["not ours "+filepath.Base(filepath.Dir(p))] = p
		}
		return f
	}
	leftovers := []string{"killed build", "killed prune", "stale lock"}
	for _, tc := range []struct {
		name string
		opts cachedir.PruneOptions
		want []string // removed, besides the leftovers
	}{
		{"older than 30 days", cachedir.PruneOptions{Before: time.Now().Add(-30 * day)}, []string{"old"}},
		{"older than an hour", cachedir.PruneOptions{Before: time.Now().Add(-time.Hour)}, []string{"old", "recent"}},
		{"all", cachedir.PruneOptions{All: true}, []string{"old", "recent"}},
		{"all, dry run", cachedir.PruneOptions{All: true, DryRun: true}, []string{"old", "recent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c := &Cache{Dir: f.dir}
			st, err := c.Stats()
			if err != nil || st.Entries != 3 || st.Bytes != 100+200+300+3*2+2*4 || !st.OldestUse.Before(time.Now().Add(-39*day)) {
				t.Errorf("Stats = %+v, %v; want 3 environments, 614 bytes, oldest use 40 days ago", st, err)
			}
			res, err := c.Prune(tc.opts)
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			name := func(p string) string {
				for n, q := range f.paths {
					if q == p {
						return n
					}
				}
				return p
			}
			var removed []string
			for _, e := range res.Removed {
				removed = append(removed, name(e.Path))
			}
			want := append(slices.Clone(leftovers), tc.want...)
			slices.Sort(removed)
			slices.Sort(want)
			if !slices.Equal(removed, want) {
				t.Errorf("removed %v, want %v", removed, want)
			}
			if len(res.Skipped) != 1 || name(res.Skipped[0].Path) != "in use" || res.Skipped[0].Reason != ReasonInUse {
				t.Errorf("skipped %v, want the environment in use, %q", res.Skipped, ReasonInUse)
			}
			for n, p := range f.paths {
				_, err := os.Stat(p)
				if gone := err != nil; gone != (slices.Contains(want, n) && !tc.opts.DryRun) {
					t.Errorf("%s: gone = %v", n, gone)
				}
				if slices.Contains(tc.want, n) && !tc.opts.DryRun {
					if _, err := os.Stat(p + ".lock"); err == nil {
						t.Errorf("%s: its lock file is left", n)
					}
				}
			}
			for _, p := range []string{f.paths["in use"] + ".lock", filepath.Join(f.dir, envKey('e')+".lock")} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("a held lock file was removed: %v", err)
				}
			}
		})
	}
}

// TestPreparedEnvNotPruned: the environment Prepare returns is in use
// until Close: Prune keeps it, even with All; after Close it goes. A reuse
// records its use.
func TestPreparedEnvNotPruned(t *testing.T) {
	py := python(t)
	version, err := PythonVersion(t.Context(), py)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: t.TempDir()}
	dir := fakeEnv(t, c.Dir, key(version, SDKRequirement(""), nil), 10, 40*day)
	env, err := c.Prepare(t.Context(), Spec{Python: py}, nil)
	if err != nil || !env.Reused || env.Dir != dir {
		t.Fatalf("Prepare = %+v, %v; want the planted environment reused", env, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, markerFile)); err != nil || time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("the reuse did not record its use: %v, %v", fi.ModTime(), err)
	}
	res, err := c.Prune(cachedir.PruneOptions{All: true})
	if err != nil || len(res.Removed) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != ReasonInUse {
		t.Fatalf("Prune while in use: %+v, %v", res, err)
	}
	if _, err := os.Stat(env.Python); err != nil {
		t.Fatalf("the environment in use lost its python: %v", err)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	_ = env.Close() // idempotent
	res, err = c.Prune(cachedir.PruneOptions{All: true})
	if err != nil || len(res.Removed) != 1 || len(res.Skipped) != 0 {
		t.Fatalf("Prune after Close: %+v, %v", res, err)
	}
	if ents, _ := os.ReadDir(c.Dir); len(ents) != 0 {
		t.Errorf("left in the cache: %v", ents)
	}
}

// TestLockEnough: a builder waiting for the exclusive lock of an
// environment that another process built and now uses (a shared lock held
// for as long as it runs) stops waiting once the environment is built,
// instead of waiting for that use to end.
func TestLockEnough(t *testing.T) {
	path := filepath.Join(t.TempDir(), envKey('a')+".lock")
	mustLock(t, path, true) // in use
	for _, tc := range []struct {
		name   string
		enough func() bool
		want   error
	}{
		{"built", func() bool { return true }, nil},
		{"not built", func() bool { return false }, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			l, err := lockEnv(ctx, path, false, tc.enough)
			if l != nil || !errors.Is(err, tc.want) {
				t.Fatalf("lockEnv = %v, %v; want no lock and %v", l, err, tc.want)
			}
		})
	}
}
