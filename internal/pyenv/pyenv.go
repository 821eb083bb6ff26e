// Package pyenv prepares the Python virtual environments that Python
// plugins (synapse-sdk BaseAction subclasses) run in: one environment per
// (Python version, synapse-sdk requirement, requirements.txt content),
// kept in a cache directory the caller gives and reused by every later run
// that asks for the same three.
//
// An environment is built in a temporary directory next to its final place
// and renamed into place when pip has succeeded, so an environment in the
// cache is always complete. Concurrent callers (goroutines or processes)
// asking for the same environment wait on a lock file while one of them
// builds it; each caller then holds a shared lock on that file until it
// is done with the environment (Env.Close), and Cache.Prune removes only
// environments whose lock it can take exclusively. Environments are used
// through their python only
// (`python -m pip`, `python -m synapse_sdk.plugins.entrypoint`), which keeps
// a renamed virtual environment working (its bin/ scripts would name the
// temporary directory).
package pyenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
)

// DefaultSDKVersion is the synapse-sdk version installed when neither the
// plugin's requirements.txt nor its config.yaml `requires.sdk` pins one.
const DefaultSDKVersion = "2026.2.17"

// PythonEnv names the environment variable that selects the Python
// interpreter (a path or a command name); see FindPython.
const PythonEnv = "SYNAPSE_PYTHON"

// MinPython is the oldest Python synapse-sdk runs on, as major*100+minor.
const MinPython = 312

// Spec says which environment to prepare.
type Spec struct {
	// Python is the interpreter to build the environment from: a path or
	// a command name looked up in PATH. Empty means FindPython.
	Python string
	// SDK is the pip requirement for synapse-sdk, such as
	// "synapse-sdk==2026.2.17"; empty means that version
	// (DefaultSDKVersion). It is installed together with Requirements, so
	// a requirements.txt that names synapse-sdk itself constrains it too.
	SDK string
	// Requirements is the path of a requirements.txt, or "" for none. pip
	// reads it with Dir as its working directory, so relative paths in it
	// (wheels, -r other.txt) are the plugin's.
	Requirements string
	// Dir is pip's working directory (the plugin directory); "" means the
	// current one.
	Dir string
}

// Env is a prepared environment.
type Env struct {
	// Dir is the environment's directory in the cache.
	Dir string
	// Python is its interpreter, Dir/bin/python.
	Python string
	// Key names the environment: "py3.12.1-sdk2026.2.17-<16 hex digits of
	// the SHA-256 of the Python version, SDK requirement and requirements>".
	Key string
	// PythonVersion is the interpreter's version, like "3.12.1".
	PythonVersion string
	// Reused is true when the environment was in the cache already (built
	// by an earlier call, or by a concurrent one this call waited for).
	Reused bool
	// Duration is how long Prepare took, waiting and building included.
	Duration time.Duration

	lock *envLock // shared: the environment is in use
}

// Close ends this use of the environment, releasing the shared lock
// Prepare took on it: until then Cache.Prune (`synapse cache prune`) does
// not remove it. Call it once the environment's python has exited. Close
// is idempotent (not safe for concurrent use) and always returns nil.
func (e *Env) Close() error {
	e.lock.unlock()
	e.lock = nil
	return nil
}

// ErrNoPython is the error (via errors.Is) when no Python >= 3.12 is found.
var ErrNoPython = errors.New("no Python >= 3.12 found")

// PythonError is a Python interpreter that cannot be used: not found, not
// runnable, or older than 3.12.
type PythonError struct {
	// Python is the interpreter asked for ("" when none was found).
	Python string
	// Version is its version when it runs ("3.11.7"), else "".
	Version string
	// Err is the cause: ErrNoPython, or the error running it.
	Err error
}

func (e *PythonError) Error() string {
	const fix = "; install Python 3.12 or newer (apt-get install python3.12, pyenv install 3.12) or set " + PythonEnv + " to its path"
	switch {
	case e.Python == "":
		return "find python: " + e.Err.Error() + fix
	case e.Version != "":
		return fmt.Sprintf("python %s is %s, but synapse-sdk needs Python >= 3.12%s", e.Python, e.Version, fix)
	default:
		return fmt.Sprintf("run python %s: %v%s", e.Python, e.Err, fix)
	}
}

func (e *PythonError) Unwrap() error { return e.Err }

// ExitCode makes a missing Python a setup problem (exit code 2).
func (e *PythonError) ExitCode() int { return 2 }

// InstallError is a failed step of building an environment: creating the
// virtual environment or pip installing the requirements. Its message ends
// with the tool's own error lines.
type InstallError struct {
	// Step is what failed: "create the virtual environment" or "install the
	// requirements" (with the requirements in parentheses).
	Step string
	// Output is the end of the tool's output (at most 64 KiB).
	Output string
	// Err is how the tool ended.
	Err error
}

func (e *InstallError) Error() string {
	msg := fmt.Sprintf("prepare python environment: %s: %v", e.Step, e.Err)
	if s := pipMessage(e.Output); s != "" {
		msg += "\n" + s
	}
	return msg
}

func (e *InstallError) Unwrap() error { return e.Err }

// pipMessage is the part of a tool's output that says what went wrong:
// pip's ERROR lines (and what follows the first of them), else the last
// 20 lines.
func pipMessage(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "ERROR:") || strings.HasPrefix(l, "error:") {
			lines = lines[i:]
			break
		}
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

var (
	pythonsMu sync.Mutex
	pythons   = map[string]string{} // resolved interpreter path → version
)

// PythonVersion runs python and returns its version ("3.12.1"); a Python
// older than 3.12 is a *PythonError. Versions are remembered per path.
func PythonVersion(ctx context.Context, python string) (string, error) {
	path, err := exec.LookPath(python)
	if err != nil {
		return "", &PythonError{Python: python, Err: err}
	}
	pythonsMu.Lock()
	v, ok := pythons[path]
	pythonsMu.Unlock()
	if !ok {
		out, err := exec.CommandContext(ctx, path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])").Output()
		if err != nil {
			return "", &PythonError{Python: python, Err: err}
		}
		v = strings.TrimSpace(string(out))
		pythonsMu.Lock()
		pythons[path] = v
		pythonsMu.Unlock()
	}
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || major*100+minor < MinPython {
		return "", &PythonError{Python: python, Version: v, Err: ErrNoPython}
	}
	return v, nil
}

// FindPython returns a Python >= 3.12: $SYNAPSE_PYTHON when set (an error
// if it is not one), else the first of python3.12, python3.13, python3 on
// PATH and pyenv's 3.12 and 3.13 (~/.pyenv/versions) that runs and is new
// enough; scripts/find-python.sh looks in the same places. None is a
// *PythonError wrapping ErrNoPython.
func FindPython(ctx context.Context) (string, error) {
	if p := os.Getenv(PythonEnv); p != "" {
		if _, err := PythonVersion(ctx, p); err != nil {
			return "", err
		}
		return p, nil
	}
	cands := []string{"python3.12", "python3.13", "python3"}
	if home, err := os.UserHomeDir(); err == nil {
		for _, v := range []string{"3.12", "3.13"} {
			m, _ := filepath.Glob(filepath.Join(home, ".pyenv", "versions", v+"*", "bin", "python3"))
			cands = append(cands, m...)
		}
	}
	for _, c := range cands {
		if _, err := PythonVersion(ctx, c); err == nil {
			p, _ := exec.LookPath(c)
			return p, nil
		}
	}
	return "", &PythonError{Err: ErrNoPython}
}

// SDKRequirement returns the pip requirement for synapse-sdk given
// config.yaml's `requires.sdk` (a version, "==X" or another PEP 440
// specifier such as ">=2026.1.0", or ""): an exact version is pinned as
// given; otherwise DefaultSDKVersion is pinned, with a specifier added as a
// constraint pip checks ("synapse-sdk==2026.2.17,>=2026.1.0"), so an
// environment never changes with what PyPI publishes next.
func SDKRequirement(requires string) string {
	r := strings.TrimSpace(requires)
	switch {
	case r == "":
		return "synapse-sdk==" + DefaultSDKVersion
	case strings.HasPrefix(r, "=="):
		return "synapse-sdk" + r
	case versionPattern.MatchString(r):
		return "synapse-sdk==" + r
	default:
		return "synapse-sdk==" + DefaultSDKVersion + "," + r
	}
}

var versionPattern = regexp.MustCompile(`^[0-9][0-9A-Za-z.+!-]*$`)

// Cache is a directory of prepared environments.
type Cache struct {
	// Dir holds the environments (created 0755 when missing), each in a
	// directory named by its Env.Key, with KEY.lock files beside them.
	Dir string
}

// Prepare returns the environment for spec, building it when the cache
// does not hold it: `python -m venv`, then `python -m pip install` of
// spec.SDK and spec.Requirements, with the tools' output streamed to log
// (may be nil). A failed step is an *InstallError holding pip's message;
// an unusable Python a *PythonError. Cancelling ctx stops a build and
// leaves nothing in the cache.
//
// The environment is returned in use: Prepare holds a shared lock on it
// (KEY.lock) until Env.Close, so that Cache.Prune in any process leaves it
// alone. A reuse sets the modification time of the environment's
// synapse-env.json to now when it is over an hour old
// (cachedir.UseResolution): its last use, by which Prune selects it.
func (c *Cache) Prepare(ctx context.Context, spec Spec, log io.Writer) (*Env, error) {
	start := time.Now()
	if log == nil {
		log = io.Discard
	}
	python := spec.Python
	if python == "" {
		p, err := FindPython(ctx)
		if err != nil {
			return nil, err
		}
		python = p
	}
	version, err := PythonVersion(ctx, python)
	if err != nil {
		return nil, err
	}
	if spec.SDK == "" {
		spec.SDK = SDKRequirement("")
	}
	var reqs []byte
	if spec.Requirements != "" {
		if spec.Requirements, err = filepath.Abs(spec.Requirements); err != nil {
			return nil, fmt.Errorf("prepare python environment: %w", err)
		}
		if reqs, err = os.ReadFile(spec.Requirements); err != nil {
			return nil, fmt.Errorf("prepare python environment: %w", err)
		}
	}
	root, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("prepare python environment: %w", err)
	}
	env := &Env{PythonVersion: version, Key: key(version, spec.SDK, reqs)}
	env.Dir = filepath.Join(root, env.Key)
	env.Python = filepath.Join(env.Dir, "bin", "python")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("prepare python environment: %w", err)
	}
	// Take the environment in use (a shared lock); build it (under the
	// exclusive lock) when it is not complete, then take it again: a prune
	// may remove it between the two locks, though hardly twice.
	built := false
	for attempt := 0; ; attempt++ {
		l, err := lockEnv(ctx, env.Dir+".lock", true, nil)
		if err != nil {
			return nil, fmt.Errorf("prepare python environment: %w", err)
		}
		if fi, err := os.Stat(filepath.Join(env.Dir, markerFile)); err == nil {
			cachedir.Used(filepath.Join(env.Dir, markerFile), fi.ModTime())
			env.lock, env.Reused, env.Duration = l, !built, time.Since(start)
			return env, nil
		}
		l.unlock()
		if attempt == 2 {
			return nil, fmt.Errorf("prepare python environment: %s was removed as soon as it was built (by synapse cache prune?); run again", env.Dir)
		}
		b, err := c.build(ctx, env, spec, python, reqs, log, start)
		if err != nil {
			return nil, err
		}
		built = built || b
	}
}

// build builds env under its exclusive lock, unless it is complete (built
// by the caller we waited for, who may be using it already: then the lock
// is not taken); it reports whether it built.
func (c *Cache) build(ctx context.Context, env *Env, spec Spec, python string, reqs []byte, log io.Writer, start time.Time) (bool, error) {
	root, version := filepath.Dir(env.Dir), env.PythonVersion
	built := func() bool { return complete(env.Dir) }
	l, err := lockEnv(ctx, env.Dir+".lock", false, built)
	if err != nil {
		return false, fmt.Errorf("prepare python environment: %w", err)
	}
	defer l.unlock()
	if l == nil || built() {
		return false, nil
	}
	// A temporary directory left by a build that was killed: we hold the
	// lock, so no one is building into it.
	stale, _ := filepath.Glob(filepath.Join(root, ".tmp-"+env.Key+"-*"))
	for _, d := range stale {
		_ = os.RemoveAll(d)
	}
	_ = os.RemoveAll(env.Dir) // incomplete (no marker): rebuilt
	tmp, err := os.MkdirTemp(root, ".tmp-"+env.Key+"-")
	if err != nil {
		return false, fmt.Errorf("prepare python environment: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	fmt.Fprintf(log, "Preparing the Python environment %s (Python %s, %s)\n", env.Key, version, spec.SDK)
	if err := run(ctx, log, "", "create the virtual environment", python, "-m", "venv", tmp); err != nil {
		return false, err
	}
	args := []string{"-m", "pip", "install", "--disable-pip-version-check", "--no-input", spec.SDK}
	step := "install the requirements (" + spec.SDK
	if spec.Requirements != "" {
		args = append(args, "-r", spec.Requirements)
		step += " and " + filepath.Base(spec.Requirements)
	}
	if err := run(ctx, log, spec.Dir, step+")", filepath.Join(tmp, "bin", "python"), args...); err != nil {
		return false, err
	}
	info, _ := json.Marshal(map[string]any{"python": python, "python_version": version, "sdk": spec.SDK, "requirements": string(reqs), "created": time.Now().UTC().Format(time.RFC3339)})
	if err := os.WriteFile(filepath.Join(tmp, markerFile), info, 0o644); err != nil {
		return false, fmt.Errorf("prepare python environment: %w", err)
	}
	if err := os.Rename(tmp, env.Dir); err != nil {
		return false, fmt.Errorf("prepare python environment: %w", err)
	}
	fmt.Fprintf(log, "Prepared the Python environment %s in %s\n", env.Key, time.Since(start).Round(time.Millisecond))
	return true, nil
}

// markerFile is written last into a built environment, before the rename.
const markerFile = "synapse-env.json"

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, markerFile))
	return err == nil
}

// key names an environment by what makes it.
func key(version, sdk string, reqs []byte) string {
	h := sha256.New()
	for _, s := range []string{version, sdk} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(reqs)
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	v := "any"
	if m := sdkVersion.FindStringSubmatch(sdk); m != nil {
		v = m[1]
	}
	return "py" + version + "-sdk" + v + "-" + sum
}

var sdkVersion = regexp.MustCompile(`==\s*([0-9][0-9A-Za-z.+!-]*)`)

// run runs a tool with its output going to log and kept (the last 64 KiB)
// for the error.
func run(ctx context.Context, log io.Writer, dir, step, name string, args ...string) error {
	tail := &tailBuffer{max: 64 << 10}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = io.MultiWriter(log, tail)
	cmd.Stderr = cmd.Stdout
	cmd.Env = append(os.Environ(), "PIP_NO_INPUT=1", "PYTHONUNBUFFERED=1")
	setCancel(cmd)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("prepare python environment: %s: %w", step, context.Cause(ctx))
		}
		return &InstallError{Step: step, Output: tail.String(), Err: err}
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// List returns the keys of the environments in the cache.
func (c *Cache) List() ([]string, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && complete(filepath.Join(c.Dir, e.Name())) {
			keys = append(keys, e.Name())
		}
	}
	return keys, nil
}
