package pack

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

// plant writes files (paths relative to dir) of the given sizes, each
// modified ago.
func plant(t *testing.T, dir string, ago time.Duration, files map[string]int) {
	t.Helper()
	for name, n := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("x", n)), 0o644); err != nil {
			t.Fatal(err)
		}
		age(t, p, ago)
	}
}

func entryKey(c byte) string { return strings.Repeat(string(c), 64) }

func TestCachePrune(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// name → the files that make it up, relative to the cache directory.
	items := map[string][]string{
		"old":          {"aa/" + entryKey('a') + ".zip", "aa/" + entryKey('a') + ".json"},
		"recent":       {"bb/" + entryKey('b') + ".zip", "bb/" + entryKey('b') + ".json"},
		"old zip only": {"cc/" + entryKey('c') + ".zip"},
		"old record":   {"dd/" + entryKey('d') + ".json"},
		"stale temp":   {"aa/.tmp-123"},
		"killed prune": {fmt.Sprintf("bb/%s%d-1", cachedir.TrashPrefix, dead.Process.Pid)},
		"fresh temp":   {"aa/.tmp-456"}, // a write in progress
		"not ours":     {"aa/notes.txt", "notes.txt", "aa/" + entryKey('a') + ".txt"},
	}
	newCache := func(t *testing.T) string {
		dir := t.TempDir()
		plant(t, dir, 40*day, map[string]int{items["old"][0]: 1000, items["old"][1]: 100})
		plant(t, dir, 2*time.Hour, map[string]int{items["recent"][0]: 2000, items["recent"][1]: 200})
		plant(t, dir, 40*day, map[string]int{items["old zip only"][0]: 3000, items["old record"][0]: 300})
		plant(t, dir, 2*staleTemp, map[string]int{items["stale temp"][0]: 10, items["killed prune"][0]: 20})
		plant(t, dir, time.Minute, map[string]int{items["fresh temp"][0]: 30})
		plant(t, dir, 400*day, map[string]int{items["not ours"][0]: 1, items["not ours"][1]: 1, items["not ours"][2]: 1})
		return dir
	}
	for _, tc := range []struct {
		name string
		opts cachedir.PruneOptions
		want []string // removed
	}{
		{"older than 30 days", cachedir.PruneOptions{Before: time.Now().Add(-30 * day)},
			[]string{"killed prune", "old", "old record", "old zip only", "stale temp"}},
		{"older than an hour", cachedir.PruneOptions{Before: time.Now().Add(-time.Hour)},
			[]string{"killed prune", "old", "old record", "old zip only", "recent", "stale temp"}},
		{"older than an hour, dry run", cachedir.PruneOptions{Before: time.Now().Add(-time.Hour), DryRun: true},
			[]string{"killed prune", "old", "old record", "old zip only", "recent", "stale temp"}},
		{"all", cachedir.PruneOptions{All: true},
			[]string{"killed prune", "old", "old record", "old zip only", "recent", "stale temp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newCache(t)
			c := Cache{Dir: dir}
			st, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Entries != 4 || st.Bytes != 1100+2200+3000+300+10+20 || !st.OldestUse.Before(time.Now().Add(-39*day)) {
				t.Errorf("Stats = %+v; want 4 entries, 6630 bytes, oldest use 40 days ago", st)
			}
			res, err := c.Prune(tc.opts)
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			var removed []string
			for _, e := range res.Removed {
				for name, files := range items {
					if filepath.Join(dir, files[0]) == e.Path {
						removed = append(removed, name)
					}
				}
			}
			slices.Sort(removed)
			if !slices.Equal(removed, tc.want) || len(res.Skipped) != 0 {
				t.Errorf("removed %v, skipped %v; want %v removed", removed, res.Skipped, tc.want)
			}
			for name, files := range items {
				for _, f := range files {
					_, err := os.Stat(filepath.Join(dir, f))
					if gone := err != nil; gone != (slices.Contains(tc.want, name) && !tc.opts.DryRun) {
						t.Errorf("%s: %s gone = %v", name, f, gone)
					}
				}
			}
			after, _ := c.Stats()
			if want := st.Bytes - res.Freed; !tc.opts.DryRun && after.Bytes != want {
				t.Errorf("after the prune: %d bytes, want %d (freed %d)", after.Bytes, want, res.Freed)
			}
		})
	}
}

// TestCachePruneConcurrentHit: a Build that hits an entry after the prune
// chose it keeps the entry; with All the entry goes, and the package the
// hit returned still loads (packed again).
func TestCachePruneConcurrentHit(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			f := newCacheFixture(t)
			f.build(t)
			z, m := f.entryFiles(t)
			age(t, z, 40*day)
			age(t, m, 40*day)
			var hit *Package
			testHookScanned = func() {
				pkg, cached, err := f.cache.Build(f.opts(), f.key)
				if err != nil || !cached {
					t.Errorf("Build during the prune: cached %v, %v; want a hit", cached, err)
				}
				hit = pkg
			}
			t.Cleanup(func() { testHookScanned = nil })
			res, err := f.cache.Prune(cachedir.PruneOptions{Before: time.Now().Add(-30 * day), All: all})
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			_, zerr := os.Stat(z)
			_, merr := os.Stat(m)
			if all {
				if len(res.Removed) != 1 || zerr == nil || merr == nil {
					t.Fatalf("with All: removed %v; zip there %v, record there %v", res.Removed, zerr == nil, merr == nil)
				}
				rebuilt, err := hit.Load()
				if err != nil || !rebuilt || hit.Data == nil {
					t.Fatalf("Load of the hit after its entry was removed: rebuilt %v, %v", rebuilt, err)
				}
				return
			}
			if len(res.Removed) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "used during the prune" || zerr != nil || merr != nil {
				t.Fatalf("removed %v, skipped %v, zip %v, record %v; want the entry kept", res.Removed, res.Skipped, zerr, merr)
			}
			if _, cached := f.build(t); !cached {
				t.Error("the kept entry is not a hit")
			}
		})
	}
}

// TestCacheHitRecordsUse: a hit on an entry last used over an hour ago
// sets its zip's modification time to now; a more recent one is left
// alone.
func TestCacheHitRecordsUse(t *testing.T) {
	for _, tc := range []struct {
		ago     time.Duration
		touched bool
	}{{40 * day, true}, {90 * time.Minute, true}, {30 * time.Minute, false}} {
		t.Run(tc.ago.String(), func(t *testing.T) {
			f := newCacheFixture(t)
			f.build(t)
			z, _ := f.entryFiles(t)
			age(t, z, tc.ago)
			if _, cached := f.build(t); !cached {
				t.Fatal("not a hit")
			}
			if touched := time.Since(mustStat(t, z).ModTime()) < time.Minute; touched != tc.touched {
				t.Errorf("last used %v ago: touched = %v, want %v", tc.ago, touched, tc.touched)
			}
		})
	}
}
