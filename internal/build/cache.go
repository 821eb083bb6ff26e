package build

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

// staleTempAge is the age after which a temporary build directory is
// removed even when its process still runs (or cannot be checked).
const staleTempAge = 24 * time.Hour

// Cache is the binary cache at Dir (Options.CacheDir; DefaultCacheDir when
// empty): one directory per build key, Dir/<key[:2]>/<key>, holding the
// plugin binary. Only those directories are its entries: other caches
// below Dir (internal/pack's packages/, task mode's task/) are not.
//
// An entry's last use is its binary's modification time, which a cache
// hit of Build sets to now when it is more than cachedir.UseResolution
// old.
type Cache struct {
	// Dir is the cache root; empty means DefaultCacheDir().
	Dir string
}

var (
	shardName = regexp.MustCompile(`^[0-9a-f]{2}$`)
	keyName   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// binEntry is an entry of the binary cache.
type binEntry struct {
	cachedir.Entry
	building bool // a build of the key is running (a live temporary directory)
}

func (c Cache) dir() (string, error) {
	if c.Dir != "" {
		return filepath.Abs(c.Dir)
	}
	d, err := DefaultCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Abs(d)
}

// Stats returns the number of binaries in the cache, their size (with what
// killed builds and prunes left), and the oldest last use.
func (c Cache) Stats() (cachedir.Stats, error) {
	dir, err := c.dir()
	if err != nil {
		return cachedir.Stats{}, err
	}
	entries, leftovers, err := scanBinaries(dir)
	if err != nil {
		return cachedir.Stats{Dir: dir}, err
	}
	all := leftovers
	for _, e := range entries {
		all = append(all, e.Entry)
	}
	return cachedir.Summarize(dir, all), nil
}

// Prune removes the binaries opts selects, and what killed builds and
// prunes left. A key being built (its temporary directory belongs to a
// running process) is kept. Each entry is first renamed out of place in
// one step (cachedir.Trash), so a concurrent Build sees either the whole
// entry or a miss; an entry that a concurrent Build used or started
// building since the scan is renamed back (unless opts.All, for a use).
// Then it is removed. Failed removals are in the result's Errors.
func (c Cache) Prune(opts cachedir.PruneOptions) (*cachedir.PruneResult, error) {
	dir, err := c.dir()
	if err != nil {
		return nil, err
	}
	entries, leftovers, err := scanBinaries(dir)
	if err != nil {
		return nil, err
	}
	if testHookScanned != nil {
		testHookScanned()
	}
	res := &cachedir.PruneResult{}
	for _, l := range leftovers {
		if !opts.DryRun {
			if err := os.RemoveAll(l.Path); err != nil {
				res.Fail(l, err)
				continue
			}
		}
		res.Remove(l)
	}
	for _, e := range entries {
		switch {
		case !opts.Selects(e.Entry):
			continue
		case e.building:
			res.Skip(e.Entry, "being built")
			continue
		case opts.DryRun:
			res.Remove(e.Entry)
			continue
		}
		trash, err := cachedir.Trash(e.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a concurrent prune took it
		}
		if err != nil {
			res.Fail(e.Entry, err)
			continue
		}
		if reason := claimed(trash, e.LastUse, opts.All); reason != "" && cachedir.Restore(trash, e.Path) {
			res.Skip(e.Entry, reason)
			continue
		}
		if err := os.RemoveAll(trash); err != nil {
			res.Fail(e.Entry, err)
			continue
		}
		res.Remove(e.Entry)
	}
	return res, nil
}

// testHookScanned, when set by a test, runs in Prune between the scan and
// the removals: where a concurrent Build may come.
var testHookScanned func()

// claimed says why an entry renamed to trash must go back: a build of its
// key started, or (unless all) a hit used it after lastUse; "" for
// neither.
func claimed(trash string, lastUse time.Time, all bool) string {
	e, _ := scanKeyDir(trash)
	switch {
	case e.building:
		return "being built"
	case !all && e.LastUse.After(lastUse):
		return "used during the prune"
	}
	return ""
}

// scanBinaries lists the entries of the binary cache at dir and the
// leftovers: stale temporary build directories and unfinished prunes'
// trash.
func scanBinaries(dir string) (entries []binEntry, leftovers []cachedir.Entry, err error) {
	shards, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, s := range shards {
		if !s.IsDir() || !shardName.MatchString(s.Name()) {
			continue
		}
		shard := filepath.Join(dir, s.Name())
		names, err := os.ReadDir(shard)
		if err != nil {
			continue
		}
		for _, n := range names {
			p := filepath.Join(shard, n.Name())
			switch {
			case cachedir.StaleTrash(n.Name()):
				leftovers = append(leftovers, cachedir.Leftover(p))
			case n.IsDir() && keyName.MatchString(n.Name()) && strings.HasPrefix(n.Name(), s.Name()):
				e, stale := scanKeyDir(p)
				if e.Path != "" {
					entries = append(entries, e)
				}
				leftovers = append(leftovers, stale...)
			}
		}
	}
	return entries, leftovers, nil
}

// scanKeyDir describes the key directory dir: its binary's size and last
// use (the directory's modification time when it has none), whether a
// build is running in it, and its stale temporary directories (not
// counted in the entry). The entry's Path is "" when dir is gone.
func scanKeyDir(dir string) (e binEntry, stale []cachedir.Entry) {
	fi, err := os.Stat(dir)
	if err != nil {
		return e, nil
	}
	e.Key, e.Path = filepath.Base(dir), dir
	names, _ := os.ReadDir(dir)
	var used time.Time
	for _, n := range names {
		p := filepath.Join(dir, n.Name())
		if strings.HasPrefix(n.Name(), ".tmp-") {
			if staleBuildTemp(p) {
				stale = append(stale, cachedir.Leftover(p))
			} else {
				e.building = true
			}
			continue
		}
		e.Bytes += cachedir.Bytes(p)
		if info, err := n.Info(); err == nil && info.Mode().IsRegular() && info.ModTime().After(used) {
			used = info.ModTime()
		}
	}
	if used.IsZero() {
		used = fi.ModTime()
	}
	e.LastUse = used
	return e, stale
}

// staleBuildTemp reports whether the temporary build directory path
// (.tmp-<pid>-<random>) is one a build left behind: its process is gone,
// or it is older than staleTempAge.
func staleBuildTemp(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(path), ".tmp-"), "-")
	pid, err := strconv.Atoi(pidText)
	return err != nil || !cachedir.ProcessAlive(pid) || time.Since(fi.ModTime()) > staleTempAge
}
