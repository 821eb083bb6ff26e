package cachedir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestUsed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ago     time.Duration
		remove  bool
		want    bool
		touched bool
	}{
		{"used recently: nothing written", 10 * time.Minute, false, true, false},
		{"used over an hour ago: touched", 2 * time.Hour, false, true, true},
		{"removed since the Stat: a miss", 2 * time.Hour, true, false, false},
		{"removed, but recent: no check", 10 * time.Minute, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "entry")
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			mod := time.Now().Add(-tc.ago)
			if err := os.Chtimes(p, mod, mod); err != nil {
				t.Fatal(err)
			}
			if tc.remove {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			if got := Used(p, mod); got != tc.want {
				t.Errorf("Used = %v, want %v", got, tc.want)
			}
			if fi, err := os.Stat(p); err == nil {
				if touched := time.Since(fi.ModTime()) < time.Minute; touched != tc.touched {
					t.Errorf("touched = %v, want %v", touched, tc.touched)
				}
			}
		})
	}
}

func TestSummarizeAndSelects(t *testing.T) {
	now := time.Now()
	entries := []Entry{
		{Key: "a", Bytes: 10, LastUse: now.Add(-48 * time.Hour)},
		{Key: "b", Bytes: 20, LastUse: now.Add(-time.Hour)},
		{Key: ".tmp-1", Bytes: 5, LastUse: now.Add(-100 * time.Hour), Leftover: true},
	}
	s := Summarize("/c", entries)
	if s.Dir != "/c" || s.Entries != 2 || s.Bytes != 35 || !s.OldestUse.Equal(entries[0].LastUse) {
		t.Errorf("Summarize = %+v", s)
	}
	if s := Summarize("/c", nil); s.Entries != 0 || !s.OldestUse.IsZero() {
		t.Errorf("Summarize of nothing = %+v", s)
	}
	for _, tc := range []struct {
		opts PruneOptions
		want []bool // a, b, leftover
	}{
		{PruneOptions{Before: now.Add(-24 * time.Hour)}, []bool{true, false, true}},
		{PruneOptions{Before: now.Add(-30 * time.Minute)}, []bool{true, true, true}},
		{PruneOptions{Before: now.Add(-1000 * time.Hour)}, []bool{false, false, true}},
		{PruneOptions{All: true}, []bool{true, true, true}},
	} {
		for i, e := range entries {
			if got := tc.opts.Selects(e); got != tc.want[i] {
				t.Errorf("%+v selects %s = %v, want %v", tc.opts, e.Key, got, tc.want[i])
			}
		}
	}
}

func TestTrashRestore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reborn   bool // something is at the path again before Restore
		restored bool
	}{{"back in place", false, true}, {"written anew meanwhile", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			entry := filepath.Join(dir, "entry")
			if err := os.MkdirAll(filepath.Join(entry, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(entry, "sub", "f"), []byte("12345"), 0o644); err != nil {
				t.Fatal(err)
			}
			if n := Bytes(entry); n != 5 {
				t.Errorf("Bytes = %d, want 5", n)
			}
			trash, err := Trash(entry)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(entry); !os.IsNotExist(err) {
				t.Fatalf("the entry is still in place: %v", err)
			}
			if StaleTrash(filepath.Base(trash)) {
				t.Errorf("%s of this live process is taken as stale", trash)
			}
			if tc.reborn {
				if err := os.MkdirAll(filepath.Join(entry, "new"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if got := Restore(trash, entry); got != tc.restored {
				t.Errorf("Restore = %v, want %v", got, tc.restored)
			}
			if _, err := os.Stat(trash); !os.IsNotExist(err) {
				t.Errorf("the trash is left: %v", err)
			}
			_, err = os.Stat(filepath.Join(entry, "sub", "f"))
			if (err == nil) != tc.restored {
				t.Errorf("old content in place: %v, want %v", err == nil, tc.restored)
			}
		})
	}
	if _, err := Trash(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Errorf("Trash of nothing: %v, want not exist", err)
	}
}

func TestStaleTrash(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		fmt.Sprintf("%s%d-ab12", TrashPrefix, dead.Process.Pid): true,
		fmt.Sprintf("%s%d-ab12", TrashPrefix, os.Getpid()):      false,
		TrashPrefix + "x-ab12":                                  true,
		".tmp-123":                                              false,
		"entry":                                                 false,
	} {
		if got := StaleTrash(name); got != want {
			t.Errorf("StaleTrash(%q) = %v, want %v", name, got, want)
		}
	}
}

// BenchmarkUsed is what a cache hit adds: nothing but a clock read for an
// entry used within the hour ("recent", nearly every hit), one Chtimes for
// an older one ("stale", once an hour per entry).
func BenchmarkUsed(b *testing.B) {
	p := filepath.Join(b.TempDir(), "entry")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("recent", func(b *testing.B) {
		mod := time.Now()
		for b.Loop() {
			if !Used(p, mod) {
				b.Fatal("gone")
			}
		}
	})
	b.Run("stale", func(b *testing.B) {
		mod := time.Now().Add(-2 * UseResolution)
		for b.Loop() {
			if !Used(p, mod) {
				b.Fatal("gone")
			}
		}
	})
}
