package pack

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cacheFixture is a plugin directory, a binary outside it and a cache.
type cacheFixture struct {
	dir, bin string
	cache    Cache
	key      string // the binary's build key
	extra    map[string][]byte
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	f := &cacheFixture{
		dir: newTree(t, map[string]string{
			"main.go":     "package main\n",
			"config.yaml": "code: p\n",
			"data.txt":    "data\n",
			// The ignore file leaves itself out, so only its effect on
			// what is packed can change the key.
			".synapseignore": ".synapseignore\n*.log\n",
			"sub/a.txt":      "a\n",
		}),
		bin:   filepath.Join(t.TempDir(), "plugin"),
		cache: Cache{Dir: t.TempDir()},
		key:   "k1",
		extra: map[string][]byte{"host.py": []byte("print(1)\n")},
	}
	f.setBinary(t, "binary v1")
	return f
}

func (f *cacheFixture) setBinary(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(f.bin, []byte(strings.Repeat(content, 1000)), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (f *cacheFixture) opts() Options {
	return Options{Dir: f.dir, Binary: f.bin, Extra: f.extra}
}

// build runs the cached build and Load and checks that they give exactly
// what pack.Build gives for the same inputs. cached says whether the entry
// was used without packing again (a hit whose Load did not rebuild).
func (f *cacheFixture) build(t *testing.T) (pkg *Package, cached bool) {
	t.Helper()
	pkg, hit, err := f.cache.Build(f.opts(), f.key)
	if err != nil {
		t.Fatalf("Cache.Build: %v", err)
	}
	if hit != (pkg.Data == nil) {
		t.Fatalf("hit %v with %d bytes of Data before Load", hit, len(pkg.Data))
	}
	rebuilt, err := pkg.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if rebuilt && !hit {
		t.Fatal("Load rebuilt a package that was just packed")
	}
	cached = hit && !rebuilt
	want := build(t, f.opts())
	if pkg.Name != want.Name || pkg.URI != want.URI || !bytes.Equal(pkg.Data, want.Data) || !slices.Equal(pkg.Files, want.Files) {
		t.Fatalf("cached=%v: package %s with %v differs from a fresh pack %s with %v", cached, pkg.Name, pkg.Files, want.Name, want.Files)
	}
	return pkg, cached
}

// entryFiles returns the cache entry's zip and record.
func (f *cacheFixture) entryFiles(t *testing.T) (zipFile, metaFile string) {
	t.Helper()
	zips, _ := filepath.Glob(filepath.Join(f.cache.Dir, "*", "*.zip"))
	if len(zips) != 1 {
		t.Fatalf("cache holds zips %v, want one", zips)
	}
	return zips[0], strings.TrimSuffix(zips[0], ".zip") + ".json"
}

func TestCacheHitAndMiss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *cacheFixture)
		miss   bool
	}{
		{"unchanged", func(t *testing.T, f *cacheFixture) {}, false},
		{"plugin file edited", func(t *testing.T, f *cacheFixture) {
			writeTree(t, f.dir, map[string]string{"main.go": "package main // v2\n"})
		}, true},
		{"plugin file added", func(t *testing.T, f *cacheFixture) { writeTree(t, f.dir, map[string]string{"sub/b.txt": "b\n"}) }, true},
		{"plugin file removed", func(t *testing.T, f *cacheFixture) { os.Remove(filepath.Join(f.dir, "data.txt")) }, true},
		{"ignore rule excludes a packed file", func(t *testing.T, f *cacheFixture) {
			writeTree(t, f.dir, map[string]string{".synapseignore": ".synapseignore\n*.log\ndata.txt\n"})
		}, true},
		{"gitignore rule excludes a packed file", func(t *testing.T, f *cacheFixture) {
			writeTree(t, f.dir, map[string]string{"sub/.gitignore": "a.txt\n.gitignore\n"})
		}, true},
		{"ignore rule that changes nothing packed", func(t *testing.T, f *cacheFixture) {
			writeTree(t, f.dir, map[string]string{".synapseignore": ".synapseignore\n*.log\n*.tmp\n"})
		}, false},
		{"ignored file edited", func(t *testing.T, f *cacheFixture) { writeTree(t, f.dir, map[string]string{"run.log": "x\n"}) }, false},
		{"file mode changed", func(t *testing.T, f *cacheFixture) { os.Chmod(filepath.Join(f.dir, "data.txt"), 0o600) }, true},
		{"build key changed", func(t *testing.T, f *cacheFixture) { f.key = "k2" }, true},
		{"extra file changed", func(t *testing.T, f *cacheFixture) {
			f.extra = map[string][]byte{"host.py": []byte("print(2)\n")}
		}, true},
		{"binary content changed without a build key", func(t *testing.T, f *cacheFixture) {
			f.key = ""
			f.build(t) // stored under the content-keyed entry
			f.setBinary(t, "binary v2")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			if _, cached := f.build(t); cached {
				t.Fatal("first build came from an empty cache")
			}
			if _, cached := f.build(t); !cached {
				t.Fatal("second build of unchanged inputs missed the cache")
			}
			tc.change(t, f)
			if _, cached := f.build(t); cached == tc.miss {
				t.Fatalf("after the change: cached = %v, want %v", cached, !tc.miss)
			}
			if _, cached := f.build(t); !cached {
				t.Fatal("build after the change was not cached")
			}
		})
	}
}

// A damaged cache entry is never returned: it is packed again and replaced.
func TestCacheDamagedEntryRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, zipFile, metaFile string)
	}{
		{"zip truncated", func(t *testing.T, z, m string) { truncate(t, z, 100) }},
		{"zip emptied", func(t *testing.T, z, m string) { truncate(t, z, 0) }},
		// Found by Load's SHA-256 check, not by Cache.Build.
		{"zip edited, same size", func(t *testing.T, z, m string) {
			data, err := os.ReadFile(z)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(z, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"zip missing", func(t *testing.T, z, m string) { remove(t, z) }},
		{"record missing", func(t *testing.T, z, m string) { remove(t, m) }},
		{"record truncated", func(t *testing.T, z, m string) { truncate(t, m, 10) }},
		{"record with another hash", func(t *testing.T, z, m string) {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, []byte(`"sha256":"`)) + len(`"sha256":"`)
			data[i] ^= 1
			if err := os.WriteFile(m, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			f.build(t)
			z, m := f.entryFiles(t)
			tc.damage(t, z, m)
			if _, cached := f.build(t); cached {
				t.Fatal("a damaged entry was used")
			}
			if _, cached := f.build(t); !cached {
				t.Fatal("the damaged entry was not replaced")
			}
		})
	}
}

func truncate(t *testing.T, p string, n int64) {
	t.Helper()
	if err := os.Truncate(p, n); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// Stores leave no temporary file behind and remove old ones a killed
// process left.
func TestCacheWritesAtomically(t *testing.T) {
	f := newCacheFixture(t)
	f.build(t)
	z, m := f.entryFiles(t)
	stale := filepath.Join(filepath.Dir(z), ".tmp-stale")
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := mustStat(t, stale).ModTime().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	remove(t, z) // the next build stores the entry again, in the same directory
	if _, cached := f.build(t); cached {
		t.Fatal("an entry without its zip was used")
	}
	if temps, _ := filepath.Glob(filepath.Join(f.cache.Dir, "*", ".tmp-*")); len(temps) > 0 {
		t.Errorf("temporary files left in the cache: %v", temps)
	}
	mustStat(t, z)
	mustStat(t, m)
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestCacheDisabled(t *testing.T) {
	f := newCacheFixture(t)
	f.cache.Dir = ""
	for range 2 {
		if _, cached := f.build(t); cached {
			t.Fatal("a cache without a directory reported a hit")
		}
	}
}

// BenchmarkCache packs a plugin directory with a real Go binary (this test
// binary, several MiB) without the cache ("cold", what every cluster run
// did before), from a warm cache entry ("warm": walk, key, record and size
// check) and from a warm entry loaded ("warm+load": also reading the zip
// and checking its SHA-256).
func BenchmarkCache(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for name, content := range map[string]string{"main.go": "package main\n", "config.yaml": "code: p\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	opts := Options{Dir: dir, Binary: exe, BinaryName: "plugin"}
	c := Cache{Dir: b.TempDir()}
	if _, _, err := c.Build(opts, "key"); err != nil {
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			pkg, err := Build(opts)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(pkg.Data)))
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, cached, err := c.Build(opts, "key"); err != nil || !cached {
				b.Fatal(err, cached)
			}
		}
	})
	// Load: what a run that must upload the package adds.
	b.Run("warm+load", func(b *testing.B) {
		for b.Loop() {
			pkg, cached, err := c.Build(opts, "key")
			if err != nil || !cached {
				b.Fatal(err, cached)
			}
			if rebuilt, err := pkg.Load(); err != nil || rebuilt {
				b.Fatal(err, rebuilt)
			}
			b.SetBytes(int64(len(pkg.Data)))
		}
	})
}
