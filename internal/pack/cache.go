package pack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

// cacheFormat is hashed into every package cache key. Change it whenever
// the zip layout or the cache entry format changes.
const cacheFormat = "synapse-go/internal/pack cache v1"

// CacheSubdir is the directory below a build cache root (build.Result's
// CacheDir) that holds cached packages: CacheSubdir/<key[:2]>/<key>.zip and
// <key>.json.
const CacheSubdir = "packages"

// maxContentKey is the size up to which a packed file's content is hashed
// into the cache key; larger files contribute their size and modification
// time instead (as in the build cache).
const maxContentKey = 1 << 20

// staleTemp is the age after which a temporary file a killed process left
// in the package cache is removed.
const staleTemp = time.Hour

// Cache builds packages through a cache on disk, so that packing an
// unchanged plugin again costs a walk of the plugin directory and a check
// of the cached zip instead of compressing the binary.
type Cache struct {
	// Dir is the cache directory; empty disables the cache (Build then
	// always packs).
	Dir string
}

// cacheMeta is the <key>.json beside a cached <key>.zip.
type cacheMeta struct {
	Name   string `json:"name"`   // Package.Name
	SHA256 string `json:"sha256"` // hex SHA-256 of the zip
	Size   int64  `json:"size"`   // bytes of the zip
	Files  []File `json:"files"`  // Package.Files
}

// Build returns the package for opts, the same bytes pack.Build gives, and
// whether it came from the cache. A package from the cache has its Name,
// URI and Files but no Data: call Load before using Data (uploading it).
//
// The cache key covers what is packed: every entry's path and mode, the
// content of each file of the plugin directory up to 1 MiB (larger ones:
// size and modification time), the Extra files, and the binary, which is
// identified by binaryKey (the build cache key of the binary; the binary's
// content is hashed when binaryKey is empty). The ignore files act through
// the walk: a rule that changes what is packed changes the key.
//
// A cache entry is used when its record is intact and its zip has the
// recorded size (a truncated entry, or one whose record or zip is missing,
// is packed again at once); a hit sets the zip's modification time to now
// when it is over an hour old (cachedir.UseResolution), the entry's last
// use for Prune. Load then
// reads the zip and checks its SHA-256, packing it again when it does not
// match (an edited entry), so a damaged entry is never uploaded. Reading
// and hashing the zip (~5 MiB) costs more than everything else on a hit,
// and a warm run rarely needs the bytes (the cluster has the package), so
// it is left to Load. Entries are written to a temporary file and renamed
// into place. Failing to store an entry is not an error: the package is
// returned all the same.
func (c Cache) Build(opts Options, binaryKey string) (pkg *Package, cached bool, err error) {
	b, err := newBuilder(opts)
	if err != nil {
		return nil, false, err
	}
	if _, err := b.walk("", nil, b.ign); err != nil {
		return nil, false, err
	}
	b.addFiles()
	if err := b.finish(); err != nil {
		return nil, false, err
	}
	if c.Dir == "" {
		pkg, err := b.write()
		return pkg, false, err
	}
	key, err := b.cacheKey(binaryKey)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Join(c.Dir, key[:2])
	base := filepath.Join(dir, key)
	if pkg := loadCached(base); pkg != nil {
		pkg.lazy.b, pkg.lazy.dir = b, dir
		return pkg, true, nil
	}
	pkg, err = b.write()
	if err != nil {
		return nil, false, err
	}
	storeCached(dir, base, pkg)
	return pkg, false, nil
}

// lazyData is where a cached package's zip is and how to pack it again.
type lazyData struct {
	base, dir string // the entry is base+".zip" and base+".json", in dir
	sha256    string // hex, from the record
	size      int64
	b         *builder // the finished builder, to pack again
}

// Load reads the zip of a package from Cache.Build into Data, checking its
// size and SHA-256 against the cache record. A zip that does not match is
// packed again (and the entry replaced): then rebuilt is true and Name,
// URI and Files are those of the new package (the same, unless the record
// was damaged). Load does nothing for a package whose Data is set.
func (p *Package) Load() (rebuilt bool, err error) {
	l := p.lazy
	if l == nil {
		return false, nil
	}
	// loadCached checked that the record's name matches its SHA-256.
	if data := readVerified(l.base+".zip", l.size, l.sha256); data != nil {
		p.Data, p.lazy = data, nil
		return false, nil
	}
	fresh, err := l.b.write()
	if err != nil {
		return false, err
	}
	storeCached(l.dir, l.base, fresh)
	*p = *fresh
	return true, nil
}

// readVerified returns the content of file when it has size bytes and the
// hex SHA-256 sum, else nil.
func readVerified(file string, size int64, sum string) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != size {
		return nil
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil
	}
	if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != sum {
		return nil
	}
	return data
}

// cacheKey hashes the entries of a finished builder (see Cache.Build).
func (b *builder) cacheKey(binaryKey string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format %q\n", cacheFormat)
	buf := make([]byte, 64<<10)
	for _, e := range b.entries {
		fmt.Fprintf(h, "entry %q %o\n", e.name, uint32(e.mode))
		switch {
		case e.isDir():
		case e.src == "":
			fmt.Fprintf(h, "data %d\n", len(e.data))
			h.Write(e.data)
		case b.binInfo != nil && e.name == b.name && binaryKey != "":
			fmt.Fprintf(h, "binary %q\n", binaryKey)
		default:
			if err := hashSource(h, e, buf, b.binInfo != nil && e.name == b.name); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashSource writes the content of e's file to h, or its size and
// modification time when it is larger than maxContentKey and not full.
func hashSource(h hash.Hash, e *entry, buf []byte, full bool) error {
	f, err := openFile(e.src)
	if err != nil {
		return fmt.Errorf("package plugin: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("package plugin: %w", err)
	}
	if !full && fi.Size() > maxContentKey {
		fmt.Fprintf(h, "large %d %d\n", fi.Size(), fi.ModTime().UnixNano())
		return nil
	}
	// The length is written after the content: the file may change
	// between the Stat and the read.
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return fmt.Errorf("package plugin: %w", err)
	}
	fmt.Fprintf(h, "\nfile %d\n", n)
	return nil
}

// loadCached returns the package stored at base (.json and .zip), without
// its Data, or nil when there is none, its record is damaged or its zip
// does not have the recorded size.
func loadCached(base string) *Package {
	raw, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil
	}
	var m cacheMeta
	// The name is the first 16 hex digits of the zip's SHA-256 (see write).
	if json.Unmarshal(raw, &m) != nil || m.Size <= 0 || len(m.SHA256) != 2*sha256.Size ||
		m.Name != "_ray_pkg_"+m.SHA256[:16]+".zip" {
		return nil
	}
	// A hit records its use (once an hour at most): a zip a prune removed
	// since the Stat is a miss.
	zip := base + ".zip"
	fi, err := os.Stat(zip)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != m.Size || !cachedir.Used(zip, fi.ModTime()) {
		return nil
	}
	return &Package{Name: m.Name, URI: "gcs://" + m.Name, Files: m.Files, lazy: &lazyData{base: base, sha256: m.SHA256, size: m.Size}}
}

// storeCached writes pkg to base.zip and its record to base.json, each
// through a temporary file renamed into place. Errors are ignored: a
// missing entry is packed again next time.
func storeCached(dir, base string, pkg *Package) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	removeStaleTemps(dir)
	sum := sha256.Sum256(pkg.Data)
	meta, err := json.Marshal(cacheMeta{Name: pkg.Name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(pkg.Data)), Files: pkg.Files})
	if err != nil {
		return
	}
	if writeAtomic(dir, base+".zip", pkg.Data) == nil {
		_ = writeAtomic(dir, base+".json", meta)
	}
}

// writeAtomic writes data to a temporary file in dir and renames it to
// name.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// removeStaleTemps removes temporary files older than staleTemp from dir.
func removeStaleTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// packageName is the package name for a zip with SHA-256 sum.
func packageName(sum []byte) string {
	return "_ray_pkg_" + hex.EncodeToString(sum[:8]) + ".zip"
}
