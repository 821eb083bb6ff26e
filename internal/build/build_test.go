package build

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- helpers ----

// writeFiles writes files (slash-separated paths relative to root).
func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mainGo(msg string) string {
	return fmt.Sprintf("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(%q) }\n", msg)
}

const goMod = "module example.com/p\n\ngo 1.22\n"

// newPlugin creates a module example.com/p in <tmp>/hello whose main
// package prints msg, and returns its directory.
func newPlugin(t testing.TB, msg string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hello")
	writeFiles(t, dir, map[string]string{
		"go.mod":  goMod,
		"main.go": mainGo(msg),
	})
	return dir
}

// run runs the binary at bin and returns its trimmed standard output.
func run(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return strings.TrimSpace(string(out))
}

func mustBuild(t *testing.T, opts Options) *Result {
	t.Helper()
	res, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return res
}

func mustKey(t testing.TB, opts Options) string {
	t.Helper()
	k, err := Key(opts)
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	return k
}

// tempEntries returns the names of leftover temporary build directories in
// the directory of bin.
func tempEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// ---- builds ----

func TestBuildCachesAndRebuildsOnChange(t *testing.T) {
	dir := newPlugin(t, "hello v1")
	opts := Options{Dir: dir, CacheDir: t.TempDir()}

	cold := mustBuild(t, opts)
	if cold.Cached {
		t.Fatal("first build reported Cached")
	}
	if want := filepath.Join(opts.CacheDir, cold.Key[:2], cold.Key, "hello"); cold.Binary != want {
		t.Fatalf("Binary = %s, want %s", cold.Binary, want)
	}
	if len(cold.Key) != 64 {
		t.Fatalf("Key %q is not a hex SHA-256", cold.Key)
	}
	if k := mustKey(t, opts); k != cold.Key {
		t.Fatalf("Key() = %s, Build used %s", k, cold.Key)
	}
	if got := run(t, cold.Binary); got != "hello v1" {
		t.Fatalf("binary printed %q", got)
	}
	if left := tempEntries(t, filepath.Dir(cold.Binary)); len(left) > 0 {
		t.Fatalf("temporary files left in cache: %v", left)
	}
	fi1, err := os.Stat(cold.Binary)
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(20 * time.Millisecond) // a rebuild would get a later mtime
	warm := mustBuild(t, opts)
	if !warm.Cached || warm.Binary != cold.Binary || warm.Key != cold.Key {
		t.Fatalf("second build = %+v, want Cached with %s", warm, cold.Binary)
	}
	fi2, err := os.Stat(warm.Binary)
	if err != nil {
		t.Fatal(err)
	}
	if !fi2.ModTime().Equal(fi1.ModTime()) {
		t.Fatalf("binary rewritten on cache hit: mtime %v -> %v", fi1.ModTime(), fi2.ModTime())
	}

	writeFiles(t, dir, map[string]string{"main.go": mainGo("hello v2")})
	if k := mustKey(t, opts); k == cold.Key {
		t.Fatal("editing main.go did not change the key")
	}
	re := mustBuild(t, opts)
	if re.Cached || re.Binary == cold.Binary {
		t.Fatalf("after edit: %+v, want a fresh build at a new path", re)
	}
	if got := run(t, re.Binary); got != "hello v2" {
		t.Fatalf("rebuilt binary printed %q", got)
	}
}

// writeGoWrapper writes a shell script that logs each invocation to log and
// runs the real go command.
func writeGoWrapper(t *testing.T) (wrapper, log string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs a shell script as the go command")
	}
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrapper = filepath.Join(dir, "go")
	log = filepath.Join(dir, "log")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> '%s'\nexec '%s' \"$@\"\n", log, realGo)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, log
}

func invocations(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// A cache hit must start no process and be fast, for a module of ~100
// files.
func TestCacheHitStartsNoProcessAndIsFast(t *testing.T) {
	wrapper, log := writeGoWrapper(t)
	dir := newPlugin(t, "hi")
	files := map[string]string{}
	for i := range 99 {
		files[fmt.Sprintf("assets/a%02d/f%d.txt", i%10, i)] = strings.Repeat(fmt.Sprintf("line %d\n", i), 200)
	}
	writeFiles(t, dir, files)
	opts := Options{Dir: dir, CacheDir: t.TempDir(), Go: wrapper}

	mustBuild(t, opts)
	calls := invocations(t, log)
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "build ") {
		t.Fatalf("cold build ran the go command %d times: %q, want one go build", len(calls), calls)
	}

	start := time.Now()
	res := mustBuild(t, opts)
	wall := time.Since(start)
	if !res.Cached {
		t.Fatal("second build not cached")
	}
	if calls := invocations(t, log); len(calls) != 1 {
		t.Fatalf("cache hit ran the go command: %q", calls[1:])
	}
	// Generous: the real figure is a few milliseconds (see BenchmarkKey).
	if wall > 500*time.Millisecond || res.Duration > 500*time.Millisecond {
		t.Fatalf("cache hit took %v (Duration %v), want well under a second", wall, res.Duration)
	}
	if res.Duration <= 0 || res.Duration > wall {
		t.Fatalf("Duration %v not within wall time %v", res.Duration, wall)
	}
	t.Logf("cache hit: %v", res.Duration)
}

func TestCompileError(t *testing.T) {
	dir := newPlugin(t, "x")
	writeFiles(t, dir, map[string]string{
		"main.go": "package main\n\nfunc main() {\n\tprintln(nope)\n}\n",
	})
	opts := Options{Dir: dir, CacheDir: t.TempDir()}
	res, err := Build(context.Background(), opts)
	if err == nil {
		t.Fatalf("Build succeeded: %+v", res)
	}
	var be *Error
	if !errors.As(err, &be) {
		t.Fatalf("error %T %v is not *Error", err, err)
	}
	if !strings.Contains(be.Output, "main.go:4:") || !strings.Contains(be.Output, "undefined: nope") {
		t.Fatalf("Output lacks the compiler message:\n%s", be.Output)
	}
	if be.ExitCode() != 1 {
		t.Fatalf("ExitCode = %d", be.ExitCode())
	}
	if be.Dir != dir {
		t.Fatalf("Dir = %q, want %q", be.Dir, dir)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "build plugin: "+dir+": ") || !strings.Contains(msg, "main.go:4:") || !strings.Contains(msg, "undefined: nope") {
		t.Fatalf("Error() = %q", msg)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Unwrap does not reach the *exec.ExitError: %v", be.Err)
	}
	key := mustKey(t, opts)
	keyDir := filepath.Join(opts.CacheDir, key[:2], key)
	if _, err := os.Stat(filepath.Join(keyDir, "hello")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed build left a binary in the cache (stat: %v)", err)
	}
	if left := tempEntries(t, keyDir); len(left) > 0 {
		t.Fatalf("temporary files left in cache: %v", left)
	}
}

func TestCrossCompileARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the runtime for linux/arm64")
	}
	dir := newPlugin(t, "arm")
	res := mustBuild(t, Options{Dir: dir, CacheDir: t.TempDir(), GOOS: "linux", GOARCH: "arm64"})
	f, err := elf.Open(res.Binary)
	if err != nil {
		t.Fatalf("not an ELF file: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Fatalf("machine = %v, want EM_AARCH64", f.Machine)
	}
}

func TestDebugBuild(t *testing.T) {
	dir := newPlugin(t, "dbg")
	opts := Options{Dir: dir, CacheDir: t.TempDir()}
	plain := mustKey(t, opts)
	opts.Debug = true
	res := mustBuild(t, opts)
	if res.Key == plain {
		t.Fatal("Debug did not change the key")
	}
	if got := run(t, res.Binary); got != "dbg" {
		t.Fatalf("debug binary printed %q", got)
	}
}

// A trimmed build has no symbol table, no DWARF and no absolute path of
// the plugin directory, and is smaller; it still runs.
func TestTrimBuild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads ELF sections")
	}
	dir := newPlugin(t, "trim")
	cache := t.TempDir()
	plain := mustBuild(t, Options{Dir: dir, CacheDir: cache})
	trimmed := mustBuild(t, Options{Dir: dir, CacheDir: cache, Trim: true})
	if trimmed.Key == plain.Key {
		t.Fatal("Trim did not change the key")
	}
	if got := run(t, trimmed.Binary); got != "trim" {
		t.Fatalf("trimmed binary printed %q", got)
	}
	for _, tc := range []struct {
		res      *Result
		symbols  bool
		localDir bool
	}{{plain, true, true}, {trimmed, false, false}} {
		f, err := elf.Open(tc.res.Binary)
		if err != nil {
			t.Fatal(err)
		}
		_, symErr := f.Symbols()
		hasDWARF := f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil
		f.Close()
		if (symErr == nil) != tc.symbols || hasDWARF != tc.symbols {
			t.Errorf("%s: symbol table %v, DWARF %v; want both %v", tc.res.Binary, symErr == nil, hasDWARF, tc.symbols)
		}
		data, err := os.ReadFile(tc.res.Binary)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(data, []byte(dir)); got != tc.localDir {
			t.Errorf("%s: holds the plugin directory %s = %v, want %v", tc.res.Binary, dir, got, tc.localDir)
		}
	}
	ps, _ := os.Stat(plain.Binary)
	ts, _ := os.Stat(trimmed.Binary)
	if ts.Size() >= ps.Size() {
		t.Errorf("trimmed binary %d bytes, plain %d: not smaller", ts.Size(), ps.Size())
	}
}

// A plugin that is a package inside an enclosing module.
func TestPackageInEnclosingModule(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"go.mod":                    "module example.com/m\n\ngo 1.22\n",
		"internal/greet/greet.go":   "package greet\n\nfunc Hello() string { return \"greet v1\" }\n",
		"plugins/hello/main.go":     "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/m/internal/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n",
		"plugins/hello/config.yaml": "name: hello\n",
	})
	dir := filepath.Join(root, "plugins", "hello")
	gotRoot, mod, err := ModuleRoot(dir)
	if err != nil || gotRoot != root || mod != "example.com/m" {
		t.Fatalf("ModuleRoot = %q, %q, %v; want %q, example.com/m", gotRoot, mod, err, root)
	}
	opts := Options{Dir: dir, CacheDir: t.TempDir()}
	res := mustBuild(t, opts)
	if filepath.Base(res.Binary) != "hello" {
		t.Fatalf("binary name %q, want hello", filepath.Base(res.Binary))
	}
	if got := run(t, res.Binary); got != "greet v1" {
		t.Fatalf("binary printed %q", got)
	}
	// A change elsewhere in the module (a package the plugin imports).
	writeFiles(t, root, map[string]string{
		"internal/greet/greet.go": "package greet\n\nfunc Hello() string { return \"greet v2\" }\n",
	})
	res2 := mustBuild(t, opts)
	if res2.Cached || res2.Key == res.Key {
		t.Fatal("change to an imported package of the module did not rebuild")
	}
	if got := run(t, res2.Binary); got != "greet v2" {
		t.Fatalf("rebuilt binary printed %q", got)
	}
}

// A plugin kept where the walk would skip it (testdata, _dir) is still
// hashed; its neighbours there are not.
func TestKeyPluginUnderSkippedDirectory(t *testing.T) {
	for _, sub := range []string{"testdata/plugins/hello", "_examples/hello", ".hidden/hello"} {
		t.Run(sub, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{
				"go.mod":                 "module example.com/m\n\ngo 1.22\n",
				sub + "/main.go":         mainGo("v1"),
				sub + "/../other/x.go":   "package other\n",
				sub + "/deeper/d.go":     "package deeper\n",
				sub + "/testdata/in.txt": "in",
			})
			opts := Options{Dir: filepath.Join(root, filepath.FromSlash(sub)), CacheDir: t.TempDir()}
			k1 := mustKey(t, opts)
			writeFiles(t, root, map[string]string{sub + "/../other/x.go": "package other // changed\n", sub + "/testdata/in.txt": "changed"})
			if mustKey(t, opts) != k1 {
				t.Fatal("change beside the plugin in a skipped directory changed the key")
			}
			writeFiles(t, root, map[string]string{sub + "/main.go": mainGo("v2")})
			k2 := mustKey(t, opts)
			if k2 == k1 {
				t.Fatal("editing the plugin's main.go did not change the key")
			}
			writeFiles(t, root, map[string]string{sub + "/deeper/d.go": "package deeper // changed\n"})
			if mustKey(t, opts) == k2 {
				t.Fatal("editing a package below the plugin did not change the key")
			}
		})
	}
}

// A local replace target is part of the key, in both go.mod forms.
func TestLocalReplaceTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace string
		build   bool
	}{
		{"line", "replace example.com/lib => ../lib\n", true},
		{"versioned", "replace example.com/lib v0.0.0 => ../lib // local\n", false},
		{"block", "replace (\n\texample.com/other => example.com/fork v1.0.0\n\texample.com/lib => \"../lib\"\n)\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			writeFiles(t, base, map[string]string{
				"lib/go.mod":  "module example.com/lib\n\ngo 1.22\n",
				"lib/lib.go":  "package lib\n\nconst Msg = \"lib v1\"\n",
				"plug/go.mod": goMod + "\nrequire example.com/lib v0.0.0\n\n" + tc.replace,
				"plug/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n)\n\n" +
					"func main() { fmt.Println(lib.Msg) }\n",
			})
			opts := Options{Dir: filepath.Join(base, "plug"), CacheDir: t.TempDir()}
			k1 := mustKey(t, opts)
			if tc.build {
				if got := run(t, mustBuild(t, opts).Binary); got != "lib v1" {
					t.Fatalf("binary printed %q", got)
				}
			}
			writeFiles(t, base, map[string]string{"lib/lib.go": "package lib\n\nconst Msg = \"lib v2\"\n"})
			k2 := mustKey(t, opts)
			if k1 == k2 {
				t.Fatal("change in the replace target did not change the key")
			}
			if tc.build {
				res := mustBuild(t, opts)
				if res.Cached {
					t.Fatal("not rebuilt")
				}
				if got := run(t, res.Binary); got != "lib v2" {
					t.Fatalf("rebuilt binary printed %q", got)
				}
			}
		})
	}
}

func TestConcurrentBuilds(t *testing.T) {
	dir := newPlugin(t, "together")
	opts := Options{Dir: dir, CacheDir: t.TempDir()}
	const n = 4
	var wg sync.WaitGroup
	results := make([]*Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = Build(context.Background(), opts)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("build %d: %v", i, errs[i])
		}
		if results[i].Binary != results[0].Binary {
			t.Fatalf("build %d returned %s, build 0 %s", i, results[i].Binary, results[0].Binary)
		}
	}
	if got := run(t, results[0].Binary); got != "together" {
		t.Fatalf("binary printed %q", got)
	}
	if left := tempEntries(t, filepath.Dir(results[0].Binary)); len(left) > 0 {
		t.Fatalf("temporary files left in cache: %v", left)
	}
}

func TestCancel(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		dir := newPlugin(t, "never")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := Build(ctx, Options{Dir: dir, CacheDir: t.TempDir()})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Build = %+v, %v; want context.Canceled", res, err)
		}
		var be *Error
		if !errors.As(err, &be) || be.ExitCode() != 1 {
			t.Fatalf("error %T is not *Error", err)
		}
	})
	t.Run("during", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a build with an empty GOCACHE")
		}
		dir := newPlugin(t, "never")
		// An empty GOCACHE makes the build compile the runtime: seconds.
		opts := Options{Dir: dir, CacheDir: t.TempDir(), Env: []string{"GOCACHE=" + t.TempDir()}}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		start := time.Now()
		res, err := Build(ctx, opts)
		elapsed := time.Since(start)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Build = %+v, %v; want context.Canceled", res, err)
		}
		if elapsed > 5*time.Second {
			t.Fatalf("Build returned %v after start; cancellation did not stop it", elapsed)
		}
		var be *Error
		if !errors.As(err, &be) {
			t.Fatalf("error %T is not *Error", err)
		}
		if !strings.Contains(err.Error(), "context canceled") {
			t.Fatalf("Error() = %q", err.Error())
		}
		key := mustKey(t, opts)
		keyDir := filepath.Join(opts.CacheDir, key[:2], key)
		if _, err := os.Stat(filepath.Join(keyDir, "hello")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cancelled build left a binary (stat: %v)", err)
		}
		if left := tempEntries(t, keyDir); len(left) > 0 {
			t.Fatalf("temporary files left in cache: %v", left)
		}
	})
}

// ---- SDKDir ----

const fakeSDK = "package synapse\n\nfunc Version() string { return %q }\n"

// newSDK writes a stand-in for the SDK module (no dependencies, so builds
// need no network).
func newSDK(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sdk")
	writeFiles(t, dir, map[string]string{
		"go.mod":     "module " + SDKModule + "\n\ngo 1.22\n",
		"synapse.go": fmt.Sprintf(fakeSDK, version),
	})
	return dir
}

const sdkMain = "package main\n\nimport (\n\t\"fmt\"\n\n\tsynapse \"github.com/synapse-sdk/synapse-go\"\n)\n\nfunc main() { fmt.Println(synapse.Version()) }\n"

func TestSDKDirOtherModule(t *testing.T) {
	sdk := newSDK(t, "sdk v1")
	dir := filepath.Join(t.TempDir(), "plug")
	// The plugin requires a version that does not exist anywhere and
	// replaces it with a directory that does not exist: only SDKDir can
	// make this build.
	pluginMod := goMod + "\nrequire " + SDKModule + " v0.9.0\n\nreplace " + SDKModule + " => ../nowhere\n"
	writeFiles(t, dir, map[string]string{"go.mod": pluginMod, "main.go": sdkMain})
	opts := Options{Dir: dir, CacheDir: t.TempDir(), SDKDir: sdk, Env: []string{"GOPROXY=off"}}

	without := mustKey(t, Options{Dir: dir, CacheDir: opts.CacheDir, Env: opts.Env})
	res := mustBuild(t, opts)
	if res.Key == without {
		t.Fatal("SDKDir did not change the key")
	}
	if got := run(t, res.Binary); got != "sdk v1" {
		t.Fatalf("binary printed %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || string(data) != pluginMod {
		t.Fatalf("plugin go.mod modified: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("plugin go.sum created (stat: %v)", err)
	}

	writeFiles(t, sdk, map[string]string{"synapse.go": fmt.Sprintf(fakeSDK, "sdk v2")})
	res2 := mustBuild(t, opts)
	if res2.Cached || res2.Key == res.Key {
		t.Fatal("change in SDKDir did not rebuild")
	}
	if got := run(t, res2.Binary); got != "sdk v2" {
		t.Fatalf("binary printed %q", got)
	}
}

func TestSDKDirSameModule(t *testing.T) {
	sdk := newSDK(t, "in-tree")
	writeFiles(t, sdk, map[string]string{"examples/demo/main.go": sdkMain})
	dir := filepath.Join(sdk, "examples", "demo")
	opts := Options{Dir: dir, CacheDir: t.TempDir()}
	plain := mustKey(t, opts)
	opts.SDKDir = filepath.Join(sdk, "examples") // any directory of the checkout
	res := mustBuild(t, opts)
	if res.Key != plain {
		t.Fatal("SDKDir of the plugin's own module changed the key (it should change nothing)")
	}
	if got := run(t, res.Binary); got != "in-tree" {
		t.Fatalf("binary printed %q", got)
	}
}

func TestSDKDirWrongModule(t *testing.T) {
	dir := newPlugin(t, "x")
	other := newPlugin(t, "y") // module example.com/p
	_, err := Key(Options{Dir: dir, CacheDir: t.TempDir(), SDKDir: other})
	if err == nil || !strings.Contains(err.Error(), SDKModule) {
		t.Fatalf("Key with a non-SDK SDKDir: %v", err)
	}
}

// ---- the key ----

func TestKeyFileChanges(t *testing.T) {
	large := strings.Repeat("x", maxContentHash+1)
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, dir string)
		changes bool
	}{
		{"edit main.go", write("main.go", mainGo("other")), true},
		{"add a .go file", write("util.go", "package main\n"), true},
		{"add a file in a subpackage", write("sub/pkg/pkg.go", "package pkg\n"), true},
		{"edit go.mod", write("go.mod", goMod+"\n// comment\n"), true},
		{"add an embeddable file", write("static/index.html", "<p>hi</p>"), true},
		{"rename a file", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "data.txt"), filepath.Join(dir, "data2.txt")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"touch a large file", func(t *testing.T, dir string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "big.bin"), later, later); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"grow a large file", write("big.bin", large+"y"), true},

		{"edit a _test.go file", write("main_test.go", "package main\n\n// changed\n"), false},
		{"add a _test.go file", write("new_test.go", "package main\n"), false},
		{"edit testdata", write("testdata/in.txt", "changed"), false},
		{"add nested testdata", write("sub/testdata/x.go", "package x\n"), false},
		{"add under a dot directory", write(".git/HEAD", "ref"), false},
		{"add under an underscore directory", write("_scratch/x.go", "package x\n"), false},
		{"add under node_modules", write("node_modules/x/index.js", "1"), false},
		{"add a nested module", write("tools/go.mod", "module example.com/tools\n"), false},
		{"edit a nested module", write("nested/x.go", "package nested // changed\n"), false},
		{"touch a small file", func(t *testing.T, dir string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "main.go"), later, later); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"rewrite a small file identically", write("main.go", mainGo("hello")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPlugin(t, "hello")
			writeFiles(t, dir, map[string]string{
				"main_test.go":    "package main\n",
				"testdata/in.txt": "in",
				"data.txt":        "data",
				"big.bin":         large,
				"nested/go.mod":   "module example.com/nested\n",
				"nested/x.go":     "package nested\n",
			})
			opts := Options{Dir: dir, CacheDir: t.TempDir()}
			before := mustKey(t, opts)
			tc.change(t, dir)
			after := mustKey(t, opts)
			if changed := after != before; changed != tc.changes {
				t.Fatalf("key changed = %v, want %v", changed, tc.changes)
			}
		})
	}
}

func write(name, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		writeFiles(t, dir, map[string]string{name: content})
	}
}

func TestKeyOptions(t *testing.T) {
	t.Setenv("CGO_ENABLED", "")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOEXPERIMENT", "")
	t.Setenv("GOAMD64", "")
	t.Setenv("GOARM64", "")
	dir := newPlugin(t, "opts")
	sdk := newSDK(t, "v")
	base := Options{Dir: dir, CacheDir: t.TempDir()}
	baseKey := mustKey(t, base)

	otherOS := "linux"
	if runtime.GOOS == "linux" {
		otherOS = "darwin"
	}
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	copyGo := func(t *testing.T) string {
		realGo, err := exec.LookPath("go")
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(realGo)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), filepath.Base(realGo))
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}

	for _, tc := range []struct {
		name    string
		mod     func(t *testing.T, o *Options)
		changes bool
	}{
		{"Debug", func(t *testing.T, o *Options) { o.Debug = true }, true},
		{"Trim", func(t *testing.T, o *Options) { o.Trim = true }, true},
		{"GOOS", func(t *testing.T, o *Options) { o.GOOS = otherOS }, true},
		{"GOARCH", func(t *testing.T, o *Options) { o.GOARCH = otherArch }, true},
		{"Static", func(t *testing.T, o *Options) { o.Static = true }, true},
		{"SDKDir", func(t *testing.T, o *Options) { o.SDKDir = sdk }, true},
		{"Env", func(t *testing.T, o *Options) { o.Env = []string{"GOFLAGS=-tags=x"} }, true},
		{"another go command", func(t *testing.T, o *Options) { o.Go = copyGo(t) }, true},
		{"GOFLAGS", func(t *testing.T, o *Options) { t.Setenv("GOFLAGS", "-tags=x") }, true},
		{"GOEXPERIMENT", func(t *testing.T, o *Options) { t.Setenv("GOEXPERIMENT", "nosynctest") }, true},
		{"GOAMD64", func(t *testing.T, o *Options) { t.Setenv("GOAMD64", "v3") }, true},
		{"GOARM64", func(t *testing.T, o *Options) { t.Setenv("GOARM64", "v9.0") }, true},
		{"CGO_ENABLED", func(t *testing.T, o *Options) { t.Setenv("CGO_ENABLED", "0") }, true},

		{"host GOOS/GOARCH spelled out", func(t *testing.T, o *Options) { o.GOOS, o.GOARCH = runtime.GOOS, runtime.GOARCH }, false},
		{"CacheDir", func(t *testing.T, o *Options) { o.CacheDir = t.TempDir() }, false},
		{"relative Dir", func(t *testing.T, o *Options) {
			t.Chdir(filepath.Dir(dir))
			o.Dir = "hello"
		}, false},
		{"unrelated environment", func(t *testing.T, o *Options) { t.Setenv("SOME_OTHER_VAR", "1") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(t, &o)
			k := mustKey(t, o)
			if changed := k != baseKey; changed != tc.changes {
				t.Fatalf("key changed = %v, want %v", changed, tc.changes)
			}
		})
	}
}

func TestCacheDirDefault(t *testing.T) {
	dir := newPlugin(t, "x")
	for _, tc := range []struct {
		name, env, opt, want string
	}{
		{"option", "/env/cache", "/opt/cache", "/opt/cache"},
		{"env", "/env/cache", "", "/env/cache"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SYNAPSE_CACHE_DIR", filepath.FromSlash(tc.env))
			p, err := resolve(Options{Dir: dir, CacheDir: filepath.FromSlash(tc.opt)})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := filepath.Abs(filepath.FromSlash(tc.want))
			if p.cacheDir != want {
				t.Fatalf("cache dir = %q, want %q", p.cacheDir, want)
			}
		})
	}
	t.Run("user cache", func(t *testing.T) {
		t.Setenv("SYNAPSE_CACHE_DIR", "")
		uc, err := os.UserCacheDir()
		if err != nil {
			t.Skip(err)
		}
		p, err := resolve(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(uc, "synapse-go", "plugins"); p.cacheDir != want {
			t.Fatalf("cache dir = %q, want %q", p.cacheDir, want)
		}
	})
}

// The key of this repository's own example: a package inside the SDK
// module, so SDKDir pointing at the checkout changes nothing.
func TestKeyRepositoryExample(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "train")
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	root, mod, err := ModuleRoot(dir)
	if err != nil || mod != SDKModule {
		t.Fatalf("ModuleRoot = %q, %q, %v", root, mod, err)
	}
	opts := Options{Dir: dir, CacheDir: t.TempDir()}
	k1 := mustKey(t, opts)
	opts.SDKDir = filepath.Join("..", "..")
	if k2 := mustKey(t, opts); k2 != k1 {
		t.Fatal("SDKDir of the same module changed the key")
	}
	p, err := resolve(opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.pkg != "./examples/train" || p.name != "train" {
		t.Fatalf("package %q, name %q", p.pkg, p.name)
	}
}

// ---- ModuleRoot and go.mod parsing ----

func TestModuleRoot(t *testing.T) {
	base := t.TempDir()
	writeFiles(t, base, map[string]string{
		"a/go.mod":           "// header\nmodule example.com/a // trailing\n\ngo 1.22\n",
		"a/x/y/keep":         "",
		"b/go.mod":           "module \"example.com/quoted\"\n",
		"c/go.mod":           "go 1.22\n",
		"a/x/inner/go.mod":   "module (\n\texample.com/inner\n)\n",
		"a/x/inner/sub/keep": "",
	})
	for _, tc := range []struct {
		dir, root, module string
		wantErr           bool
	}{
		{"a", "a", "example.com/a", false},
		{"a/x/y", "a", "example.com/a", false},
		{"b", "b", "example.com/quoted", false},
		{"a/x/inner/sub", "a/x/inner", "example.com/inner", false},
		{"c", "", "", true},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			root, mod, err := ModuleRoot(filepath.Join(base, filepath.FromSlash(tc.dir)))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if want := filepath.Join(base, filepath.FromSlash(tc.root)); root != want || mod != tc.module {
				t.Fatalf("ModuleRoot = %q, %q; want %q, %q", root, mod, want, tc.module)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		// The temp directory is normally not inside a module; if it
		// is, there is nothing to test.
		if _, _, err := ModuleRoot(os.TempDir()); err == nil {
			t.Skip("temp directory is inside a module")
		}
		if _, _, err := ModuleRoot(filepath.Join(base, "nowhere")); err == nil {
			t.Fatal("no error for a directory outside any module")
		}
	})
}

func TestReplaces(t *testing.T) {
	gomod := `module example.com/p // comment => x

go 1.22

require (
	example.com/a v1.0.0 // => not a replace
)

replace example.com/a => ../a
replace example.com/b v1.2.3 => ./b // comment
replace example.com/c => example.com/c2 v1.0.0
replace (
	example.com/d => /abs/d
	example.com/e v1.0.0 => "../with space"
	example.com/f => example.com/f2 v0.1.0
)
replace example.com/g => .
`
	got := replaces(parseGoMod("go.mod", []byte(gomod)).Replace)
	want := []replaceDirective{
		{"example.com/a", "../a"},
		{"example.com/b", "./b"},
		{"example.com/c", ""},
		{"example.com/d", "/abs/d"},
		{"example.com/e", "../with space"},
		{"example.com/f", ""},
		{"example.com/g", "."},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replaces =\n%v\nwant\n%v", got, want)
	}
}

func TestSDKModFile(t *testing.T) {
	in := "module example.com/p\n\nrequire " + SDKModule + " v0.9.0\n\nreplace " + SDKModule + " => ../old\n" +
		"replace (\n\t" + SDKModule + " v0.9.0 => ../older\n\texample.com/x => ../x\n)\n"
	b, err := sdkModFile([]byte(in), SDKModule, "/new sdk")
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	rs := replaces(parseGoMod("go.mod", b).Replace)
	var sdk, other []string
	for _, r := range rs {
		if r.module == SDKModule {
			sdk = append(sdk, r.local)
		} else {
			other = append(other, r.local)
		}
	}
	if len(sdk) != 1 || sdk[0] != "/new sdk" {
		t.Fatalf("SDK replacements %q in\n%s", sdk, out)
	}
	if len(other) != 1 || other[0] != "../x" {
		t.Fatalf("other replacements %q in\n%s", other, out)
	}
	if !strings.Contains(out, "require "+SDKModule+" v0.9.0") {
		t.Fatalf("require lost:\n%s", out)
	}
}

func TestErrorMessage(t *testing.T) {
	exitErr := errors.New("exit status 1")
	for _, tc := range []struct {
		name string
		err  *Error
		want string
	}{
		{"one message", &Error{Dir: "/p", Output: "# example.com/p\n./main.go:4:10: undefined: nope\n", Err: exitErr},
			"build plugin: /p: ./main.go:4:10: undefined: nope"},
		{"several", &Error{Dir: "/p", Output: "# example.com/p\n./a.go:1:1: x\n./b.go:2:2: y\n./c.go:3:3: z\n", Err: exitErr},
			"build plugin: /p: ./a.go:1:1: x (and 2 more lines)"},
		{"two", &Error{Dir: "/p", Output: "a\nb\n", Err: exitErr}, "build plugin: /p: a (and 1 more line)"},
		{"no output", &Error{Dir: "/p", Err: exitErr}, "build plugin: /p: exit status 1"},
		{"cancelled", &Error{Dir: "/p", Output: "noise", Err: fmt.Errorf("%w (signal: killed)", context.Canceled)},
			"build plugin: /p: context canceled (signal: killed)"},
		{"nothing", &Error{Dir: "/p"}, "build plugin: /p: failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("Error() = %q, want %q", got, tc.want)
			}
			if tc.err.ExitCode() != 1 {
				t.Fatal("ExitCode != 1")
			}
			if !errors.Is(tc.err, tc.err.Err) && tc.err.Err != nil {
				t.Fatal("Unwrap")
			}
		})
	}
}

// ---- benchmark ----

// BenchmarkKey measures the warm path's work for a module of 100 files.
func BenchmarkKey(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "bench")
	files := map[string]string{"go.mod": goMod, "main.go": mainGo("bench")}
	var src bytes.Buffer
	for i := range 99 {
		src.Reset()
		fmt.Fprintf(&src, "package pkg%d\n\n", i/10)
		for j := range 60 {
			fmt.Fprintf(&src, "func F%d_%d() int { return %d }\n", i, j, i*j)
		}
		files[fmt.Sprintf("internal/pkg%d/f%d.go", i/10, i)] = src.String()
	}
	writeFiles(b, dir, files)
	opts := Options{Dir: dir, CacheDir: b.TempDir()}
	for b.Loop() {
		if _, err := Key(opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildCached is the cache hit of Build: the key of the plugin of
// BenchmarkKey plus the check of the cached binary (planted, so no go
// build runs).
func BenchmarkBuildCached(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "bench")
	files := map[string]string{"go.mod": goMod, "main.go": mainGo("bench")}
	for i := range 99 {
		files[fmt.Sprintf("internal/pkg%d/f%d.go", i/10, i)] = fmt.Sprintf("package pkg%d\n\nfunc F%d() int { return %d }\n", i/10, i, i)
	}
	writeFiles(b, dir, files)
	opts := Options{Dir: dir, CacheDir: b.TempDir()}
	key, err := Key(opts)
	if err != nil {
		b.Fatal(err)
	}
	writeFiles(b, filepath.Join(opts.CacheDir, key[:2], key), map[string]string{"bench": "binary"})
	for b.Loop() {
		if res, err := Build(b.Context(), opts); err != nil || !res.Cached {
			b.Fatal(err, res)
		}
	}
}

// TestRemoveStaleTemps: what a killed build left in the cache is removed
// by the next build, in any key's directory; a running build's is kept.
func TestRemoveStaleTemps(t *testing.T) {
	cache := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string) string {
		d := filepath.Join(cache, "ab", "abcdef", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	gone := mk(fmt.Sprintf(".tmp-%d-123", dead.Process.Pid))
	mine := mk(fmt.Sprintf(".tmp-%d-456", os.Getpid()))
	legacy := mk(".tmp-789") // no PID: from an older version
	removeStaleTemps(cache)
	for d, keep := range map[string]bool{gone: false, mine: true, legacy: false} {
		if _, err := os.Stat(d); (err == nil) != keep {
			t.Errorf("%s: kept %v, want %v", filepath.Base(d), err == nil, keep)
		}
	}
}
