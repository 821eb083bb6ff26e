package build

import (
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

// age sets the modification time of path to d ago.
func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	when := time.Now().Add(-d)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

// deadPID returns the PID of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// fakeKey returns a build key made of c.
func fakeKey(c byte) string { return strings.Repeat(string(c), 64) }

// plantBinary puts a binary of n bytes for key in cache, last used ago,
// and returns the key directory.
func plantBinary(t *testing.T, cache, key string, n int, ago time.Duration) string {
	t.Helper()
	dir := filepath.Join(cache, key[:2], key)
	writeFiles(t, dir, map[string]string{"plugin": strings.Repeat("x", n)})
	age(t, filepath.Join(dir, "plugin"), ago)
	return dir
}

// binFixture is a binary cache holding, by name: entries last used 40
// days and 1 hour ago, an old entry with a build running, an old key
// directory without a binary (a failed build), two leftovers (a killed
// build's and a killed prune's) and things that are not the cache's.
type binFixture struct {
	dir   string
	paths map[string]string // name → path
}

func newBinFixture(t *testing.T) *binFixture {
	t.Helper()
	f := &binFixture{dir: t.TempDir(), paths: map[string]string{}}
	f.paths["old"] = plantBinary(t, f.dir, fakeKey('a'), 100, 40*day)
	f.paths["recent"] = plantBinary(t, f.dir, fakeKey('b'), 200, time.Hour)
	building := plantBinary(t, f.dir, fakeKey('c'), 300, 40*day)
	writeFiles(t, filepath.Join(building, fmt.Sprintf(".tmp-%d-1", os.Getpid())), map[string]string{"x": "part"})
	f.paths["building"] = building
	empty := filepath.Join(f.dir, "dd", fakeKey('d'))
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	age(t, empty, 40*day)
	f.paths["failed"] = empty
	dead := deadPID(t)
	killed := filepath.Join(f.paths["recent"], fmt.Sprintf(".tmp-%d-2", dead))
	writeFiles(t, killed, map[string]string{"plugin": "half"})
	f.paths["killed build"] = killed
	trash := filepath.Join(f.dir, "aa", fmt.Sprintf("%s%d-3", cachedir.TrashPrefix, dead))
	writeFiles(t, trash, map[string]string{"plugin": "trash"})
	f.paths["killed prune"] = trash
	// Not the binary cache's: other caches below the root, other files.
	writeFiles(t, f.dir, map[string]string{
		"packages/aa/" + fakeKey('a') + ".zip": "zip",
		"task/0123.json":                       "{}",
		"notes.txt":                            "mine",
		"aa/not-a-key/file":                    "mine",
	})
	for _, p := range []string{"packages/aa/" + fakeKey('a') + ".zip", "notes.txt", "aa/not-a-key/file"} {
		age(t, filepath.Join(f.dir, p), 400*day)
	}
	return f
}

func (f *binFixture) name(path string) string {
	for n, p := range f.paths {
		if p == path {
			return n
		}
	}
	return path
}

func TestCachePrune(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        cachedir.PruneOptions
		wantRemoved []string
		wantSkipped []string
	}{
		{"older than 30 days", cachedir.PruneOptions{Before: time.Now().Add(-30 * day)},
			[]string{"killed build", "killed prune", "old", "failed"}, []string{"building"}},
		{"older than 2 days, dry run", cachedir.PruneOptions{Before: time.Now().Add(-2 * day), DryRun: true},
			[]string{"killed build", "killed prune", "old", "failed"}, []string{"building"}},
		{"older than 30 minutes", cachedir.PruneOptions{Before: time.Now().Add(-30 * time.Minute)},
			[]string{"killed build", "killed prune", "old", "recent", "failed"}, []string{"building"}},
		{"all", cachedir.PruneOptions{All: true},
			[]string{"killed build", "killed prune", "old", "recent", "failed"}, []string{"building"}},
		{"all, dry run", cachedir.PruneOptions{All: true, DryRun: true},
			[]string{"killed build", "killed prune", "old", "recent", "failed"}, []string{"building"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newBinFixture(t)
			before, err := Cache{Dir: f.dir}.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if before.Entries != 4 || before.Bytes != 100+200+300+4+5 || !before.OldestUse.Before(time.Now().Add(-39*day)) {
				t.Errorf("Stats before = %+v, want 4 entries, 609 bytes, oldest use 40 days ago", before)
			}
			res, err := Cache{Dir: f.dir}.Prune(tc.opts)
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			var removed, skipped []string
			var freed int64
			for _, e := range res.Removed {
				removed = append(removed, f.name(e.Path))
				freed += e.Bytes
			}
			for _, s := range res.Skipped {
				skipped = append(skipped, f.name(s.Path))
				if s.Reason != "being built" {
					t.Errorf("skipped %s: reason %q", s.Path, s.Reason)
				}
			}
			slices.Sort(removed)
			slices.Sort(tc.wantRemoved)
			if !slices.Equal(removed, tc.wantRemoved) || !slices.Equal(skipped, tc.wantSkipped) {
				t.Errorf("removed %v, skipped %v; want %v, %v", removed, skipped, tc.wantRemoved, tc.wantSkipped)
			}
			if freed != res.Freed {
				t.Errorf("Freed = %d, the removed entries hold %d", res.Freed, freed)
			}
			for name, p := range f.paths {
				_, err := os.Stat(p)
				if gone := err != nil; gone != (slices.Contains(removed, name) && !tc.opts.DryRun) {
					t.Errorf("%s (%s): gone = %v after the prune", name, p, gone)
				}
			}
			for _, p := range []string{"packages/aa/" + fakeKey('a') + ".zip", "task/0123.json", "notes.txt", "aa/not-a-key/file"} {
				if _, err := os.Stat(filepath.Join(f.dir, p)); err != nil {
					t.Errorf("the prune touched %s, not the binary cache's: %v", p, err)
				}
			}
			if m, _ := filepath.Glob(filepath.Join(f.dir, "*", cachedir.TrashPrefix+"*")); !tc.opts.DryRun && len(m) != 0 {
				t.Errorf("trash left: %v", m)
			}
			after, err := Cache{Dir: f.dir}.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if want := before.Bytes - res.Freed; !tc.opts.DryRun && after.Bytes != want {
				t.Errorf("Stats after: %d bytes, want %d", after.Bytes, want)
			}
		})
	}
}

// TestBuildHitRecordsUse: a hit on a binary last used over an hour ago
// sets its modification time to now; a more recent one is left alone.
func TestBuildHitRecordsUse(t *testing.T) {
	for _, tc := range []struct {
		ago     time.Duration
		touched bool
	}{{40 * day, true}, {2 * time.Hour, true}, {30 * time.Minute, false}} {
		t.Run(tc.ago.String(), func(t *testing.T) {
			dir := newPlugin(t, "hit")
			opts := Options{Dir: dir, CacheDir: t.TempDir()}
			key, err := Key(opts)
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(plantBinary(t, opts.CacheDir, key, 10, tc.ago), "hello")
			if err := os.Rename(filepath.Join(filepath.Dir(bin), "plugin"), bin); err != nil {
				t.Fatal(err)
			}
			res, err := Build(t.Context(), opts)
			if err != nil || !res.Cached || res.Binary != bin {
				t.Fatalf("Build = %+v, %v; want a hit on %s", res, err, bin)
			}
			fi, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			if touched := time.Since(fi.ModTime()) < time.Minute; touched != tc.touched {
				t.Errorf("last used %v ago: modification time %v after the hit, touched = %v, want %v", tc.ago, fi.ModTime(), touched, tc.touched)
			}
		})
	}
}

// TestCachePruneConcurrentHit: a Build that hits an entry after the prune
// chose it keeps it (the prune puts it back), and the binary it returned
// is there; with All it goes all the same.
func TestCachePruneConcurrentHit(t *testing.T) {
	for _, tc := range []struct {
		name string
		all  bool
	}{{"by age", false}, {"all", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPlugin(t, "hit")
			opts := Options{Dir: dir, CacheDir: t.TempDir()}
			key, err := Key(opts)
			if err != nil {
				t.Fatal(err)
			}
			keyDir := plantBinary(t, opts.CacheDir, key, 10, 40*day)
			bin := filepath.Join(keyDir, "hello")
			if err := os.Rename(filepath.Join(keyDir, "plugin"), bin); err != nil {
				t.Fatal(err)
			}
			age(t, bin, 40*day)
			var hit *Result
			testHookScanned = func() {
				if hit, err = Build(t.Context(), opts); err != nil || !hit.Cached {
					t.Errorf("Build during the prune: %+v, %v; want a hit", hit, err)
				}
			}
			t.Cleanup(func() { testHookScanned = nil })
			res, err := Cache{Dir: opts.CacheDir}.Prune(cachedir.PruneOptions{Before: time.Now().Add(-30 * day), All: tc.all})
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			_, statErr := os.Stat(hit.Binary)
			if tc.all {
				if len(res.Removed) != 1 || statErr == nil {
					t.Errorf("with All: removed %v, binary there: %v", res.Removed, statErr == nil)
				}
				return
			}
			if len(res.Removed) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "used during the prune" {
				t.Errorf("removed %v, skipped %v; want the entry kept as used during the prune", res.Removed, res.Skipped)
			}
			if statErr != nil {
				t.Errorf("the binary the hit returned is gone: %v", statErr)
			}
		})
	}
}
