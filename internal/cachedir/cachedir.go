// Package cachedir holds what the CLI's caches on disk share: how an entry
// and a cache are described (Entry, Stats), how a cache hit records its use
// (Used), and the parts of pruning that do not depend on a cache's layout
// (PruneOptions, PruneResult, Trash, Bytes).
//
// The caches themselves (internal/build's plugin binaries, internal/pack's
// cluster packages, internal/serve's task state, internal/pyenv's Python
// environments) each scan and prune their own entries: only they know what
// a complete entry is and what a concurrent user holds.
//
// Last use is a file's modification time. A hit sets it to now when it is
// more than UseResolution old, so a hot path changes nothing on disk more
// than once an hour per entry, and last use is known to within an hour.
package cachedir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// UseResolution is how stale a cache entry's modification time may get
// before a hit sets it to now (Used): last use is known to within it.
const UseResolution = time.Hour

// Used records a use of the cache entry whose file is path, given the
// modification time modTime that the hit's Stat returned: when modTime is
// more than UseResolution ago, the file's access and modification times
// are set to now. It reports whether the entry is still there: false when
// the file is gone (removed by a prune since the Stat), which the caller
// takes as a miss. Any other failure to set the time (a read-only cache,
// a file of another user) is ignored: the entry is valid, its last use
// just stays older.
func Used(path string, modTime time.Time) bool {
	now := time.Now()
	if now.Sub(modTime) <= UseResolution {
		return true
	}
	err := os.Chtimes(path, now, now)
	return !errors.Is(err, fs.ErrNotExist)
}

// Entry is one entry of a cache, or a leftover in it.
type Entry struct {
	// Key names the entry in its cache: a build key, a package key, an
	// environment key, a task state file's name; for a leftover, its
	// file name.
	Key string `json:"key"`
	// Path is the entry's directory, or its main file when it is files
	// (a package's .zip beside its .json).
	Path string `json:"path"`
	// Bytes is the size of its regular files (symbolic links not
	// followed).
	Bytes int64 `json:"bytes"`
	// LastUse is the last time a hit used it, to within UseResolution:
	// the modification time of the file a hit touches (see Used).
	LastUse time.Time `json:"last_use"`
	// Leftover marks what a killed process (a build, a write, a prune)
	// left behind: not an entry, never used, removed by every prune.
	Leftover bool `json:"leftover,omitempty"`
}

// Stats describes a cache.
type Stats struct {
	// Dir is the cache's directory.
	Dir string `json:"path"`
	// Entries is the number of entries, leftovers not counted.
	Entries int `json:"entries"`
	// Bytes is the size of the entries and the leftovers.
	Bytes int64 `json:"bytes"`
	// OldestUse is the earliest LastUse of an entry; zero without
	// entries.
	OldestUse time.Time `json:"oldest_use"`
}

// Summarize returns the Stats of the cache in dir holding entries.
func Summarize(dir string, entries []Entry) Stats {
	s := Stats{Dir: dir}
	for _, e := range entries {
		s.Bytes += e.Bytes
		if e.Leftover {
			continue
		}
		s.Entries++
		if s.OldestUse.IsZero() || e.LastUse.Before(s.OldestUse) {
			s.OldestUse = e.LastUse
		}
	}
	return s
}

// PruneOptions says which entries a prune removes.
type PruneOptions struct {
	// Before: entries last used before this time are removed.
	Before time.Time
	// All removes every entry, whatever its last use. Entries a
	// concurrent process holds (an environment in use, a build running)
	// are kept all the same.
	All bool
	// DryRun removes nothing: the result lists what would be removed.
	DryRun bool
}

// Selects reports whether e is to be removed: a leftover always, an entry
// with All or when last used before o.Before.
func (o PruneOptions) Selects(e Entry) bool {
	return e.Leftover || o.All || e.LastUse.Before(o.Before)
}

// Skipped is an entry a prune selected but kept.
type Skipped struct {
	Entry
	// Reason says why, such as "in use or being built".
	Reason string `json:"reason"`
}

// PruneResult is what a prune did.
type PruneResult struct {
	// Removed lists the entries and leftovers removed (with
	// PruneOptions.DryRun: that would be removed).
	Removed []Entry `json:"removed"`
	// Skipped lists the selected entries kept because a concurrent
	// process holds or used them.
	Skipped []Skipped `json:"skipped"`
	// Freed is the bytes of Removed.
	Freed int64 `json:"freed_bytes"`
	// Errors are the removals that failed (each names its path); the
	// entries stay in the cache and are not in Removed.
	Errors []error `json:"-"`
}

// Remove records e as removed.
func (r *PruneResult) Remove(e Entry) {
	r.Removed = append(r.Removed, e)
	r.Freed += e.Bytes
}

// Skip records e as kept for reason.
func (r *PruneResult) Skip(e Entry, reason string) {
	r.Skipped = append(r.Skipped, Skipped{Entry: e, Reason: reason})
}

// Fail records that removing e failed with err.
func (r *PruneResult) Fail(e Entry, err error) {
	r.Errors = append(r.Errors, fmt.Errorf("remove %s: %w", e.Path, err))
}

// Err returns the failed removals joined, or nil.
func (r *PruneResult) Err() error { return errors.Join(r.Errors...) }

// PruneEach removes the entries opts selects, one by one, with remove (an
// entry already gone counts as removed), for caches whose entries go in one
// step. Unless opts.All, an entry that usedSince reports used after its
// scanned LastUse is kept ("used during the prune"); leftovers are not
// asked. With opts.DryRun nothing is removed or asked.
func PruneEach(entries []Entry, opts PruneOptions, usedSince func(Entry) bool, remove func(Entry) error) *PruneResult {
	res := &PruneResult{}
	for _, e := range entries {
		if !opts.Selects(e) {
			continue
		}
		if !opts.DryRun {
			if !e.Leftover && !opts.All && usedSince(e) {
				res.Skip(e, "used during the prune")
				continue
			}
			if err := remove(e); err != nil && !errors.Is(err, fs.ErrNotExist) {
				res.Fail(e, err)
				continue
			}
		}
		res.Remove(e)
	}
	return res
}

// ModifiedAfter reports whether the file at path was modified after t (a
// use recorded by Used); false when it is gone.
func ModifiedAfter(path string, t time.Time) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.ModTime().After(t)
}

// Bytes returns the size of the regular files at path (a file, or a
// directory walked without following symbolic links); 0 when it is gone.
func Bytes(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TrashPrefix starts the names Trash gives: ".prune-<pid>-<random>".
const TrashPrefix = ".prune-"

// Trash renames path (a file or a directory) to a new name in the same
// directory, TrashPrefix<pid>-<random>, and returns that name: in one
// atomic step the entry is gone from where a hit looks, so a concurrent
// user never sees part of it; the caller then removes the new name at
// leisure (or renames it back). An error wrapping fs.ErrNotExist means
// path was gone already.
func Trash(path string) (string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	to := filepath.Join(filepath.Dir(path), TrashPrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(b[:]))
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}

// Restore renames trash (from Trash) back to path, unless something is at
// path again (a concurrent process wrote the entry anew): then trash is
// removed. It reports whether trash went back.
func Restore(trash, path string) bool {
	if _, err := os.Lstat(path); err == nil {
		_ = os.RemoveAll(trash)
		return false
	}
	if err := os.Rename(trash, path); err != nil {
		_ = os.RemoveAll(trash)
		return false
	}
	return true
}

// StaleTrash reports whether name (a file name in a cache) is what Trash
// left behind in a prune that did not finish: its process is gone.
func StaleTrash(name string) bool {
	rest, ok := strings.CutPrefix(name, TrashPrefix)
	if !ok {
		return false
	}
	pid, _, _ := strings.Cut(rest, "-")
	n, err := strconv.Atoi(pid)
	return err != nil || !ProcessAlive(n)
}

// Leftover describes the leftover at path for a PruneResult: its name,
// size and modification time.
func Leftover(path string) Entry {
	e := Entry{Key: filepath.Base(path), Path: path, Bytes: Bytes(path), Leftover: true}
	if fi, err := os.Lstat(path); err == nil {
		e.LastUse = fi.ModTime()
	}
	return e
}
