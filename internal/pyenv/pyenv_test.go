package pyenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func python(t *testing.T) string {
	t.Helper()
	p, err := FindPython(t.Context())
	if err != nil {
		t.Fatalf("these tests need a Python >= 3.12 (scripts/find-python.sh finds the same): %v", err)
	}
	return p
}

func TestSDKRequirement(t *testing.T) {
	for _, tc := range []struct{ requires, want string }{
		{"", "synapse-sdk==" + DefaultSDKVersion},
		{"2026.1.5", "synapse-sdk==2026.1.5"},
		{"==2026.1.5", "synapse-sdk==2026.1.5"},
		{">=2026.1.0", "synapse-sdk==" + DefaultSDKVersion + ",>=2026.1.0"},
		{" >=2026.1.0,<2027 ", "synapse-sdk==" + DefaultSDKVersion + ",>=2026.1.0,<2027"},
	} {
		if got := SDKRequirement(tc.requires); got != tc.want {
			t.Errorf("SDKRequirement(%q) = %q, want %q", tc.requires, got, tc.want)
		}
	}
}

func TestKey(t *testing.T) {
	a := key("3.12.1", "synapse-sdk==2026.2.17", []byte("numpy\n"))
	if !strings.HasPrefix(a, "py3.12.1-sdk2026.2.17-") || len(a) != len("py3.12.1-sdk2026.2.17-")+16 {
		t.Errorf("key = %q", a)
	}
	for _, b := range []string{
		key("3.12.2", "synapse-sdk==2026.2.17", []byte("numpy\n")),
		key("3.12.1", "synapse-sdk==2026.2.16", []byte("numpy\n")),
		key("3.12.1", "synapse-sdk==2026.2.17", []byte("numpy\npandas\n")),
	} {
		if b == a {
			t.Errorf("different inputs share key %q", a)
		}
	}
}

func TestPythonTooOld(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "python3")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 3.11.7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := (&Cache{Dir: t.TempDir()}).Prepare(t.Context(), Spec{Python: old}, nil)
	var pe *PythonError
	if !errors.As(err, &pe) || pe.Version != "3.11.7" || !strings.Contains(err.Error(), "needs Python >= 3.12") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv(PythonEnv, old)
	if _, err := FindPython(t.Context()); !errors.As(err, &pe) {
		t.Fatalf("FindPython with %s=%s: %v", PythonEnv, old, err)
	}
}

func TestPipMessage(t *testing.T) {
	out := "Collecting x\n  Downloading ...\nERROR: Could not find a version that satisfies the requirement nope==1 (from versions: none)\nERROR: No matching distribution found for nope==1\n"
	got := pipMessage(out)
	if !strings.HasPrefix(got, "ERROR: Could not find a version") || !strings.Contains(got, "No matching distribution found for nope==1") || strings.Contains(got, "Collecting") {
		t.Errorf("pipMessage = %q", got)
	}
}

// TestPrepare builds a real environment (python -m venv, pip install
// synapse-sdk: tens of seconds the first time), from two goroutines at
// once: one builds, the other waits and reuses it; a third call reuses it
// at once; the renamed environment imports synapse_sdk.
func TestPrepare(t *testing.T) {
	py := python(t)
	cache := &Cache{Dir: t.TempDir()}
	spec := Spec{Python: py}
	var wg sync.WaitGroup
	envs := make([]*Env, 2)
	errs := make([]error, 2)
	var logs [2]strings.Builder
	for i := range envs {
		wg.Go(func() { envs[i], errs[i] = cache.Prepare(t.Context(), spec, &logs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Prepare %d: %v\n%s", i, err, logs[i].String())
		}
	}
	if envs[0].Reused == envs[1].Reused || envs[0].Dir != envs[1].Dir {
		t.Fatalf("want one build and one reuse of one environment: %+v %+v", envs[0], envs[1])
	}
	again, err := cache.Prepare(t.Context(), spec, nil)
	if err != nil || !again.Reused || again.Dir != envs[0].Dir {
		t.Fatalf("third Prepare: %+v, %v", again, err)
	}
	built := envs[0]
	if built.Reused {
		built = envs[1]
	}
	// docs/benchmarks.md quotes these (go test -v -run 'TestPrepare$').
	t.Logf("first run (build): %v; reuse: %v", built.Duration, again.Duration)
	out, err := exec.CommandContext(t.Context(), again.Python, "-c", "import sys, importlib.metadata as m; print(sys.prefix); print(m.version('synapse-sdk'))").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := again.Dir + "\n" + DefaultSDKVersion + "\n"; string(out) != want {
		t.Errorf("the environment says %q, want %q", out, want)
	}
	keys, err := cache.List()
	if err != nil || len(keys) != 1 || keys[0] != again.Key {
		t.Errorf("List = %v, %v", keys, err)
	}
	if m, _ := filepath.Glob(filepath.Join(cache.Dir, ".tmp-*")); len(m) != 0 {
		t.Errorf("temporary directories left: %v", m)
	}
}

// TestPrepareBadRequirement: a requirement pip cannot find is an
// *InstallError carrying pip's message, and leaves nothing in the cache.
func TestPrepareBadRequirement(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	req := filepath.Join(dir, "requirements.txt")
	if err := os.WriteFile(req, []byte("synapse-go-no-such-package-4f2a==0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := &Cache{Dir: t.TempDir()}
	var log strings.Builder
	_, err := cache.Prepare(t.Context(), Spec{Python: py, Requirements: req, Dir: dir}, &log)
	var ie *InstallError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an *InstallError", err)
	}
	if !strings.Contains(err.Error(), "synapse-go-no-such-package-4f2a") || !strings.Contains(err.Error(), "ERROR:") {
		t.Errorf("the error lacks pip's message: %v", err)
	}
	if !strings.Contains(log.String(), "synapse-go-no-such-package-4f2a") {
		t.Errorf("pip's output was not streamed to the log: %q", log.String())
	}
	if ents, _ := os.ReadDir(cache.Dir); len(ents) != 1 || !strings.HasSuffix(ents[0].Name(), ".lock") {
		t.Errorf("cache holds %v after a failed build, want only the lock file", ents)
	}
}

func TestPrepareCancelled(t *testing.T) {
	py := python(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cache := &Cache{Dir: t.TempDir()}
	if _, err := cache.Prepare(ctx, Spec{Python: py}, nil); err == nil {
		t.Fatal("a cancelled Prepare succeeded")
	}
	if keys, _ := cache.List(); len(keys) != 0 {
		t.Errorf("a cancelled Prepare left %v", keys)
	}
}
