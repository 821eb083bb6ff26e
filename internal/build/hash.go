package build

import (
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxContentHash is the size up to which a file's content is hashed. Larger
// files contribute their path, size and modification time instead.
const maxContentHash = 1 << 20

// skipDir reports whether a directory named name (below a tree's root) is
// left out of the cache key. The go command ignores the same directories
// when it matches packages.
func skipDir(name string) bool {
	return name == "testdata" || name == "node_modules" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// skipFile reports whether a file named name is left out of the cache key.
// Test files never end up in a binary built with go build.
func skipFile(name string) bool {
	return strings.HasSuffix(name, "_test.go")
}

// hashTree writes to h a record of every relevant file below root: its path
// relative to root (slash-separated), its size, and its content (files up to
// maxContentHash) or modification time (larger files). Directories holding
// their own go.mod below root are nested modules, which a build of root's
// module never reads, and are skipped. Symbolic links to regular files are
// followed; symbolic links to directories are not.
//
// keep, if not empty, is the slash-separated path below root of the
// plugin's own package. A plugin kept in a directory that would be skipped
// (testdata, _examples, ...) is still hashed: such a directory is entered,
// but inside it only the path to keep is followed.
func hashTree(h hash.Hash, root, keep string) error {
	return hashDir(h, root, "", keep, false, make([]byte, 0, 64<<10))
}

// hashDir hashes the directory rel below root. restricted means rel is in a
// skipped directory entered only because keep is below it.
func hashDir(h hash.Hash, root, rel, keep string, restricted bool, buf []byte) error {
	if rel == keep {
		restricted = false
	}
	dir := root
	if rel != "" {
		dir = filepath.Join(root, filepath.FromSlash(rel))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if rel != "" {
		for _, e := range entries {
			if e.Name() == "go.mod" && e.Type().IsRegular() {
				return nil
			}
		}
	}
	for _, e := range entries {
		name := e.Name()
		p := path.Join(rel, name)
		switch t := e.Type(); {
		case t.IsDir():
			onPath := keep != "" && (keep == p || strings.HasPrefix(keep, p+"/"))
			skip := skipDir(name)
			if (skip || restricted) && !onPath {
				continue
			}
			if err := hashDir(h, root, p, keep, restricted || skip, buf); err != nil {
				return err
			}
		case t.IsRegular() || t&fs.ModeSymlink != 0:
			if restricted || skipFile(name) {
				continue
			}
			full := filepath.Join(dir, name)
			fi, err := os.Stat(full) // follows a symlink
			if err != nil {
				if t&fs.ModeSymlink != 0 {
					fmt.Fprintf(h, "broken-link %q\n", p)
					continue
				}
				return err
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			if buf, err = hashFile(h, full, p, fi, buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// hashFile writes the record of one file (see hashTree). buf is scratch
// space, returned for reuse.
func hashFile(h hash.Hash, full, rel string, fi fs.FileInfo, buf []byte) ([]byte, error) {
	if fi.Size() > maxContentHash {
		fmt.Fprintf(h, "large %q %d %d\n", rel, fi.Size(), fi.ModTime().UnixNano())
		return buf, nil
	}
	f, err := os.Open(full)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	// Read at most maxContentHash+1 bytes: the file may have grown since
	// the Stat, and the length written must be the length hashed.
	buf = buf[:0]
	for len(buf) <= maxContentHash {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	fmt.Fprintf(h, "file %q %d\n", rel, len(buf))
	h.Write(buf)
	return buf, nil
}

// hashSingleFile writes a record of the file at p (absolute), or of its
// absence, labelled with label.
func hashSingleFile(h hash.Hash, label, p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		fmt.Fprintf(h, "%s %q missing\n", label, p)
		return nil
	}
	if !fi.Mode().IsRegular() {
		fmt.Fprintf(h, "%s %q irregular\n", label, p)
		return nil
	}
	fmt.Fprintf(h, "%s %q\n", label, p)
	_, err = hashFile(h, p, filepath.Base(p), fi, nil)
	return err
}
