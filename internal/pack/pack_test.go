package pack

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeTree creates the files of tree below dir. A key ending in "/" makes
// an (empty) directory; other keys make files with their value as content
// and mode 0644.
func writeTree(t *testing.T, dir string, tree map[string]string) {
	t.Helper()
	for name, content := range tree {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newTree returns a new directory holding tree (see writeTree).
func newTree(t *testing.T, tree map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, tree)
	return dir
}

// build calls Build and fails the test on an error.
func build(t *testing.T, opts Options) *Package {
	t.Helper()
	pkg, err := Build(opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return pkg
}

// entries reads pkg's zip and returns its entries by name.
func entries(t *testing.T, pkg *Package) map[string]*zip.File {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pkg.Data), int64(len(pkg.Data)))
	if err != nil {
		t.Fatalf("reading the package back: %v", err)
	}
	m := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := m[f.Name]; dup {
			t.Errorf("entry %q appears twice", f.Name)
		}
		m[f.Name] = f
	}
	return m
}

// entryNames returns the names of pkg's entries in zip order.
func entryNames(t *testing.T, pkg *Package) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pkg.Data), int64(len(pkg.Data)))
	if err != nil {
		t.Fatalf("reading the package back: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}

// content returns the content of entry name of pkg.
func content(t *testing.T, pkg *Package, name string) string {
	t.Helper()
	f, ok := entries(t, pkg)[name]
	if !ok {
		t.Fatalf("no entry %q; have %q", name, entryNames(t, pkg))
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading entry %q: %v", name, err)
	}
	return string(b)
}

func skipOnWindows(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("file modes and symbolic links are Unix things")
	}
}

var nameRE = regexp.MustCompile(`^_ray_pkg_[0-9a-f]{16}\.zip$`)

func TestNameAndURI(t *testing.T) {
	dir := newTree(t, map[string]string{"main.go": "package main\n"})
	pkg := build(t, Options{Dir: dir})
	if !nameRE.MatchString(pkg.Name) {
		t.Errorf("Name = %q, does not match %s", pkg.Name, nameRE)
	}
	sum := sha256.Sum256(pkg.Data)
	if want := "_ray_pkg_" + hex.EncodeToString(sum[:])[:16] + ".zip"; pkg.Name != want {
		t.Errorf("Name = %q, want %q (from the SHA-256 of Data)", pkg.Name, want)
	}
	if pkg.URI != "gcs://"+pkg.Name {
		t.Errorf("URI = %q, want gcs:// + Name", pkg.URI)
	}
}

func TestDeterministic(t *testing.T) {
	tree := map[string]string{
		"main.go":          "package main\n",
		"config.yaml":      "name: x\n",
		"data/a.txt":       strings.Repeat("abc", 1000),
		"data/deep/b.json": "{}",
		"empty/":           "",
	}
	dir := newTree(t, tree)
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("\x7fELF binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: dir, Binary: bin, Extra: map[string][]byte{".synapse_params.json": []byte(`{"a":1}`), "z/extra.txt": []byte("z")}}

	first := build(t, opts)
	second := build(t, opts)
	if !bytes.Equal(first.Data, second.Data) {
		t.Error("two builds of the same inputs differ")
	}
	if first.Name != second.Name {
		t.Errorf("names differ: %s, %s", first.Name, second.Name)
	}

	// The same tree made again elsewhere, in another order and at another
	// time, gives the same package.
	other := t.TempDir()
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	for _, k := range keys {
		writeTree(t, other, map[string]string{k: tree[k]})
	}
	opts2 := opts
	opts2.Dir = other
	if got := build(t, opts2); got.Name != first.Name {
		t.Errorf("same tree in another directory: Name = %s, want %s", got.Name, first.Name)
	}

	// Modification times do not matter.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"main.go", "data/a.txt", "empty", bin} {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if got := build(t, opts); got.Name != first.Name {
		t.Errorf("after touching files: Name = %s, want %s", got.Name, first.Name)
	}

	// Content does.
	if err := os.WriteFile(filepath.Join(dir, "data", "a.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := build(t, opts)
	if changed.Name == first.Name {
		t.Error("changing a file's content did not change Name")
	}
	// So do the extra files.
	opts.Extra = map[string][]byte{".synapse_params.json": []byte(`{"a":2}`), "z/extra.txt": []byte("z")}
	if got := build(t, opts); got.Name == changed.Name {
		t.Error("changing an extra file did not change Name")
	}
}

func TestEntryHeaders(t *testing.T) {
	dir := newTree(t, map[string]string{
		"main.go":    "package main\n",
		"sub/x.txt":  "x",
		"sub/y/z.go": "package y\n",
		"empty/":     "",
		"b.txt":      "b",
		"a.b/c":      "c",
	})
	pkg := build(t, Options{Dir: dir, Extra: map[string][]byte{"extra.json": []byte("{}")}})
	names := entryNames(t, pkg)
	want := []string{"a.b/c", "b.txt", "empty/", "extra.json", "main.go", "sub/x.txt", "sub/y/z.go"}
	if !slices.Equal(names, want) {
		t.Errorf("entries = %q, want %q", names, want)
	}
	epoch := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range entries(t, pkg) {
		if strings.HasPrefix(f.Name, "/") || strings.HasPrefix(f.Name, "./") || strings.Contains(f.Name, `\`) {
			t.Errorf("entry name %q is not a clean relative slash path", f.Name)
		}
		if !f.Modified.Equal(epoch) {
			t.Errorf("%s: Modified = %v, want %v", f.Name, f.Modified, epoch)
		}
		if len(f.Extra) != 0 {
			t.Errorf("%s: has extra fields %x", f.Name, f.Extra)
		}
		wantMethod := zip.Deflate
		if strings.HasSuffix(f.Name, "/") {
			wantMethod = zip.Store
		}
		if f.Method != wantMethod {
			t.Errorf("%s: Method = %d, want %d", f.Name, f.Method, wantMethod)
		}
	}
	// Deflate does compress.
	big := strings.Repeat("compressible ", 10000)
	writeTree(t, dir, map[string]string{"big.txt": big})
	pkg = build(t, Options{Dir: dir})
	if len(pkg.Data) >= len(big) {
		t.Errorf("package is %d bytes for a %d-byte repetitive file", len(pkg.Data), len(big))
	}
}

// Large files that do not compress are stored; others are deflated.
func TestStoreIncompressible(t *testing.T) {
	text := strings.Repeat("the same words again and again\n", 1<<16) // 2 MB
	dir := newTree(t, map[string]string{"text.txt": text})
	writeRandom(t, filepath.Join(dir, "weights.bin"), 2<<20)
	writeRandom(t, filepath.Join(dir, "small.bin"), 100<<10) // below the size that is sampled
	random := make([]byte, 3<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "random.bin"), random, 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := build(t, Options{Dir: dir, Extra: map[string][]byte{"extra.bin": random}})
	got := entries(t, pkg)
	for name, want := range map[string]uint16{"text.txt": zip.Deflate, "small.bin": zip.Deflate, "weights.bin": zip.Store, "random.bin": zip.Store, "extra.bin": zip.Store} {
		if f := got[name]; f == nil {
			t.Errorf("no entry %s", name)
		} else if f.Method != want {
			t.Errorf("%s: method %d, want %d", name, f.Method, want)
		}
	}
	if c := content(t, pkg, "random.bin"); c != string(random) {
		t.Error("stored file does not read back")
	}
	if c := content(t, pkg, "text.txt"); c != text {
		t.Errorf("deflated file reads back with %d bytes, want %d", len(c), len(text))
	}
	// The samples come from across the file: half zeros, half random
	// data compresses enough to be deflated.
	half := slices.Concat(make([]byte, 2<<20), random[:2<<20])
	if inc, err := incompressible(bytes.NewReader(half), int64(len(half))); err != nil || inc {
		t.Errorf("half zeros, half random: incompressible = %v, %v; want false", inc, err)
	}
	if inc, err := incompressible(bytes.NewReader(random), int64(len(random))); err != nil || !inc {
		t.Errorf("random: incompressible = %v, %v; want true", inc, err)
	}
	if inc, err := incompressible(bytes.NewReader(random[:1000]), 1000); err != nil || !inc {
		t.Errorf("1000 random bytes: incompressible = %v, %v; want true", inc, err)
	}
}

func TestExcludes(t *testing.T) {
	tests := []struct {
		name    string
		tree    map[string]string
		exclude []string // Options.Exclude
		want    []string // entries that must be present
		notWant []string // entries that must be absent
	}{
		{
			name:    ".git directory",
			tree:    map[string]string{"main.go": "", ".git/config": "", ".git/objects/ab/cd": ""},
			want:    []string{"main.go"},
			notWant: []string{".git/config", ".git/objects/ab/cd", ".git/"},
		},
		{
			name:    ".git file and nested .git",
			tree:    map[string]string{".git": "gitdir: ../x", "sub/.git": "gitdir: y", "sub/mod.go": "", "vendor/a/.git/HEAD": "", "vendor/a/a.go": ""},
			want:    []string{"sub/mod.go", "vendor/a/a.go"},
			notWant: []string{".git", "sub/.git", "vendor/a/.git/HEAD"},
		},
		{
			name:    ".env files at any depth",
			tree:    map[string]string{".env": "K=1", ".env.local": "K=2", "sub/.env.production": "K=3", "sub/.env": "K=4", ".envrc": "", "env.go": "", "sub/x.env": ""},
			want:    []string{".envrc", "env.go", "sub/x.env"},
			notWant: []string{".env", ".env.local", "sub/.env.production", "sub/.env"},
		},
		{
			name:    ".env cannot be brought back",
			tree:    map[string]string{".env": "K=1", ".synapseignore": "!.env\n!.git\n", ".git/HEAD": ""},
			want:    []string{".synapseignore"},
			notWant: []string{".env", ".git/HEAD"},
		},
		{
			name:    ".synapse directory",
			tree:    map[string]string{".synapse/build/plugin": "bin", ".synapse/token": "secret", "main.go": ""},
			want:    []string{"main.go"},
			notWant: []string{".synapse/build/plugin", ".synapse/token", ".synapse/"},
		},
		{
			name: "nested .gitignore applies to its subtree only",
			tree: map[string]string{
				"sub/.gitignore": "*.log\n/out/\n",
				"sub/a.log":      "", "sub/deep/b.log": "", "top.log": "", "other/c.log": "",
				"sub/out/o.txt": "", "out/o.txt": "", "sub/deep/out/o.txt": "",
			},
			want:    []string{"sub/.gitignore", "top.log", "other/c.log", "out/o.txt", "sub/deep/out/o.txt"},
			notWant: []string{"sub/a.log", "sub/deep/b.log", "sub/out/o.txt"},
		},
		{
			name:    "root .gitignore with directory pattern",
			tree:    map[string]string{".gitignore": "build/\n# a comment\n\n*.tmp\r\n", "build/x.o": "", "sub/build/y.o": "", "sub/build2": "", "lib/build": "a file, not a directory", "a.tmp": "", "# a comment": ""},
			want:    []string{".gitignore", "sub/build2", "lib/build", "# a comment"},
			notWant: []string{"build/x.o", "sub/build/y.o", "a.tmp"},
		},
		{
			name:    ".gitignore ignoring itself still applies",
			tree:    map[string]string{".gitignore": ".gitignore\n*.bak\n", "a.bak": "", "a.go": ""},
			want:    []string{"a.go"},
			notWant: []string{".gitignore", "a.bak"},
		},
		{
			name:    ".synapseignore with negation",
			tree:    map[string]string{".synapseignore": "*.txt\n!keep.txt\n", "a.txt": "", "keep.txt": "", "sub/b.txt": "", "sub/keep.txt": "", "main.go": ""},
			want:    []string{".synapseignore", "keep.txt", "sub/keep.txt", "main.go"},
			notWant: []string{"a.txt", "sub/b.txt"},
		},
		{
			name:    ".synapseignore applies to the whole tree",
			tree:    map[string]string{".synapseignore": "*_test.go\nREADME.md\n", "a_test.go": "", "x/y/b_test.go": "", "x/README.md": "", "x/y/b.go": ""},
			want:    []string{"x/y/b.go"},
			notWant: []string{"a_test.go", "x/y/b_test.go", "x/README.md"},
		},
		{
			name:    ".synapseignore overrides .gitignore",
			tree:    map[string]string{".gitignore": "*.ckpt\n", "models/.gitignore": "*.bin\n", ".synapseignore": "!model.ckpt\n!models/weights.bin\n", "model.ckpt": "w", "other.ckpt": "w", "models/weights.bin": "w", "models/other.bin": "w"},
			want:    []string{"model.ckpt", "models/weights.bin"},
			notWant: []string{"other.ckpt", "models/other.bin"},
		},
		{
			name:    "deeper .gitignore overrides shallower",
			tree:    map[string]string{".gitignore": "*.dat\n", "a/.gitignore": "!keep.dat\n", "a/keep.dat": "", "a/x.dat": "", "keep.dat": ""},
			want:    []string{"a/keep.dat"},
			notWant: []string{"a/x.dat", "keep.dat"},
		},
		{
			name:    "nothing below an excluded directory comes back",
			tree:    map[string]string{".synapseignore": "data/\n!data/keep.txt\n!keep.txt\n", "data/keep.txt": "", "data/x.txt": ""},
			notWant: []string{"data/keep.txt", "data/x.txt", "data/"},
		},
		{
			name:    "sibling .gitignore does not leak",
			tree:    map[string]string{"a/.gitignore": "*.dat\n", "a/x.dat": "", "b/x.dat": ""},
			want:    []string{"b/x.dat"},
			notWant: []string{"a/x.dat"},
		},
		{
			name:    "ignored directory",
			tree:    map[string]string{".gitignore": "node_modules\n/venv/\n", "node_modules/x/index.js": "", "web/node_modules/y.js": "", "venv/bin/python": "", "app.js": ""},
			want:    []string{"app.js"},
			notWant: []string{"node_modules/x/index.js", "web/node_modules/y.js", "venv/bin/python", "node_modules/", "venv/"},
		},
		{
			name:    "directory left empty by ignores gets an entry",
			tree:    map[string]string{".gitignore": "*.log\n", "logs/a.log": "", "main.go": ""},
			want:    []string{"logs/", "main.go"},
			notWant: []string{"logs/a.log"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg := build(t, Options{Dir: newTree(t, tt.tree)})
			got := entries(t, pkg)
			for _, name := range tt.want {
				if got[name] == nil {
					t.Errorf("missing %q; entries: %q", name, entryNames(t, pkg))
				}
			}
			for _, name := range tt.notWant {
				if got[name] != nil {
					t.Errorf("%q was packed; entries: %q", name, entryNames(t, pkg))
				}
			}
			for _, f := range pkg.Files {
				if got[f.Path] == nil {
					t.Errorf("Files lists %q, which is not in the zip", f.Path)
				}
			}
		})
	}
}

// An excluded directory is not read at all: a broken .gitignore inside it
// (a link to a directory, which cannot be read) makes Build fail only when
// the directory is walked.
func TestIgnoredDirectoryNotWalked(t *testing.T) {
	skipOnWindows(t)
	for _, ignore := range []string{"", "junk/\n"} {
		t.Run(fmt.Sprintf("ignore=%q", ignore), func(t *testing.T) {
			dir := newTree(t, map[string]string{"main.go": "", "junk/x": "", ".synapseignore": ignore})
			if err := os.Symlink(string(filepath.Separator), filepath.Join(dir, "junk", ".gitignore")); err != nil {
				t.Fatal(err)
			}
			_, err := Build(Options{Dir: dir})
			if ignore == "" {
				if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "junk", ".gitignore")) {
					t.Errorf("walking junk/: err = %v, want an error naming junk/.gitignore", err)
				}
			} else if err != nil {
				t.Errorf("junk/ is ignored but was walked: %v", err)
			}
		})
	}
}

func TestModes(t *testing.T) {
	skipOnWindows(t)
	dir := newTree(t, map[string]string{"plain.txt": "p", "run.sh": "#!/bin/sh\n", "private.key": "k", "sub/tool": "t", "empty/": ""})
	for name, mode := range map[string]fs.FileMode{"run.sh": 0o755, "private.key": 0o600, "sub/tool": 0o750} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "plugin-linux-amd64")
	if err := os.WriteFile(bin, []byte("binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := build(t, Options{Dir: dir, Binary: bin, Extra: map[string][]byte{"params.json": []byte("{}")}})
	got := entries(t, pkg)
	for name, want := range map[string]fs.FileMode{
		"plugin":      0o755, // from a 0644 file
		"run.sh":      0o755,
		"plain.txt":   0o644,
		"private.key": 0o600,
		"sub/tool":    0o750,
		"params.json": 0o644,
		"empty/":      fs.ModeDir | 0o755,
	} {
		f := got[name]
		if f == nil {
			t.Errorf("no entry %q", name)
			continue
		}
		if m := f.FileInfo().Mode(); m != want {
			t.Errorf("%s: mode %v, want %v", name, m, want)
		}
		if f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: creator system %d, want 3 (Unix), or the mode is not read", name, f.CreatorVersion>>8)
		}
	}
	if content(t, pkg, "plugin") != "binary" {
		t.Error("plugin entry does not hold the binary")
	}
}

func TestEmptyDirectories(t *testing.T) {
	dir := newTree(t, map[string]string{"empty/": "", "a/b/c/": "", "full/x": "x", "outer/inner/": "", "outer/f": "f"})
	pkg := build(t, Options{Dir: dir})
	got := entries(t, pkg)
	for _, name := range []string{"empty/", "a/b/c/", "outer/inner/"} {
		f := got[name]
		if f == nil {
			t.Errorf("no entry for empty directory %q; entries: %q", name, entryNames(t, pkg))
			continue
		}
		if !f.FileInfo().IsDir() {
			t.Errorf("%s is not a directory entry", name)
		}
	}
	for _, name := range []string{"a/", "a/b/", "full/", "outer/"} {
		if got[name] != nil {
			t.Errorf("non-empty directory %q has an entry", name)
		}
	}
	for _, f := range pkg.Files {
		if strings.HasSuffix(f.Path, "/") {
			t.Errorf("Files lists directory %q", f.Path)
		}
	}
}

func TestFilesList(t *testing.T) {
	dir := newTree(t, map[string]string{"z.txt": "zz", "a/b.txt": "bbb", "a.txt": "a", ".gitignore": "*.o\n", "x.o": "o", "e/": ""})
	bin := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(bin, make([]byte, 1234), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := build(t, Options{Dir: dir, Binary: bin, BinaryName: "bin/run", Extra: map[string][]byte{".synapse_params.json": []byte("{}"), "m/n.txt": nil}})
	want := []File{
		{".gitignore", 4},
		{".synapse_params.json", 2},
		{"a.txt", 1},
		{"a/b.txt", 3},
		{"bin/run", 1234},
		{"m/n.txt", 0},
		{"z.txt", 2},
	}
	if !slices.Equal(pkg.Files, want) {
		t.Errorf("Files =\n%v\nwant\n%v", pkg.Files, want)
	}
	var zipFiles []File
	for _, name := range entryNames(t, pkg) {
		f := entries(t, pkg)[name]
		if !f.FileInfo().IsDir() {
			zipFiles = append(zipFiles, File{name, int64(f.UncompressedSize64)})
		}
	}
	if !slices.Equal(zipFiles, want) {
		t.Errorf("zip files =\n%v\nwant\n%v", zipFiles, want)
	}
}

func TestAddedFiles(t *testing.T) {
	dir := newTree(t, map[string]string{
		"plugin":               "old binary in the directory",
		".synapse_params.json": "stale",
		"config.yaml":          "name: x\n",
		"cmd/main.go":          "package main\n",
	})
	bin := filepath.Join(t.TempDir(), "built")
	if err := os.WriteFile(bin, []byte("new binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := build(t, Options{Dir: dir, Binary: bin, Extra: map[string][]byte{
		".synapse_params.json": []byte(`{"epochs":3}`),
		"meta/run.json":        []byte("run"),
	}})
	for name, want := range map[string]string{
		"plugin":               "new binary",
		".synapse_params.json": `{"epochs":3}`,
		"meta/run.json":        "run",
		"config.yaml":          "name: x\n",
	} {
		if got := content(t, pkg, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	n := 0
	for _, f := range pkg.Files {
		if f.Path == "plugin" || f.Path == ".synapse_params.json" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("Files lists plugin and .synapse_params.json %d times in all, want 2: %v", n, pkg.Files)
	}
}

// The binary's own file is not packed a second time when it lies in Dir.
func TestBinaryInsideDir(t *testing.T) {
	dir := newTree(t, map[string]string{"bin/plugin-linux-amd64": "binary", "main.go": ""})
	pkg := build(t, Options{Dir: dir, Binary: filepath.Join(dir, "bin", "plugin-linux-amd64")})
	got := entries(t, pkg)
	if got["bin/plugin-linux-amd64"] != nil {
		t.Error("the binary was also packed under its own path")
	}
	if content(t, pkg, "plugin") != "binary" {
		t.Error("no binary at plugin")
	}
}

func TestBadOptions(t *testing.T) {
	dir := newTree(t, map[string]string{"main.go": "", "sub/x": ""})
	file := filepath.Join(dir, "main.go")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{}, "no plugin directory"},
		{"missing dir", Options{Dir: filepath.Join(dir, "nope")}, "nope"},
		{"dir is a file", Options{Dir: file}, "not a directory"},
		{"missing binary", Options{Dir: dir, Binary: filepath.Join(dir, "nobin")}, "nobin"},
		{"binary is a directory", Options{Dir: dir, Binary: filepath.Join(dir, "sub")}, "not a regular file"},
		{"bad binary name", Options{Dir: dir, Binary: file, BinaryName: "../plugin"}, `"../plugin"`},
		{"absolute extra", Options{Dir: dir, Extra: map[string][]byte{"/etc/x": nil}}, `"/etc/x"`},
		{"dot extra", Options{Dir: dir, Extra: map[string][]byte{"./x": nil}}, `"./x"`},
		{"empty extra", Options{Dir: dir, Extra: map[string][]byte{"": nil}}, `""`},
		{"extra as binary", Options{Dir: dir, Binary: file, Extra: map[string][]byte{"plugin": nil}}, "name of the binary"},
		{"extra on a directory", Options{Dir: dir, Extra: map[string][]byte{"sub": nil}}, `"sub" is a directory`},
		{"extra below a file", Options{Dir: dir, Extra: map[string][]byte{"main.go/x": nil}}, `"main.go" is both`},
		{"extras clash", Options{Dir: dir, Extra: map[string][]byte{"a": nil, "a/b": nil}}, `"a" is both`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, err := Build(tt.opts)
			if err == nil {
				t.Fatalf("Build succeeded with entries %q", entryNames(t, pkg))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// An extra file may go into an empty directory of Dir, which then needs no
// entry of its own.
func TestExtraInEmptyDirectory(t *testing.T) {
	dir := newTree(t, map[string]string{"out/": ""})
	pkg := build(t, Options{Dir: dir, Extra: map[string][]byte{"out/x": []byte("x")}})
	if names := entryNames(t, pkg); !slices.Equal(names, []string{"out/x"}) {
		t.Errorf("entries = %q, want [out/x]", names)
	}
}

func TestSymlinks(t *testing.T) {
	skipOnWindows(t)
	dir := newTree(t, map[string]string{"data/real.txt": "real content", "data/sub/f": "f", ".env": "SECRET=1", "ignored/x.txt": "ignored", ".gitignore": "ignored/\n"})
	if err := os.Chmod(filepath.Join(dir, "data", "real.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"link.txt":       "data/real.txt",
		"abs.txt":        filepath.Join(dir, "data", "real.txt"),
		"chain.txt":      "link.txt",
		"to-ignored.txt": "ignored/x.txt",
		"outside.txt":    outside,
		"dangling.txt":   "nope",
		"dirlink":        "data/sub",
		"env.txt":        ".env",
		"loop":           "loop",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	pkg := build(t, Options{Dir: dir})
	got := entries(t, pkg)
	for _, name := range []string{"link.txt", "abs.txt", "chain.txt"} {
		if c := content(t, pkg, name); c != "real content" {
			t.Errorf("%s = %q, want the target's content", name, c)
		}
		if m := got[name].FileInfo().Mode(); m != 0o755 {
			t.Errorf("%s: mode %v, want the target's 0755", name, m)
		}
	}
	// A link into an ignored directory ships its target: the link itself
	// was not ignored.
	if c := content(t, pkg, "to-ignored.txt"); c != "ignored" {
		t.Errorf("to-ignored.txt = %q", c)
	}
	for _, name := range []string{"outside.txt", "dangling.txt", "dirlink", "dirlink/", "dirlink/f", "env.txt", "loop"} {
		if got[name] != nil {
			t.Errorf("%s was packed", name)
		}
	}
	// A link is subject to the ignore files like a file.
	writeTree(t, dir, map[string]string{".synapseignore": "link.txt\n"})
	if got := entries(t, build(t, Options{Dir: dir})); got["link.txt"] != nil || got["abs.txt"] == nil {
		t.Error(".synapseignore did not exclude link.txt alone")
	}

	// Dir itself may be a link.
	linkDir := filepath.Join(t.TempDir(), "plugin")
	if err := os.Symlink(dir, linkDir); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, build(t, Options{Dir: linkDir})); got["link.txt"] != nil || got["data/real.txt"] == nil {
		t.Errorf("through a linked Dir: entries %q", slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		}))
	}
}

func TestUnreadable(t *testing.T) {
	dir := newTree(t, map[string]string{"main.go": "", "locked.bin": "x"})
	locked := filepath.Join(dir, "locked.bin")

	t.Run("chmod", func(t *testing.T) {
		skipOnWindows(t)
		if os.Geteuid() == 0 {
			t.Skip("root reads files whatever their mode")
		}
		if err := os.Chmod(locked, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(locked, 0o644)
		_, err := Build(Options{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), locked) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("err = %v, want a permission error naming %s", err, locked)
		}
	})

	t.Run("open fails", func(t *testing.T) {
		defer func(f func(string) (*os.File, error)) { openFile = f }(openFile)
		openFile = func(name string) (*os.File, error) {
			if name == locked {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
			}
			return os.Open(name)
		}
		_, err := Build(Options{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), locked) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("err = %v, want a permission error naming %s", err, locked)
		}
	})

	t.Run("unreadable .gitignore", func(t *testing.T) {
		skipOnWindows(t)
		d := newTree(t, map[string]string{"sub/x": ""})
		gi := filepath.Join(d, "sub", ".gitignore")
		if err := os.Symlink(string(filepath.Separator), gi); err != nil {
			t.Fatal(err)
		}
		_, err := Build(Options{Dir: d})
		if err == nil || !strings.Contains(err.Error(), gi) {
			t.Errorf("err = %v, want an error naming %s", err, gi)
		}
	})
}

// writeRandom writes a file of n random (incompressible) bytes.
func writeRandom(t *testing.T, name string, n int64) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeSparse writes a file of n zero bytes without storing them.
func writeSparse(t *testing.T, name string, n int64) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// tooLarge asserts that err is a *TooLargeError and returns it.
func tooLarge(t *testing.T, err error) *TooLargeError {
	t.Helper()
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v, want a *TooLargeError", err)
	}
	var coder interface{ ExitCode() int }
	if !errors.As(err, &coder) || coder.ExitCode() != 2 {
		t.Errorf("no ExitCode() of 2 on %v", err)
	}
	return tl
}

func TestTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and compresses 101 MiB")
	}
	dir := newTree(t, map[string]string{"main.go": "package main\n", "small.txt": "s"})
	writeRandom(t, filepath.Join(dir, "big.bin"), 101<<20)
	pkg, err := Build(Options{Dir: dir})
	if err == nil {
		t.Fatalf("a package of %d bytes was built", len(pkg.Data))
	}
	tl := tooLarge(t, err)
	if tl.Size <= MaxSize || tl.Size < 101<<20 {
		t.Errorf("Size = %d, want the zip's size, above 101 MiB", tl.Size)
	}
	if tl.Limit != MaxSize {
		t.Errorf("Limit = %d, want %d", tl.Limit, MaxSize)
	}
	if len(tl.Largest) == 0 || tl.Largest[0] != (File{"big.bin", 101 << 20}) {
		t.Errorf("Largest = %v, want big.bin first", tl.Largest)
	}
	msg := err.Error()
	for _, want := range []string{
		"package plugin: 101.0 MiB is over the 100 MiB limit of the Ray dashboard; largest files: big.bin (101.0 MiB), main.go (13 B), small.txt (1 B); exclude files with .synapseignore or .gitignore",
	} {
		if msg != want {
			t.Errorf("message\n%s\nwant\n%s", msg, want)
		}
	}
}

// Files far over the limit are refused before they are compressed: Size is
// then their total, which no zip of them could have.
func TestTooLargeUncompressed(t *testing.T) {
	dir := t.TempDir()
	writeSparse(t, filepath.Join(dir, "zeros.img"), 5<<30)
	start := time.Now()
	_, err := Build(Options{Dir: dir})
	tl := tooLarge(t, err)
	if tl.Size != 5<<30 {
		t.Errorf("Size = %d, want the raw total %d", tl.Size, int64(5<<30))
	}
	if !strings.Contains(err.Error(), "5120.0 MiB is over the 100 MiB limit") || !strings.Contains(err.Error(), "zeros.img (5120.0 MiB)") {
		t.Errorf("message %q", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing took %v: the files were read", d)
	}
}

// The limit is on the zip: a file larger than the limit that compresses
// well is accepted.
func TestLimitIsOnCompressedSize(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 16 MiB")
	}
	dir := t.TempDir()
	writeSparse(t, filepath.Join(dir, "zeros.img"), 16<<20)
	pkg, err := Build(Options{Dir: dir, MaxSize: 8 << 20})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(pkg.Data) > 8<<20 {
		t.Errorf("package is %d bytes", len(pkg.Data))
	}
	if pkg.Files[0] != (File{"zeros.img", 16 << 20}) {
		t.Errorf("Files = %v", pkg.Files)
	}
}

func TestSmallMaxSize(t *testing.T) {
	dir := t.TempDir()
	names := []string{"a.bin", "b.bin", "c.bin", "d.bin", "e.bin", "f.bin"}
	for i, name := range names {
		writeRandom(t, filepath.Join(dir, name), int64(1000+100*i))
	}
	// Within the limit.
	if _, err := Build(Options{Dir: dir, MaxSize: 64 << 10}); err != nil {
		t.Fatalf("Build with a 64 KiB limit: %v", err)
	}
	// Over it, compressed (7.5 KB raw is under 4 times 4000 bytes).
	_, err := Build(Options{Dir: dir, MaxSize: 4000})
	tl := tooLarge(t, err)
	if tl.Limit != 4000 || tl.Size <= 7500 {
		t.Errorf("Size, Limit = %d, %d; want a zip over 7500 bytes, 4000", tl.Size, tl.Limit)
	}
	want := []File{{"f.bin", 1500}, {"e.bin", 1400}, {"d.bin", 1300}, {"c.bin", 1200}, {"b.bin", 1100}}
	if !slices.Equal(tl.Largest, want) {
		t.Errorf("Largest = %v, want %v", tl.Largest, want)
	}
	wantMsg := fmt.Sprintf("package plugin: %s is over the 3.9 KiB limit of the Ray dashboard; largest files: f.bin (1.5 KiB), e.bin (1.4 KiB), d.bin (1.3 KiB), c.bin (1.2 KiB), b.bin (1.1 KiB); exclude files with .synapseignore or .gitignore", formatSize(tl.Size))
	if err.Error() != wantMsg {
		t.Errorf("message\n%s\nwant\n%s", err, wantMsg)
	}
	// Far over it: refused uncompressed, with the raw total, and the
	// limit named as the caller says (a release's, for remote.Publish).
	_, err = Build(Options{Dir: dir, MaxSize: 1000, LimitOf: "a Synapse backend's release"})
	if tl := tooLarge(t, err); tl.Size != 7500 || !strings.HasPrefix(err.Error(), "package plugin: 7.3 KiB is over the 1000 B limit of a Synapse backend's release; largest files: f.bin") {
		t.Errorf("Size = %d, want the raw total 7500; message %q", tl.Size, err)
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		n         int64
		size, lim string
	}{
		{0, "0 B", "0 B"},
		{1023, "1023 B", "1023 B"},
		{1024, "1.0 KiB", "1.0 KiB"},
		{104857, "102.4 KiB", "102.4 KiB"},
		{104858, "0.1 MiB", "0.1 MiB"},
		{100 << 20, "100.0 MiB", "100 MiB"},
		{120<<20 + 1<<19, "120.5 MiB", "120.5 MiB"},
	} {
		if got := formatSize(tt.n); got != tt.size {
			t.Errorf("formatSize(%d) = %q, want %q", tt.n, got, tt.size)
		}
		if got := formatLimit(tt.n); got != tt.lim {
			t.Errorf("formatLimit(%d) = %q, want %q", tt.n, got, tt.lim)
		}
	}
}

// extract unpacks pkg into dir the way Ray's unzip_package does in the
// versions that keep modes: each file with the mode stored in the zip.
func extract(t *testing.T, pkg *Package, dir string) {
	t.Helper()
	for _, f := range entries(t, pkg) {
		if !filepath.IsLocal(f.Name) {
			t.Fatalf("entry %q would be extracted outside the directory", f.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(p, f.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, f.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, rc); err != nil {
			t.Fatalf("extracting %s: %v", f.Name, err)
		}
		rc.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// The package, unzipped, runs: the binary (built from a 0644 copy) is
// executable and finds the plugin's files and the extra files in its
// working directory.
func TestExtractAndRun(t *testing.T) {
	skipOnWindows(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build a test binary")
	}
	src := newTree(t, map[string]string{
		"go.mod": "module hello\n\ngo 1.21\n",
		"main.go": `package main

import (
	"fmt"
	"os"
)

func main() {
	for _, name := range os.Args[1:] {
		b, err := os.ReadFile(name)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("%s=%s\n", name, b)
	}
}
`,
	})
	bin := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Chmod(bin, 0o644); err != nil { // as a copy from a cache might be
		t.Fatal(err)
	}

	dir := newTree(t, map[string]string{"config.yaml": "name: hello\n", "data/msg.txt": "hi", ".env": "SECRET=1"})
	pkg := build(t, Options{Dir: dir, Binary: bin, BinaryName: "bin/hello", Extra: map[string][]byte{".synapse_params.json": []byte(`{"n":1}`)}})

	work := filepath.Join(t.TempDir(), strings.TrimSuffix(pkg.Name, ".zip"))
	extract(t, pkg, work)
	exe := filepath.Join(work, "bin", "hello")
	info, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o111 != 0o111 {
		t.Fatalf("extracted binary has mode %v, not executable", info.Mode())
	}
	if _, err := os.Stat(filepath.Join(work, ".env")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".env was extracted (stat: %v)", err)
	}
	run := exec.Command("./bin/hello", "data/msg.txt", ".synapse_params.json", "config.yaml")
	run.Dir = work
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("running the extracted binary: %v\n%s", err, out)
	}
	want := "data/msg.txt=hi\n.synapse_params.json={\"n\":1}\nconfig.yaml=name: hello\n\n"
	if string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
	for _, f := range pkg.Files {
		if path.Base(f.Path) == ".env" {
			t.Errorf("Files lists %s", f.Path)
		}
	}
}
