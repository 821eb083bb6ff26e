package server

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// Releases keeps release files: the zips in Dir (SHA256.zip) and, unpacked
// once per hash, their contents in WorkDir/SHA256.
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
	if _, err := os.Stat(dir); err == nil {
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
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// unzip extracts zipPath into dir. Entries that would land outside dir
// (absolute paths, ".."), symbolic links and special files are refused.
func unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		name := filepath.FromSlash(f.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q escapes the release directory", f.Name)
		}
		target := filepath.Join(dir, name)
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("entry %q is not a regular file (%s)", f.Name, mode.Type())
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

func extract(f *zip.File, target string, perm os.FileMode) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
