//go:build integration

package cli_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/ray"
)

// TestIntegrationPythonScripts runs testdata/script-python: Python plugins
// (synapse-sdk) through the CLI, with a real Python >= 3.12 and pip. The
// environments go to $SYNAPSE_TEST_VENV_DIR (default: the system's temp
// dir), shared by the scripts and kept between runs, so only a first run
// installs synapse-sdk.
func TestIntegrationPythonScripts(t *testing.T) {
	python, err := pyenv.FindPython(t.Context())
	if err != nil {
		t.Fatalf("the Python plugin scripts need Python >= 3.12: %v", err)
	}
	venvs := os.Getenv("SYNAPSE_TEST_VENV_DIR")
	if venvs == "" {
		venvs = filepath.Join(os.TempDir(), "synapse-go-test-venvs")
	}
	sample, err := filepath.Abs(filepath.Join("..", "..", "testdata", "plugins", "python-sample"))
	if err != nil {
		t.Fatal(err)
	}
	p := scriptParams(t, "script-python", map[string]string{
		pyenv.PythonEnv: python, "SYNAPSE_VENV_DIR": venvs, "SAMPLE": sample,
	})
	p.Cmds["cpplugin"] = cmdCopyPlugin
	testscript.Run(t, p)
}

// cmdCopyPlugin copies a plugin directory, leaving out .synapse and
// __pycache__: `cpplugin SRC DST`.
func cmdCopyPlugin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cpplugin SRC DST")
	}
	src, dst := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	ts.Check(filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == ".synapse" || d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	}))
}

// TestIntegrationPythonJobMode runs testdata/script-python-ray: a Python
// plugin in job mode on the integration suite's Ray head. Ray runs jobs on
// its head's Python and synapse-sdk needs 3.12 or newer, so the test fails
// at once, saying so, on an older head.
func TestIntegrationPythonJobMode(t *testing.T) {
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		t.Fatal("SYNAPSE_TEST_RAY_ADDRESS is not set: the Python job-mode scripts need a Ray head on Python >= 3.12 (make test-integration starts one)")
	}
	if v := rayPython(t, addr); pythonBelow312(v) {
		t.Fatalf("the Ray head at %s runs Python %s, but Python plugins (synapse-sdk) need Python >= 3.12 on the cluster: restart the test head with scripts/ray-head.sh, which builds it on Python 3.12 (scripts/find-python.sh)", addr, v)
	}
	sample, err := filepath.Abs(filepath.Join("..", "..", "testdata", "plugins", "python-sample"))
	if err != nil {
		t.Fatal(err)
	}
	p := scriptParams(t, "script-python-ray", map[string]string{"RAY_ADDRESS": addr, "SAMPLE": sample})
	p.Cmds["cpplugin"] = cmdCopyPlugin
	testscript.Run(t, p)
}

// rayPython returns the Python version ("3.12") the Ray cluster at addr
// runs jobs with, asked with a one-line Ray job.
func rayPython(t *testing.T, addr string) string {
	t.Helper()
	client, err := ray.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Submit(t.Context(), ray.SubmitRequest{Entrypoint: `python -c "import sys; print('PYTHON=%d.%d' % sys.version_info[:2])"`})
	if err != nil {
		t.Fatalf("ask the Ray head for its Python version: %v", err)
	}
	defer func() { _ = client.Delete(context.WithoutCancel(t.Context()), res.ID) }()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := client.Wait(ctx, res.ID); err != nil {
		t.Fatalf("ask the Ray head for its Python version: %v", err)
	}
	logs, err := client.Logs(t.Context(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`PYTHON=(\d+\.\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the Ray head's Python version job printed %q", logs)
	}
	return m[1]
}

// pythonBelow312 reports whether a "major.minor" version is older than 3.12.
func pythonBelow312(v string) bool {
	var major, minor int
	_, _ = fmt.Sscanf(v, "%d.%d", &major, &minor)
	return major*100+minor < 312
}
