package pyenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

// envName matches the names key gives environments; nothing else in a
// cache directory (which $SYNAPSE_VENV_DIR may make any directory) is
// ever removed.
var envName = regexp.MustCompile(`^py[0-9][0-9A-Za-z.+]*-sdk[0-9A-Za-z.+!-]+-[0-9a-f]{16}$`)

// ReasonInUse is the reason Prune gives for an environment it kept
// because a process holds its lock: one using it (between Prepare and
// Env.Close) or building it.
const ReasonInUse = "in use or being built (locked)"

// envEntry is an environment, or a leftover, of the cache.
type envEntry struct {
	cachedir.Entry
	lock string // the lock file that guards it; "" for a prune's trash
}

// Stats returns the number of environments in the cache, their size (with
// what killed builds and prunes left), and the oldest last use.
func (c *Cache) Stats() (cachedir.Stats, error) {
	root, entries, err := c.scan()
	all := make([]cachedir.Entry, len(entries))
	for i, e := range entries {
		all[i] = e.Entry
	}
	return cachedir.Summarize(root, all), err
}

// Prune removes the environments opts selects, and what killed builds and
// prunes left. An environment is removed only under its exclusive lock,
// which no process holds while using or building it: one that is locked
// is kept, skipped with ReasonInUse (with opts.DryRun too: the lock is
// tried). Holding the lock, Prune renames the environment out of place,
// removes its lock file, releases the lock, then deletes the files. A
// process that waited on the lock meanwhile takes the new lock file's and
// finds no environment: it builds one. Failed removals are in the
// result's Errors.
func (c *Cache) Prune(opts cachedir.PruneOptions) (*cachedir.PruneResult, error) {
	_, entries, err := c.scan()
	if err != nil {
		return nil, err
	}
	res := &cachedir.PruneResult{}
	for _, e := range entries {
		if !opts.Selects(e.Entry) {
			continue
		}
		if e.lock == "" { // a prune's trash: no one else knows its name
			if !opts.DryRun {
				if err := os.RemoveAll(e.Path); err != nil {
					res.Fail(e.Entry, err)
					continue
				}
			}
			res.Remove(e.Entry)
			continue
		}
		l, held, err := tryLockEnv(e.lock, !opts.DryRun)
		switch {
		case held && e.Leftover:
			continue // a build's temporary directory or lock: not a leftover
		case held:
			res.Skip(e.Entry, ReasonInUse)
			continue
		case opts.DryRun && (err == nil || errors.Is(err, fs.ErrNotExist)):
			l.unlock()
			res.Remove(e.Entry)
			continue
		case err != nil:
			res.Fail(e.Entry, err)
			continue
		}
		if err := c.remove(e, l, opts.All); err != nil {
			if errors.Is(err, errUsed) {
				res.Skip(e.Entry, "used during the prune")
			} else {
				res.Fail(e.Entry, err)
			}
			continue
		}
		res.Remove(e.Entry)
	}
	return res, nil
}

var errUsed = errors.New("used during the prune")

// remove removes e holding l, its exclusive lock, and releases l. An
// environment used since the scan is kept (errUsed), unless all.
func (c *Cache) remove(e envEntry, l *envLock, all bool) error {
	if !e.Leftover && !all {
		if fi, err := os.Stat(filepath.Join(e.Path, markerFile)); err == nil && fi.ModTime().After(e.LastUse) {
			l.unlock()
			return errUsed
		}
	}
	trash, err := cachedir.Trash(e.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.unlock()
		return err
	}
	// The lock file goes with the environment, and with a leftover when
	// no environment of its key is there.
	if e.Path == e.lock || !e.Leftover || !exists(strings.TrimSuffix(e.lock, ".lock")) {
		_ = os.Remove(e.lock)
	}
	l.unlock()
	if trash == "" {
		return nil
	}
	return os.RemoveAll(trash)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// scan lists the environments of the cache (complete or not), with their
// lock files, and the leftovers: temporary build directories and lock
// files without an environment (whether they are leftovers is told by
// their lock being free), and unfinished prunes' trash.
func (c *Cache) scan() (string, []envEntry, error) {
	root, err := filepath.Abs(c.Dir)
	if err != nil {
		return "", nil, err
	}
	names, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return root, nil, nil
	}
	if err != nil {
		return root, nil, err
	}
	var out []envEntry
	for _, n := range names {
		name, p := n.Name(), filepath.Join(root, n.Name())
		switch {
		case n.IsDir() && envName.MatchString(name):
			e := envEntry{Entry: cachedir.Entry{Key: name, Path: p, Bytes: cachedir.Bytes(p)}, lock: p + ".lock"}
			if fi, err := os.Stat(filepath.Join(p, markerFile)); err == nil {
				e.LastUse = fi.ModTime()
			} else if fi, err := n.Info(); err == nil {
				e.LastUse = fi.ModTime() // incomplete: Prepare builds it again
			}
			out = append(out, e)
		case cachedir.StaleTrash(name):
			out = append(out, envEntry{Entry: cachedir.Leftover(p)})
		case n.IsDir() && strings.HasPrefix(name, ".tmp-"):
			k, _, ok := cutLast(strings.TrimPrefix(name, ".tmp-"), "-")
			if ok && envName.MatchString(k) {
				out = append(out, envEntry{Entry: cachedir.Leftover(p), lock: filepath.Join(root, k+".lock")})
			}
		case n.Type().IsRegular() && envName.MatchString(strings.TrimSuffix(name, ".lock")) && strings.HasSuffix(name, ".lock"):
			if !exists(strings.TrimSuffix(p, ".lock")) {
				out = append(out, envEntry{Entry: cachedir.Leftover(p), lock: p})
			}
		}
	}
	return root, out, nil
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
