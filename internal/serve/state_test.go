package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

func TestStateCachePrune(t *testing.T) {
	const day = 24 * time.Hour
	old, recent := strings.Repeat("a", 32)+".json", strings.Repeat("b", 32)+".json"
	files := map[string]time.Duration{ // name → last use, ago
		old:                                   40 * day,
		recent:                                2 * time.Hour,
		"." + old + "8731962":                 2 * time.Hour, // a killed write's
		"." + recent + "12":                   time.Minute,   // a write in progress
		"notes.json":                          400 * day,     // not ours
		strings.Repeat("c", 31) + ".json":     400 * day,     // not ours
		strings.Repeat("d", 32) + ".json.bak": 400 * day,     // not ours
	}
	for _, tc := range []struct {
		name string
		opts cachedir.PruneOptions
		want []string
	}{
		{"older than 30 days", cachedir.PruneOptions{Before: time.Now().Add(-30 * day)}, []string{"." + old + "8731962", old}},
		{"older than an hour", cachedir.PruneOptions{Before: time.Now().Add(-time.Hour)}, []string{"." + old + "8731962", old, recent}},
		{"all", cachedir.PruneOptions{All: true}, []string{"." + old + "8731962", old, recent}},
		{"all, dry run", cachedir.PruneOptions{All: true, DryRun: true}, []string{"." + old + "8731962", old, recent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := StateCache{Dir: t.TempDir()}
			for name, ago := range files {
				p := filepath.Join(c.Dir, name)
				if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
				when := time.Now().Add(-ago)
				if err := os.Chtimes(p, when, when); err != nil {
					t.Fatal(err)
				}
			}
			st, err := c.Stats()
			if err != nil || st.Entries != 2 || st.Bytes != 6 || !st.OldestUse.Before(time.Now().Add(-39*day)) {
				t.Errorf("Stats = %+v, %v; want 2 entries, 6 bytes, oldest use 40 days ago", st, err)
			}
			res, err := c.Prune(tc.opts)
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			var removed []string
			for _, e := range res.Removed {
				removed = append(removed, e.Key)
			}
			slices.Sort(removed)
			if !slices.Equal(removed, tc.want) || res.Freed != int64(2*len(tc.want)) {
				t.Errorf("removed %v (%d bytes), want %v", removed, res.Freed, tc.want)
			}
			for name := range files {
				_, err := os.Stat(filepath.Join(c.Dir, name))
				if gone := err != nil; gone != (slices.Contains(tc.want, name) && !tc.opts.DryRun) {
					t.Errorf("%s gone = %v", name, gone)
				}
			}
		})
	}
	if st, err := (StateCache{Dir: filepath.Join(t.TempDir(), "none")}).Stats(); err != nil || st.Entries != 0 {
		t.Errorf("a missing directory: %+v, %v", st, err)
	}
}

// TestStateCachePruneConcurrentUse: a state file a process reads (ray's
// recall records the use) after the prune chose it is kept, unless All.
func TestStateCachePruneConcurrentUse(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			c := StateCache{Dir: t.TempDir()}
			p := filepath.Join(c.Dir, strings.Repeat("a", 32)+".json")
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-40 * 24 * time.Hour)
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
			testHookScanned = func() {
				if !cachedir.Used(p, old) {
					t.Error("the state file is gone before the prune removed anything")
				}
			}
			t.Cleanup(func() { testHookScanned = nil })
			res, err := c.Prune(cachedir.PruneOptions{Before: time.Now().Add(-30 * 24 * time.Hour), All: all})
			if err != nil || res.Err() != nil {
				t.Fatal(err, res.Err())
			}
			_, statErr := os.Stat(p)
			if all {
				if len(res.Removed) != 1 || statErr == nil {
					t.Errorf("with All: removed %v, file there %v", res.Removed, statErr == nil)
				}
				return
			}
			if len(res.Removed) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "used during the prune" || statErr != nil {
				t.Errorf("removed %v, skipped %v, file: %v; want it kept as used during the prune", res.Removed, res.Skipped, statErr)
			}
		})
	}
}
