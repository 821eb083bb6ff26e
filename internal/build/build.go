// Package build compiles plugin binaries with the Go toolchain into a
// per-user cache, keyed by everything that can change the binary, so that an
// unchanged plugin is never rebuilt.
//
// A plugin is a directory holding a Go main package. It may be the root of
// its own module or a package inside an enclosing module. The cache key
// covers the source tree of the module (and of local replace targets, the
// SDK checkout in use and any go.work modules), the go command, the target
// platform and the build-affecting environment. Computing it reads files
// only: a cache hit starts no process.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

// SDKModule is the module path of the SDK that Options.SDKDir points at.
const SDKModule = "github.com/synapse-sdk/synapse-go"

// formatVersion is hashed into every key. Change it whenever the layout of
// the cache or the way binaries are built changes.
const formatVersion = "synapse-go/internal/build v1"

// keyEnv lists the environment variables hashed into the key: those that
// change what go build produces. GOOS, GOARCH and CGO_ENABLED are hashed
// separately.
var keyEnv = []string{
	"GOFLAGS", "GOEXPERIMENT", "GOFIPS140",
	"GOAMD64", "GOARM64", "GOARM", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64", "GOWASM",
	"GOROOT", "GOTOOLCHAIN", "GOWORK",
	// Only matter when cgo is enabled; cheap to include always.
	"CC", "CXX", "AR", "PKG_CONFIG", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_FFLAGS", "CGO_LDFLAGS",
}

// Options says which plugin to build and how.
type Options struct {
	// Dir is the plugin directory, holding the main package. It may be
	// relative; empty means the current directory.
	Dir string
	// CacheDir is the root of the binary cache. Empty means the value of
	// the environment variable SYNAPSE_CACHE_DIR if set, or else
	// filepath.Join(os.UserCacheDir(), "synapse-go", "plugins").
	CacheDir string
	// GOOS and GOARCH select the target platform; empty means the host's
	// (runtime.GOOS, runtime.GOARCH). When either differs from the host
	// the build is a cross-compilation and runs with CGO_ENABLED=0.
	GOOS, GOARCH string
	// Static builds with CGO_ENABLED=0 even for the host, giving a
	// self-contained binary.
	Static bool
	// Debug builds for Delve: optimisations and inlining off
	// (-gcflags=all=-N -l).
	Debug bool
	// Trim builds a smaller binary to ship to a cluster: -trimpath (file
	// paths in stack traces are module-relative, e.g.
	// "example.com/plugin@v1.2.0/main.go", instead of absolute paths on
	// this machine) and -ldflags=-s -w (no symbol table, no DWARF: stack
	// traces keep function names and lines, but delve, gdb and nm cannot
	// read the binary). It is part of the cache key. An -ldflags in
	// GOFLAGS is overridden by it.
	Trim bool
	// SDKDir, when non-empty, is a checkout of module
	// github.com/synapse-sdk/synapse-go to build against instead of the
	// version the plugin's go.mod requires. When the plugin is in a
	// different module, the build uses a temporary copy of its go.mod and
	// go.sum (-modfile) with a replace directive pointing at SDKDir; the
	// plugin's own files are never modified.
	SDKDir string
	// Go is the go command; empty means exec.LookPath("go").
	Go string
	// Env is extra environment for go build, appended to os.Environ() and
	// the GOOS/GOARCH/CGO_ENABLED settings derived from the other fields
	// (so it can override them). It is part of the cache key.
	Env []string
}

// Result describes the binary Build returned.
type Result struct {
	// Binary is the absolute path of the plugin binary in the cache.
	Binary string
	// Cached is true when the binary was already in the cache and no
	// build ran.
	Cached bool
	// Key is the hex-encoded cache key.
	Key string
	// CacheDir is the absolute root of the cache the binary is in
	// (Options.CacheDir resolved); other caches keyed by Key, such as
	// the cluster package cache of internal/pack, live below it.
	CacheDir string
	// Duration is the time spent in Build.
	Duration time.Duration
}

// Error is a failed build. It is returned for failures of the go command
// itself (compile errors, missing dependencies, a cancelled context); the
// CLI maps it to exit code 1.
type Error struct {
	// Dir is the absolute plugin directory.
	Dir string
	// Output is what the go command printed (standard output and standard
	// error combined), verbatim: compiler messages are "file:line:col: msg"
	// with file relative to the module root.
	Output string
	// Err is the underlying error: the go command's exit status, or the
	// context's error when the build was cancelled.
	Err error
}

// Error returns "build plugin: <dir>: <first message>", where the first
// message is the first line of Output that is not a "# package" header,
// followed by a count of further lines, or Err when there is no output or
// the build was cancelled.
func (e *Error) Error() string {
	msg := ""
	if e.Err == nil || !(errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)) {
		msg = summarize(e.Output)
	}
	if msg == "" {
		if e.Err != nil {
			msg = e.Err.Error()
		} else {
			msg = "failed"
		}
	}
	return "build plugin: " + e.Dir + ": " + msg
}

// summarize returns the first line of out that is not blank or a "# pkg"
// header, plus the number of further such lines.
func summarize(out string) string {
	var first string
	more := 0
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "# ") {
			continue
		}
		if first == "" {
			first = strings.TrimSpace(l)
		} else {
			more++
		}
	}
	switch more {
	case 0:
		return first
	case 1:
		return first + " (and 1 more line)"
	default:
		return fmt.Sprintf("%s (and %d more lines)", first, more)
	}
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns 1, the process exit code for a failed plugin build.
func (e *Error) ExitCode() int { return 1 }

// plan is the resolved form of Options shared by Key and Build.
type plan struct {
	dir      string // absolute plugin directory
	root     string // absolute module root
	module   string // module path
	pkg      string // package argument for go build: "." or "./rel"
	goBin    string // absolute path of the go command
	env      []string
	goos     string // effective GOOS
	cacheDir string // absolute
	name     string // binary file name
	debug    bool
	trim     bool
	sdkRoot  string // non-empty: build with a -modfile replacing SDKModule by sdkRoot
	opts     Options
}

// resolve fills in defaults and derives everything Key and Build need. It
// starts no process.
func resolve(opts Options) (*plan, error) {
	p := &plan{debug: opts.Debug, trim: opts.Trim, opts: opts}
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	var err error
	if p.dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(p.dir); err != nil {
		return nil, fmt.Errorf("build plugin: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("build plugin: %s: not a directory", p.dir)
	}
	if p.root, p.module, err = ModuleRoot(p.dir); err != nil {
		return nil, fmt.Errorf("build plugin: %w", err)
	}
	rel, err := filepath.Rel(p.root, p.dir)
	if err != nil {
		return nil, err
	}
	p.pkg = "."
	if rel != "." {
		p.pkg = "./" + filepath.ToSlash(rel)
	}

	goCmd := opts.Go
	if goCmd == "" {
		goCmd = "go"
	}
	lp, err := exec.LookPath(goCmd)
	if err != nil {
		return nil, fmt.Errorf("build plugin: go command: %w", err)
	}
	if p.goBin, err = filepath.Abs(lp); err != nil {
		return nil, err
	}

	goos, goarch := opts.GOOS, opts.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	env := append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch)
	if opts.Static || goos != runtime.GOOS || goarch != runtime.GOARCH {
		env = append(env, "CGO_ENABLED=0")
	}
	env = append(env, opts.Env...)

	if opts.SDKDir != "" {
		sdkRoot, sdkMod, err := ModuleRoot(opts.SDKDir)
		if err != nil {
			return nil, fmt.Errorf("build plugin: SDK: %w", err)
		}
		if sdkMod != SDKModule {
			return nil, fmt.Errorf("build plugin: SDK: %s is module %s, not %s", sdkRoot, sdkMod, SDKModule)
		}
		if !sameDir(sdkRoot, p.root) {
			p.sdkRoot = sdkRoot
			// -modfile cannot be used in workspace mode.
			env = append(env, "GOWORK=off")
		}
	}
	p.env = env
	p.goos = lookupEnv(env, "GOOS")

	if p.cacheDir = opts.CacheDir; p.cacheDir == "" {
		if p.cacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if p.cacheDir, err = filepath.Abs(p.cacheDir); err != nil {
		return nil, err
	}

	p.name = filepath.Base(p.dir)
	if p.name == "." || p.name == string(filepath.Separator) || p.name == "" || strings.HasSuffix(p.name, ":") {
		p.name = path.Base(p.module)
	}
	if p.goos == "windows" && !strings.HasSuffix(strings.ToLower(p.name), ".exe") {
		p.name += ".exe"
	}
	return p, nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// lookupEnv returns the value of key in env; the last setting wins, as in
// os/exec.
func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		k, v, ok := strings.Cut(env[i], "=")
		if !ok {
			continue
		}
		if k == key || (runtime.GOOS == "windows" && strings.EqualFold(k, key)) {
			return v
		}
	}
	return ""
}

// DefaultCacheDir is the cache root when Options.CacheDir is empty:
// $SYNAPSE_CACHE_DIR if set, or else the user cache directory's
// synapse-go/plugins.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("SYNAPSE_CACHE_DIR"); d != "" {
		return d, nil
	}
	uc, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("build plugin: cache directory: %w", err)
	}
	return filepath.Join(uc, "synapse-go", "plugins"), nil
}

// Key computes the cache key for opts without building: the hex SHA-256 of
// every input that can change the binary. It reads files only and starts no
// process.
func Key(opts Options) (string, error) {
	p, err := resolve(opts)
	if err != nil {
		return "", err
	}
	return p.key()
}

func (p *plan) key() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format %q\n", formatVersion)
	fmt.Fprintf(h, "package %q\n", p.pkg)

	// The go command. Its version is not asked for (that would start a
	// process); path, size and modification time identify it.
	fmt.Fprintf(h, "go %q\n", p.goBin)
	real, err := filepath.EvalSymlinks(p.goBin)
	if err != nil {
		return "", fmt.Errorf("build plugin: go command: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("build plugin: go command: %w", err)
	}
	fmt.Fprintf(h, "go-file %q %d %d\n", real, fi.Size(), fi.ModTime().UnixNano())

	// Target and flags.
	cgo := lookupEnv(p.env, "CGO_ENABLED")
	fmt.Fprintf(h, "GOOS %q\nGOARCH %q\nCGO_ENABLED %q\n", p.goos, lookupEnv(p.env, "GOARCH"), cgo)
	fmt.Fprintf(h, "debug %t\n", p.debug)
	fmt.Fprintf(h, "trim %t\n", p.trim)
	for _, k := range keyEnv {
		fmt.Fprintf(h, "env %s %q\n", k, lookupEnv(p.env, k))
	}
	for _, kv := range p.opts.Env {
		fmt.Fprintf(h, "extra-env %q\n", kv)
	}
	// Settings made with "go env -w".
	if goenv := lookupEnv(p.env, "GOENV"); goenv != "off" {
		if goenv == "" {
			if cfg, err := os.UserConfigDir(); err == nil {
				goenv = filepath.Join(cfg, "go", "env")
			}
		}
		if goenv != "" {
			if err := hashSingleFile(h, "goenv", goenv); err != nil {
				return "", err
			}
		}
	}

	// Source trees. The binary embeds absolute source paths (no -trimpath),
	// so each tree's location is part of the key as well as its content.
	seen := map[string]bool{}
	tree := func(label, dir, keep string) error {
		dir = filepath.Clean(dir)
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		fmt.Fprintf(h, "tree %s %q\n", label, dir)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			// Not there (yet): the go command will say so if it matters.
			fmt.Fprintf(h, "missing\n")
			return nil
		}
		if err := hashTree(h, dir, keep); err != nil {
			return fmt.Errorf("build plugin: hash %s: %w", dir, err)
		}
		return nil
	}
	keep := "" // the plugin's directory below the module root
	if p.pkg != "." {
		keep = strings.TrimPrefix(p.pkg, "./")
	}
	if err := tree("module", p.root, keep); err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(p.root, "go.mod"))
	if err != nil {
		return "", err
	}
	var modReplaces []replaceDirective
	if f := parseGoMod("go.mod", gomod); f != nil {
		modReplaces = replaces(f.Replace)
	}
	for _, r := range modReplaces {
		if r.local == "" || (p.sdkRoot != "" && r.module == SDKModule) {
			continue
		}
		if err := tree("replace", resolveRel(p.root, r.local), ""); err != nil {
			return "", err
		}
	}
	if p.sdkRoot != "" {
		fmt.Fprintf(h, "sdk-modfile\n")
		if err := tree("sdk", p.sdkRoot, ""); err != nil {
			return "", err
		}
	}
	if work := p.goWork(); work != "" {
		if err := hashSingleFile(h, "go.work", work); err != nil {
			return "", err
		}
		if err := hashSingleFile(h, "go.work.sum", work+".sum"); err != nil {
			return "", err
		}
		if data, err := os.ReadFile(work); err == nil {
			wf, _ := modfile.ParseWork(work, data, nil)
			if wf == nil {
				wf = &modfile.WorkFile{} // the go command reports what is wrong with it
			}
			wdir := filepath.Dir(work)
			for _, u := range wf.Use {
				if err := tree("use", resolveRel(wdir, u.Path), ""); err != nil {
					return "", err
				}
			}
			for _, r := range replaces(wf.Replace) {
				if r.local != "" {
					if err := tree("replace", resolveRel(wdir, r.local), ""); err != nil {
						return "", err
					}
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// resolveRel resolves a file path from a go.mod or go.work relative to dir.
func resolveRel(dir, p string) string {
	p = filepath.FromSlash(p)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// goWork returns the go.work file the go command would use when run in the
// module root, or "" for none: the GOWORK setting if it names a file, else
// the first go.work found walking up from the module root.
func (p *plan) goWork() string {
	switch w := lookupEnv(p.env, "GOWORK"); w {
	case "off":
		return ""
	case "":
	default:
		return resolveRel(p.root, w)
	}
	for d := p.root; ; {
		f := filepath.Join(d, "go.work")
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			return f
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// Build returns the plugin binary for opts, building it only when no binary
// for the same inputs is cached. A cache hit reads files only and starts no
// process.
//
// The binary is built into a temporary directory next to its final place
// and renamed into place, so a binary in the cache is always complete and
// concurrent builds of the same plugin are safe. A hit sets the binary's
// modification time to now when it is over an hour old
// (cachedir.UseResolution): that is the entry's last use, by which
// Cache.Prune removes it. A failure of the go command is returned as
// *Error; cancelling ctx stops the build.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	p, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	key, err := p.key()
	if err != nil {
		return nil, err
	}
	keyDir := filepath.Join(p.cacheDir, key[:2], key)
	bin := filepath.Join(keyDir, p.name)
	res := &Result{Binary: bin, Key: key, CacheDir: p.cacheDir}
	// A hit records its use (once an hour at most); a binary a prune
	// removed since the Stat is a miss.
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && cachedir.Used(bin, fi.ModTime()) {
		res.Cached = true
		res.Duration = time.Since(start)
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Dir: p.dir, Err: err}
	}
	removeStaleTemps(p.cacheDir)
	tmp, err := makeTemp(keyDir)
	if err != nil {
		return nil, fmt.Errorf("build plugin: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := p.run(ctx, tmp, filepath.Join(tmp, p.name)); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(tmp, p.name), bin); err != nil {
		// A concurrent build may have put the same binary in place (on
		// Windows a rename onto it fails while it runs): that is success.
		if fi, serr := os.Stat(bin); serr != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("build plugin: %w", err)
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// makeTemp creates keyDir (when missing) and a temporary build directory
// in it, .tmp-<pid>-<random>. It tries again when keyDir vanishes in
// between (a concurrent prune took the empty directory).
func makeTemp(keyDir string) (string, error) {
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(keyDir, 0o755); err != nil {
			return "", err
		}
		tmp, err := os.MkdirTemp(keyDir, fmt.Sprintf(".tmp-%d-", os.Getpid()))
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 2 {
			return tmp, err
		}
	}
}

// removeStaleTemps removes the temporary build directories anywhere in the
// cache that a build left behind: those of a process that is gone (a build
// killed mid-way), and any older than a day (staleBuildTemp). Temporary
// directories are named .tmp-<pid>-<random>.
func removeStaleTemps(cacheDir string) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "*", "*", ".tmp-*"))
	for _, d := range dirs {
		if staleBuildTemp(d) {
			_ = os.RemoveAll(d)
		}
	}
}

// run runs go build, writing the binary to out. tmp is a scratch directory.
func (p *plan) run(ctx context.Context, tmp, out string) error {
	args := []string{"build"}
	if p.debug {
		args = append(args, "-gcflags=all=-N -l")
	}
	if p.trim {
		args = append(args, "-trimpath", "-ldflags=-s -w")
	}
	if p.sdkRoot != "" {
		modfile, err := p.writeModFile(tmp)
		if err != nil {
			return fmt.Errorf("build plugin: %w", err)
		}
		// -mod=mod lets the go command update the temporary go.mod and
		// go.sum when the SDK checkout needs newer dependencies.
		args = append(args, "-modfile="+modfile, "-mod=mod")
	}
	args = append(args, "-o", out, p.pkg)

	cmd := exec.CommandContext(ctx, p.goBin, args...)
	cmd.Dir = p.root
	cmd.Env = p.env
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	setCancel(cmd)
	// Do not wait long for output pipes held open by stray children.
	cmd.WaitDelay = 3 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return &Error{Dir: p.dir, Output: buf.String(), Err: err}
}

// writeModFile writes into dir the go.mod and go.sum for an SDKDir build:
// copies of the plugin's, with SDKModule replaced by p.sdkRoot and the SDK's
// go.sum lines added. It returns the path of the go.mod.
func (p *plan) writeModFile(dir string) (string, error) {
	gomod, err := os.ReadFile(filepath.Join(p.root, "go.mod"))
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "modfile")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	content, err := sdkModFile(gomod, SDKModule, p.sdkRoot)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", filepath.Join(p.root, "go.mod"), err)
	}
	modPath := filepath.Join(dir, "go.mod")
	if err := os.WriteFile(modPath, content, 0o644); err != nil {
		return "", err
	}
	var sum []byte
	for _, f := range []string{filepath.Join(p.root, "go.sum"), filepath.Join(p.sdkRoot, "go.sum")} {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		sum = append(sum, data...)
		if len(sum) > 0 && sum[len(sum)-1] != '\n' {
			sum = append(sum, '\n')
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		return "", err
	}
	return modPath, nil
}
