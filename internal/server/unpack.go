package server

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// Releases keeps release files: the zips in Dir (SHA256.zip) and, unpacked
// once per hash, their contents in WorkDir/SHA256, read-only (files 0444,
// or 0555 when the zip marks them executable; directories 0555): every
// job of a release runs from the same files, so no job may change them
// for the next. (The modes do not bind a server run as root.)
type Releases struct {
	Dir, WorkDir string
	mu           sync.Mutex
}

// Unpacked returns the directory holding release rel's files, unpacking
// its zip there first if needed (once per content hash, atomically).
func (p *Releases) Unpacked(rel store.Release) (string, error) {
	if rel.SHA256 == "" {
		return "", fmt.Errorf("release %d has no files", rel.ID)
	}
	dir := filepath.Join(p.WorkDir, rel.SHA256)
	p.mu.Lock()
	defer p.mu.Unlock()
	if fi, err := os.Stat(dir); err == nil {
		if fi.Mode().Perm()&0o200 != 0 { // unpacked by an older synapse
			if err := freeze(dir); err != nil {
				return "", fmt.Errorf("unpack release %d: %w", rel.ID, err)
			}
		}
		return dir, nil
	}
	if err := os.MkdirAll(p.WorkDir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(p.WorkDir, ".unpack-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := unzip(filepath.Join(p.Dir, rel.SHA256+".zip"), tmp); err != nil {
		return "", fmt.Errorf("unpack release %d: %w", rel.ID, err)
	}
	if err := freeze(tmp); err != nil {
		return "", fmt.Errorf("unpack release %d: %w", rel.ID, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		thaw(tmp) // for the deferred removal
		return "", err
	}
	return dir, nil
}

// freeze makes the unpacked files under dir read-only: files 0444 (0555
// when executable), directories 0555, dir included.
func freeze(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := os.FileMode(0o444)
		if fi.Mode().Perm()&0o111 != 0 {
			mode = 0o555
		}
		return os.Chmod(path, mode)
	})
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- { // the deepest first
		err = os.Chmod(dirs[i], 0o555)
	}
	return err
}

// thaw makes the directories under dir writable by their owner again, so
// that dir can be removed.
func thaw(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
}

// stage unpacks a release zip being published (not saved yet) into a new
// directory under WorkDir, for publish's checks; adopt makes it the
// release's unpacked files, and the caller removes it if not adopted.
func (p *Releases) stage(data []byte) (string, error) {
	if err := os.MkdirAll(p.WorkDir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(p.WorkDir, ".publish-*")
	if err != nil {
		return "", err
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err == nil || errors.Is(err, zip.ErrInsecurePath) { // checkZip names the entry
		err = unzipReader(zr, tmp)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack release: %w", err)
	}
	return tmp, nil
}

// adopt moves a staged directory to WorkDir/sum, the release's unpacked
// files, unless that content is unpacked already.
func (p *Releases) adopt(staged, sum string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dir := filepath.Join(p.WorkDir, sum)
	if _, err := os.Stat(dir); err == nil {
		return
	}
	if freeze(staged) != nil {
		thaw(staged)
		return // Unpacked unpacks it at the first run
	}
	if os.Rename(staged, dir) != nil {
		thaw(staged) // for the caller's removal
	}
}

// Limits of a release zip, checked at publish (POST /plugin_releases/)
// and again before unpacking.
const (
	// maxReleaseEntries is the most entries (files and directories) a
	// release zip may hold: a plugin's code and assets, not a data set.
	maxReleaseEntries = 100_000
	// maxReleaseUnpacked is the most bytes a release zip may unpack to, the
	// sum of its entries' declared sizes: a zip bomb (a small zip that
	// unpacks to far more) is refused before anything is written.
	maxReleaseUnpacked = 4 << 30 // 4 GiB
)

// zipLimits are the limits checkZip applies (tests lower them).
type zipLimits struct {
	entries  int
	unpacked uint64
}

var releaseLimits = zipLimits{entries: maxReleaseEntries, unpacked: maxReleaseUnpacked}

// checkZip reports the first reason a release zip cannot be unpacked
// safely, naming the entry: a path that would land outside the release
// directory (absolute, or with ".."), a symbolic link or special file, a
// name used twice or under a file, more than lim.entries entries, or
// declared sizes adding up to more than lim.unpacked bytes. It reads only
// the zip's directory, so it costs nothing at publish; unzip checks the
// actual bytes against the declared sizes as it writes them.
func checkZip(zr *zip.Reader, lim zipLimits) error {
	if n := len(zr.File); n > lim.entries {
		return fmt.Errorf("the zip has %d entries, more than the limit of %d: leave data sets and build outputs out of the release", n, lim.entries)
	}
	isDir := make(map[string]bool, len(zr.File)) // clean name → directory
	var total uint64
	for _, f := range zr.File {
		name := filepath.FromSlash(f.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q escapes the release directory (an absolute path, or one with ..): zip the plugin directory with paths relative to it", f.Name)
		}
		mode := f.Mode()
		if !mode.IsDir() && !mode.IsRegular() {
			return fmt.Errorf("entry %q is %s, not a regular file or directory: a release holds no links or special files; put the file itself in the zip", f.Name, kindOf(mode))
		}
		if f.UncompressedSize64 > lim.unpacked-total {
			return fmt.Errorf("the zip unpacks to more than %s (entry %q, of %d bytes, goes past it): leave large data out of the release and fetch it at run time", bytesText(lim.unpacked), f.Name, f.UncompressedSize64)
		}
		total += f.UncompressedSize64
		clean := filepath.Clean(name)
		if clean == "." && !mode.IsDir() {
			return fmt.Errorf("entry %q is a file without a name: rebuild the zip", f.Name)
		}
		if dir, seen := isDir[clean]; seen && !(dir && mode.IsDir()) {
			return fmt.Errorf("entry %q is in the zip twice: keep one", f.Name)
		}
		isDir[clean] = mode.IsDir()
	}
	for _, f := range zr.File {
		for p := filepath.Dir(filepath.Clean(filepath.FromSlash(f.Name))); p != "."; p = filepath.Dir(p) {
			if dir, seen := isDir[p]; seen && !dir {
				return fmt.Errorf("entry %q is under %q, which is a file in the zip: rename one of them", f.Name, filepath.ToSlash(p))
			}
		}
	}
	return nil
}

// kindOf names a file mode's type for people.
func kindOf(m os.FileMode) string {
	switch t := m.Type(); {
	case t&os.ModeSymlink != 0:
		return "a symbolic link"
	case t&os.ModeNamedPipe != 0:
		return "a named pipe"
	case t&os.ModeSocket != 0:
		return "a socket"
	case t&os.ModeDevice != 0:
		return "a device"
	default:
		return "of type " + t.String()
	}
}

// bytesText is n as GiB or MiB when it is a whole number of them.
func bytesText(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// unzip extracts zipPath into dir after checkZip. No entry gets more bytes
// than its header declares: a zip whose data is longer is refused, so a
// lying header cannot fill the disk.
func unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // checkZip names the entry
		return err
	}
	defer zr.Close()
	return unzipReader(&zr.Reader, dir)
}

// unzipReader is unzip of an open zip.
func unzipReader(zr *zip.Reader, dir string) error {
	if err := checkZip(zr, releaseLimits); err != nil {
		return err
	}
	for _, f := range zr.File {
		target := filepath.Join(dir, filepath.FromSlash(f.Name))
		mode := f.Mode()
		if mode.IsDir() {
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		if err := extract(f, target, mode.Perm()&0o700|0o600); err != nil {
			return err
		}
	}
	return nil
}

// extract writes entry f to target: at most its declared size, and an
// error when the data holds more (or less).
func extract(f *zip.File, target string, perm os.FileMode) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	size := int64(f.UncompressedSize64) // at most maxReleaseUnpacked (checkZip)
	n, err := io.Copy(out, io.LimitReader(rc, size))
	if err != nil {
		err = fmt.Errorf("entry %q: %w", f.Name, err)
	} else if n < size {
		err = fmt.Errorf("entry %q holds %d bytes, fewer than the %d its header declares", f.Name, n, size)
	}
	if err == nil { // the data must end here; reading to its end also checks its CRC-32
		switch m, rerr := io.ReadFull(rc, make([]byte, 1)); {
		case m > 0, errors.Is(rerr, zip.ErrFormat):
			err = fmt.Errorf("entry %q holds more than the %d bytes its header declares", f.Name, size)
		case rerr != io.EOF:
			err = fmt.Errorf("entry %q: %w", f.Name, rerr)
		}
	}
	if err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
