package serve

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

// StateSubdir is the directory below the build cache root (build.Result's
// CacheDir) where task mode (ray.TaskExecutor) remembers, per application
// config and cluster, the Serve application and its workers' direct
// addresses: one file <32 hex digits>.json each, written atomically.
const StateSubdir = "task"

// staleStateTemp is the age after which a temporary file of a state write
// (renameio's ".<name><digits>") is a leftover of a killed process.
const staleStateTemp = time.Hour

var (
	stateName     = regexp.MustCompile(`^[0-9a-f]{32}\.json$`)
	stateTempName = regexp.MustCompile(`^\.[0-9a-f]{32}\.json[0-9]+$`)
)

// StateCache is the task state directory Dir (<build cache>/StateSubdir).
// A state file's last use is its modification time: a write, or a read by
// a later process, which sets it to now when it is over an hour old
// (cachedir.Used).
type StateCache struct {
	// Dir is the directory of the state files.
	Dir string
}

// Stats returns the number of state files, their size and the oldest last
// use.
func (c StateCache) Stats() (cachedir.Stats, error) {
	entries, err := c.scan()
	return cachedir.Summarize(c.Dir, entries), err
}

// Prune removes the state files opts selects, and temporary files of
// killed writes. A state file is one file, removed in one step; a process
// that finds it gone asks Serve again (what a first run does). One read or
// written since the scan is kept, unless opts.All. Failed removals are in
// the result's Errors.
func (c StateCache) Prune(opts cachedir.PruneOptions) (*cachedir.PruneResult, error) {
	entries, err := c.scan()
	if err != nil {
		return nil, err
	}
	if testHookScanned != nil {
		testHookScanned()
	}
	return cachedir.PruneEach(entries, opts,
		func(e cachedir.Entry) bool { return cachedir.ModifiedAfter(e.Path, e.LastUse) },
		func(e cachedir.Entry) error { return os.Remove(e.Path) }), nil
}

// testHookScanned, when set by a test, runs in Prune between the scan and
// the removals: where a concurrent process may read a state file.
var testHookScanned func()

// scan lists the state files and the leftovers; files of other names are
// not the cache's.
func (c StateCache) scan() ([]cachedir.Entry, error) {
	names, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []cachedir.Entry
	for _, n := range names {
		fi, err := n.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(c.Dir, n.Name())
		switch {
		case stateName.MatchString(n.Name()):
			out = append(out, cachedir.Entry{Key: n.Name(), Path: p, Bytes: fi.Size(), LastUse: fi.ModTime()})
		case stateTempName.MatchString(n.Name()) && time.Since(fi.ModTime()) > staleStateTemp:
			out = append(out, cachedir.Entry{Key: n.Name(), Path: p, Bytes: fi.Size(), LastUse: fi.ModTime(), Leftover: true})
		}
	}
	return out, nil
}
