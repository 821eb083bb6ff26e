//go:build integration

package cli_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
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
