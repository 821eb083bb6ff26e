// Package pack builds the zip package that carries a plugin to a Ray
// cluster: the plugin directory's files, the cross-compiled plugin binary
// and any extra files, uploaded to the Ray dashboard as
// gcs://_ray_pkg_<hex>.zip and unzipped on the node into the job's working
// directory (see the Ray REST API reference, section 11).
//
// Packages are reproducible: the same inputs give byte-identical zips, so
// the package name, derived from the zip's SHA-256, changes only when what
// is shipped changes, and an unchanged plugin need not be uploaded again.
package pack

import (
	"archive/zip"
	"bytes"
	"cmp"
	"compress/flate"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// MaxSize is the largest package the Ray dashboard accepts (its 100 MiB request body limit).
const MaxSize = 100 << 20

// rawFactor bounds the work done on a package that is too large: when the
// files add up to more than rawFactor times the limit before compression,
// Build refuses them without compressing anything.
const rawFactor = 4

// largestCount is how many files a TooLargeError lists.
const largestCount = 5

// DefaultBinaryName is the name of the plugin binary inside a package when
// Options.BinaryName is empty.
const DefaultBinaryName = "plugin"

// Modes of the entries that do not come from the plugin directory.
const (
	binaryMode fs.FileMode = 0o755
	extraMode  fs.FileMode = 0o644
)

// dosEpochDate is 1980-01-01 in MS-DOS date format ((year-1980)<<9 |
// month<<5 | day), the earliest time a zip entry can hold. Every entry gets
// it, with a time of 00:00:00, so that packages do not depend on
// modification times.
const dosEpochDate = 1<<5 | 1

// Options says what goes into a package.
type Options struct {
	Dir        string            // plugin directory: its files go into the package root
	Binary     string            // path of the plugin binary to include (may be outside Dir); empty for none
	BinaryName string            // name of the binary inside the package (default "plugin"); stored with mode 0755
	Extra      map[string][]byte // more files to add at these package paths (e.g. ".synapse_params.json"); mode 0644
	MaxSize    int64             // default MaxSize
	// LimitOf names whose limit MaxSize is, for TooLargeError; default
	// "the Ray dashboard".
	LimitOf string
	// Exclude holds gitignore patterns that apply to the whole tree with
	// the lowest priority: a .gitignore or .synapseignore pattern (such
	// as "!build/") overrides them. PythonExcludes is the Python SDK's.
	Exclude []string
}

// File is one file in a package.
type File struct {
	Path string // slash-separated, relative to the package root
	Size int64  // bytes before compression
}

// Package is a built plugin package, ready to upload.
type Package struct {
	Name  string // "_ray_pkg_<16 lowercase hex>.zip": the first 16 hex digits of the SHA-256 of Data
	URI   string // "gcs://" + Name
	Data  []byte // the zip; nil for a package from Cache.Build until Load
	Files []File // what was packed, sorted by path (Extra files and the binary included); regular files only, not the empty directories Data also holds

	lazy *lazyData // where Load finds Data (a cache hit); nil when Data is set
}

// TooLargeError reports a package over its size limit. Build returns it
// without building the package when the files add up to far more than the
// limit before compression, and after compressing them otherwise.
type TooLargeError struct {
	Size    int64  // size of the zip in bytes, or the files' total size before compression when they were refused uncompressed
	Limit   int64  // the limit in bytes
	Largest []File // the largest files by size before compression, largest first (at most 5)
	// LimitOf names whose limit it is, such as "the Ray dashboard" (the
	// default when empty).
	LimitOf string
}

// Error describes the sizes and names the largest files, e.g. "package
// plugin: 120.4 MiB is over the 100 MiB limit of the Ray dashboard; largest
// files: a.bin (120.0 MiB), b.ckpt (3.2 MiB); exclude files with
// .synapseignore or .gitignore".
func (e *TooLargeError) Error() string {
	var b strings.Builder
	of := e.LimitOf
	if of == "" {
		of = "the Ray dashboard"
	}
	fmt.Fprintf(&b, "package plugin: %s is over the %s limit of %s", formatSize(e.Size), formatLimit(e.Limit), of)
	for i, f := range e.Largest {
		if i == 0 {
			b.WriteString("; largest files: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", f.Path, formatSize(f.Size))
	}
	b.WriteString("; exclude files with .synapseignore or .gitignore")
	return b.String()
}

// ExitCode returns 2: the plugin directory must be changed before trying again.
func (e *TooLargeError) ExitCode() int { return 2 }

// FormatSize prints n bytes for people: "12.3 MiB", "4.0 KiB" or "512 B"
// (MiB with one decimal from 0.1 MiB up).
func FormatSize(n int64) string { return formatSize(n) }

// formatSize prints n bytes in MiB with one decimal, or, below 0.1 MiB, in
// KiB or bytes.
func formatSize(n int64) string {
	switch {
	case n*10 >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// formatLimit prints a limit: a whole number of MiB without decimals.
func formatLimit(n int64) string {
	if n > 0 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return formatSize(n)
}

// openFile opens a file to pack; tests replace it to simulate read errors,
// which permission bits cannot cause for root.
var openFile = os.Open

// entry is one zip entry to write.
type entry struct {
	name string      // zip entry name: the package path, with a trailing slash for a directory
	src  string      // file to copy the content from, if not data
	data []byte      // content of an extra file
	mode fs.FileMode // permission bits, with fs.ModeDir for a directory
	size int64       // size before compression, as seen by the walk
}

func (e *entry) isDir() bool { return e.mode.IsDir() }

// Build packs the plugin. The same inputs always give byte-identical Data (and so the same Name): entries sorted by path, fixed modification times (1980-01-01 00:00:00 UTC), deflate compression, no OS-dependent extra fields.
//
// Build walks Dir and packs its regular files with their permission bits,
// and an entry for each directory left with nothing in it. It leaves out
// .git, .env, .env.* and .synapse at any depth, and whatever the .gitignore
// files (each for its own subtree) and Dir's .synapseignore (for the whole
// tree, taking precedence over .gitignore) exclude; an excluded directory is
// not read. A symbolic link to a regular file inside Dir is packed as a copy
// of that file; other symbolic links and special files are skipped.
//
// The binary and the Extra files are added last: a file of Dir at the same
// package path, and the binary's own file if it lies inside Dir, are not
// packed. An added file whose path clashes with a directory of the package
// (or lies below a file of it) is an error.
//
// Files of 1 MiB or more whose samples do not compress (model weights,
// archives) are stored rather than deflated, which saves time and no space.
//
// A package larger than opts.MaxSize is refused with a *TooLargeError.
// Errors reading Dir or the binary name the file concerned.
func Build(opts Options) (*Package, error) {
	b, err := newBuilder(opts)
	if err != nil {
		return nil, err
	}
	if _, err := b.walk("", nil, b.ign); err != nil {
		return nil, err
	}
	b.addFiles()
	if err := b.finish(); err != nil {
		return nil, err
	}
	return b.write()
}

// builder holds the state of one Build.
type builder struct {
	opts    Options
	root    string          // Dir with symbolic links resolved
	name    string          // binary name inside the package
	max     int64           // size limit
	added   map[string]bool // package paths of the binary and the extra files
	binInfo fs.FileInfo     // the binary's file, or nil
	ign     ignorer         // patterns from .synapseignore
	entries []*entry
}

// newBuilder checks opts and reads what the walk needs.
func newBuilder(opts Options) (*builder, error) {
	b := &builder{opts: opts, name: opts.BinaryName, max: opts.MaxSize, added: map[string]bool{}}
	if opts.Dir == "" {
		return nil, errors.New("package plugin: no plugin directory")
	}
	if b.name == "" {
		b.name = DefaultBinaryName
	}
	if b.max <= 0 {
		b.max = MaxSize
	}
	root, err := filepath.EvalSymlinks(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("package plugin: %w", err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("package plugin: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("package plugin: %s is not a directory", opts.Dir)
	}
	b.root = root

	if opts.Binary != "" {
		if err := checkPath(b.name); err != nil {
			return nil, fmt.Errorf("package plugin: binary name: %w", err)
		}
		info, err := os.Stat(opts.Binary)
		if err != nil {
			return nil, fmt.Errorf("package plugin: binary: %w", err)
		}
		if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("package plugin: binary %s is not a regular file", opts.Binary)
		}
		b.binInfo = info
		b.added[b.name] = true
	}
	for p := range opts.Extra {
		if err := checkPath(p); err != nil {
			return nil, fmt.Errorf("package plugin: extra file: %w", err)
		}
		if b.added[p] {
			return nil, fmt.Errorf("package plugin: extra file %q has the name of the binary", p)
		}
		b.added[p] = true
	}

	syn, err := readPatterns(filepath.Join(root, synapseignoreFile), nil)
	if err != nil {
		return nil, err
	}
	b.ign = newIgnorer(syn)
	if len(opts.Exclude) > 0 {
		b.ign = newIgnorer(nil).withGitignore(parsePatterns([]byte(strings.Join(opts.Exclude, "\n")), nil)).withSynapseignore(syn)
	}
	return b, nil
}

// checkPath reports whether p can name a file added to a package: a
// slash-separated relative path without "." or ".." elements.
func checkPath(p string) error {
	if p == "." || !fs.ValidPath(p) {
		return fmt.Errorf("%q is not a clean slash-separated relative path", p)
	}
	return nil
}

// walk adds the entries for the directory rel (slash-separated, "" for the
// root), whose path components are parts, honouring ign and the .gitignore
// found there. It returns how many entries it added for the directory's
// own files and subdirectories.
func (b *builder) walk(rel string, parts []string, ign ignorer) (int, error) {
	dir := filepath.Join(b.root, filepath.FromSlash(rel))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("package plugin: %w", err)
	}
	for _, e := range ents {
		if t := e.Type(); e.Name() == gitignoreFile && (t.IsRegular() || t&fs.ModeSymlink != 0) {
			ps, err := readPatterns(filepath.Join(dir, gitignoreFile), parts)
			if err != nil {
				return 0, err
			}
			ign = ign.withGitignore(ps)
			break
		}
	}

	n := 0
	for _, e := range ents {
		name := e.Name()
		if alwaysExcluded(name) {
			continue
		}
		p := path.Join(rel, name)
		sub := append(parts[:len(parts):len(parts)], name)
		abs := filepath.Join(dir, name)
		switch t := e.Type(); {
		case t.IsDir():
			if ign.ignored(sub, true) {
				continue
			}
			if b.added[p] {
				return 0, fmt.Errorf("package plugin: added file %q is a directory in %s", p, b.opts.Dir)
			}
			k, err := b.walk(p, sub, ign)
			if err != nil {
				return 0, err
			}
			if k == 0 {
				info, err := e.Info()
				if err != nil {
					return 0, fmt.Errorf("package plugin: %w", err)
				}
				b.entries = append(b.entries, &entry{name: p + "/", mode: fs.ModeDir | info.Mode().Perm()})
			}
			n++
		case t.IsRegular():
			if ign.ignored(sub, false) || b.added[p] {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return 0, fmt.Errorf("package plugin: %w", err)
			}
			if b.isBinary(info) {
				continue
			}
			b.entries = append(b.entries, &entry{name: p, src: abs, mode: info.Mode().Perm(), size: info.Size()})
			n++
		case t&fs.ModeSymlink != 0:
			if ign.ignored(sub, false) || b.added[p] {
				continue
			}
			target, info := b.linkTarget(abs)
			if info == nil || b.isBinary(info) {
				continue
			}
			b.entries = append(b.entries, &entry{name: p, src: target, mode: info.Mode().Perm(), size: info.Size()})
			n++
		}
		// Sockets, named pipes and devices are skipped.
	}
	return n, nil
}

// isBinary reports whether info is the binary's own file.
func (b *builder) isBinary(info fs.FileInfo) bool {
	return b.binInfo != nil && os.SameFile(info, b.binInfo)
}

// linkTarget resolves the symbolic link at abs. It returns the target and
// its FileInfo if the target is a regular file inside the plugin directory
// and not in a place that is always excluded; else info is nil.
func (b *builder) linkTarget(abs string) (target string, info fs.FileInfo) {
	target, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", nil // dangling, a loop, or unreadable: skipped like Ray does
	}
	rel, err := filepath.Rel(b.root, target)
	if err != nil || !filepath.IsLocal(rel) {
		return "", nil
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if alwaysExcluded(part) {
			return "", nil
		}
	}
	info, err = os.Stat(target)
	if err != nil || !info.Mode().IsRegular() {
		return "", nil
	}
	return target, info
}

// addFiles adds the entries of the binary and the extra files.
func (b *builder) addFiles() {
	if b.binInfo != nil {
		b.entries = append(b.entries, &entry{name: b.name, src: b.opts.Binary, mode: binaryMode, size: b.binInfo.Size()})
	}
	for p, data := range b.opts.Extra {
		b.entries = append(b.entries, &entry{name: p, data: data, mode: extraMode, size: int64(len(data))})
	}
}

// finish sorts the entries, drops the directory entries that added files
// made non-empty, rejects paths that are both a file and a directory, and
// refuses far too large packages before anything is compressed.
func (b *builder) finish() error {
	files := map[string]bool{}
	parents := map[string]bool{}
	for _, e := range b.entries {
		if e.isDir() {
			continue
		}
		files[e.name] = true
		for d := path.Dir(e.name); d != "."; d = path.Dir(d) {
			parents[d] = true
		}
	}
	for d := range parents {
		if files[d] {
			return fmt.Errorf("package plugin: %q is both a file and a directory in the package", d)
		}
	}
	b.entries = slices.DeleteFunc(b.entries, func(e *entry) bool {
		return e.isDir() && parents[strings.TrimSuffix(e.name, "/")]
	})
	for _, e := range b.entries {
		if e.isDir() && files[strings.TrimSuffix(e.name, "/")] {
			return fmt.Errorf("package plugin: %q is both a file and a directory in the package", strings.TrimSuffix(e.name, "/"))
		}
	}
	slices.SortFunc(b.entries, func(x, y *entry) int { return strings.Compare(x.name, y.name) })

	var raw int64
	for _, e := range b.entries {
		raw += e.size
	}
	if raw > rawFactor*b.max {
		return &TooLargeError{Size: raw, Limit: b.max, Largest: largest(b.entries), LimitOf: b.opts.LimitOf}
	}
	return nil
}

// largest returns the largest files of entries by size, largest first and
// ties by path.
func largest(entries []*entry) []File {
	var fs []File
	for _, e := range entries {
		if !e.isDir() {
			fs = append(fs, File{Path: e.name, Size: e.size})
		}
	}
	slices.SortStableFunc(fs, func(x, y File) int {
		return cmp.Or(cmp.Compare(y.Size, x.Size), strings.Compare(x.Path, y.Path))
	})
	return fs[:min(len(fs), largestCount)]
}

// write compresses the entries into the zip and names the package.
func (b *builder) write() (*Package, error) {
	out := &limitBuffer{limit: b.max}
	zw := zip.NewWriter(out)
	var files []File
	for _, e := range b.entries {
		n, err := writeEntry(zw, e)
		if err != nil {
			return nil, err
		}
		if !e.isDir() {
			e.size = n
			files = append(files, File{Path: e.name, Size: n})
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("package plugin: %w", err)
	}
	if out.n > b.max {
		return nil, &TooLargeError{Size: out.n, Limit: b.max, Largest: largest(b.entries), LimitOf: b.opts.LimitOf}
	}
	data := out.buf.Bytes()
	sum := sha256.Sum256(data)
	name := packageName(sum[:])
	return &Package{Name: name, URI: "gcs://" + name, Data: data, Files: files}, nil
}

// source is the content of a file entry.
type source interface {
	io.Reader
	io.ReaderAt
}

// writeEntry writes e to zw and returns the length of its content.
func writeEntry(zw *zip.Writer, e *entry) (int64, error) {
	fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
	// Setting the MS-DOS fields rather than Modified keeps the writer from
	// adding an extended timestamp extra field.
	//lint:ignore SA1019 the deprecated fields are the only way to set a time without an extra field
	fh.ModifiedDate, fh.ModifiedTime = dosEpochDate, 0
	fh.SetMode(e.mode)
	if e.isDir() {
		if _, err := zw.CreateHeader(fh); err != nil {
			return 0, fmt.Errorf("package plugin: %s: %w", e.name, err)
		}
		return 0, nil
	}

	var src source
	if e.src == "" {
		src = bytes.NewReader(e.data)
	} else {
		f, err := openFile(e.src)
		if err != nil {
			return 0, fmt.Errorf("package plugin: %w", err)
		}
		defer f.Close()
		src = f
	}
	if e.size >= sampleMin {
		inc, err := incompressible(src, e.size)
		if err != nil {
			return 0, fmt.Errorf("package plugin: %w", err) // a *fs.PathError naming the file
		}
		if inc {
			fh.Method = zip.Store
		}
	}
	w, err := zw.CreateHeader(fh)
	if err != nil {
		return 0, fmt.Errorf("package plugin: %s: %w", e.name, err)
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return 0, fmt.Errorf("package plugin: %w", err) // a *fs.PathError naming the file
	}
	return n, nil
}

// Files of sampleMin bytes or more are stored rather than deflated when
// samples of them do not compress (model weights, archives, media), which
// saves the time of deflating them for nothing. The decision depends on the
// content only, so packages stay reproducible.
const (
	sampleMin   = 1 << 20
	sampleSize  = 64 << 10
	sampleCount = 3    // at the start, the middle and the end
	sampleRatio = 0.97 // compressed/raw at or above which a file is stored
)

// incompressible reports whether deflate saves less than 3% on samples of
// the size bytes of r.
func incompressible(r io.ReaderAt, size int64) (bool, error) {
	buf := make([]byte, sampleSize)
	var cw countWriter
	fw, err := flate.NewWriter(&cw, flate.DefaultCompression)
	if err != nil {
		return false, err
	}
	var raw int64
	for i := range int64(sampleCount) {
		off := (size - sampleSize) * i / (sampleCount - 1)
		n, err := r.ReadAt(buf, max(off, 0))
		if err != nil && err != io.EOF {
			return false, err
		}
		fw.Reset(&cw)
		if _, err := fw.Write(buf[:n]); err != nil {
			return false, err
		}
		if err := fw.Close(); err != nil {
			return false, err
		}
		raw += int64(n)
	}
	return raw > 0 && float64(cw) >= sampleRatio*float64(raw), nil
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// limitBuffer collects what is written to it until more than limit bytes
// have been written; after that it only counts, so that refusing a large
// package does not hold all of it in memory.
type limitBuffer struct {
	buf   bytes.Buffer
	n     int64
	limit int64
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	l.n += int64(len(p))
	if l.n > l.limit {
		if l.buf.Cap() > 0 {
			l.buf = bytes.Buffer{}
		}
		return len(p), nil
	}
	return l.buf.Write(p)
}
