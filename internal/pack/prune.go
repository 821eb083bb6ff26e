package pack

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

var (
	shardName = regexp.MustCompile(`^[0-9a-f]{2}$`)
	entryName = regexp.MustCompile(`^([0-9a-f]{64})\.(zip|json)$`)
)

// Stats returns the number of packages in the cache, their size (with the
// temporary files of killed writes), and the oldest last use (a zip's
// modification time, which a hit of Build sets to now when it is over an
// hour old). A cache without a Dir is empty.
func (c Cache) Stats() (cachedir.Stats, error) {
	entries, err := c.scan()
	return cachedir.Summarize(c.Dir, entries), err
}

// Prune removes the packages opts selects, and what killed writes and
// prunes left. An entry is removed record first: from that moment a
// concurrent Build misses it and packs again, so no half-removed entry is
// ever used, and a package a hit returned before is packed again by Load
// when its zip is gone. An entry a concurrent Build used since the scan
// (its zip's modification time moved) is kept, unless opts.All. Failed
// removals are in the result's Errors.
func (c Cache) Prune(opts cachedir.PruneOptions) (*cachedir.PruneResult, error) {
	entries, err := c.scan()
	if err != nil {
		return nil, err
	}
	if testHookScanned != nil {
		testHookScanned()
	}
	return cachedir.PruneEach(entries, opts,
		func(e cachedir.Entry) bool {
			return cachedir.ModifiedAfter(filepath.Join(filepath.Dir(e.Path), e.Key)+".zip", e.LastUse)
		},
		func(e cachedir.Entry) error {
			if e.Leftover {
				return os.RemoveAll(e.Path)
			}
			base := filepath.Join(filepath.Dir(e.Path), e.Key)
			return removeFiles(base+".json", base+".zip") // the record first: from then on a miss
		}), nil
}

// testHookScanned, when set by a test, runs in Prune between the scan and
// the removals: where a concurrent Build may come.
var testHookScanned func()

// removeFiles removes files in order; one already gone is no error.
func removeFiles(files ...string) error {
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// scan lists the cache's entries (a key's .zip and .json, either of which
// may be missing) and leftovers: temporary files older than staleTemp and
// unfinished prunes' trash. Files of other names are not the cache's and
// are left out.
func (c Cache) scan() ([]cachedir.Entry, error) {
	if c.Dir == "" {
		return nil, nil
	}
	shards, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []cachedir.Entry
	for _, s := range shards {
		if !s.IsDir() || !shardName.MatchString(s.Name()) {
			continue
		}
		shard := filepath.Join(c.Dir, s.Name())
		names, err := os.ReadDir(shard)
		if err != nil {
			continue
		}
		byKey := map[string]*cachedir.Entry{}
		var keys []string
		for _, n := range names {
			p := filepath.Join(shard, n.Name())
			fi, err := n.Info()
			if err != nil {
				continue
			}
			if (strings.HasPrefix(n.Name(), ".tmp-") && time.Since(fi.ModTime()) > staleTemp) || cachedir.StaleTrash(n.Name()) {
				out = append(out, cachedir.Leftover(p))
				continue
			}
			m := entryName.FindStringSubmatch(n.Name())
			if m == nil || !fi.Mode().IsRegular() || !strings.HasPrefix(m[1], s.Name()) {
				continue
			}
			e := byKey[m[1]]
			if e == nil {
				e = &cachedir.Entry{Key: m[1]}
				byKey[m[1]] = e
				keys = append(keys, m[1])
			}
			e.Bytes += fi.Size()
			// Last use: the zip's time; the record's only without a zip.
			if m[2] == "zip" || e.Path == "" {
				e.Path, e.LastUse = p, fi.ModTime()
			}
		}
		for _, k := range keys {
			out = append(out, *byKey[k])
		}
	}
	return out, nil
}
