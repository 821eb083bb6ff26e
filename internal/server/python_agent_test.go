package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/pyenv"
)

// fakePython writes an interpreter that answers pyenv's version probe as
// Python 3.12.9 and runs venvStep for `-m venv DIR`: a machine whose
// Python cannot build environments (no venv module) or builds slowly,
// which a real Python here cannot be made to do.
func fakePython(t *testing.T, venvStep string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\ncase \"$*\" in\n*version_info*) echo 3.12.9 ;;\n*) " + venvStep + " ;;\nesac\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// newPythonServer is the API with a process agent whose Python
// environments are built from python, and a Python release published.
func newPythonServer(t *testing.T, python string) *apiFixture {
	t.Helper()
	dir := t.TempDir()
	releases := &Releases{Dir: filepath.Join(dir, "releases"), WorkDir: filepath.Join(dir, "work")}
	f := newAPI(t, func(a *API) {
		a.Releases = releases
		a.Runners = map[string]Runner{"local": &ProcessAgent{Store: a.Store, Releases: releases, RunDir: filepath.Join(t.TempDir(), "run"),
			Grace: 2 * time.Second, Done: a.JobDone, Venvs: &pyenv.Cache{Dir: filepath.Join(dir, "venvs")}, Python: python}}
	})
	z := zipOf(t, map[string]string{"config.yaml": "code: py\n", "plugin/__init__.py": "", "plugin/actions.py": "", "requirements.txt": "numpy\n"})
	if status, v := f.publish(t, map[string]string{"plugin": "py", "version": "0.1.0", "config": `{"code":"py","actions":{"download":{"entrypoint":"plugin.actions:DownloadAction"}}}`}, z); status != 201 {
		t.Fatalf("publish: %d %v", status, v)
	}
	return f
}

// consoleNow returns the job's console log as it is now.
func (f *apiFixture) consoleNow(t *testing.T, id string) string {
	t.Helper()
	_, v := f.call(t, "GET", "/jobs/"+id+"/console_logs/", f.admin, "")
	return fmt.Sprint(v)
}

// TestPythonEnvironmentFails: a Python release whose environment cannot
// be built fails its job with the tool's message (error_type
// environment), which the console log holds too.
func TestPythonEnvironmentFails(t *testing.T) {
	f := newPythonServer(t, fakePython(t, `echo "Error: Command '-m ensurepip' returned non-zero exit status 1." >&2; exit 1`))
	status, v := f.call(t, "POST", "/plugins/py/run/", f.admin, `{"agent":1,"action":"download","params":{"dataset":1}}`)
	if status != 201 {
		t.Fatalf("run = %d %v", status, v)
	}
	id := v.(map[string]any)["id"].(string)
	j := f.waitJob(t, id, ended)
	if j["status"] != "FAILED" || !strings.Contains(jsonText(j["result"]), "prepare python environment: create the virtual environment: exit status 1") ||
		!strings.Contains(jsonText(j["result"]), "ensurepip") || !strings.Contains(jsonText(j["meta"]), `"error_type":"environment"`) {
		t.Errorf("job = %v", j)
	}
	if c := f.consoleNow(t, id); !strings.Contains(c, "Preparing the Python environment") || !strings.Contains(c, "ensurepip") {
		t.Errorf("console log = %s", c)
	}
}

// TestPythonStopWhilePreparing: stopping a Python job while its
// environment is being built kills the build and ends the job STOPPED.
func TestPythonStopWhilePreparing(t *testing.T) {
	f := newPythonServer(t, fakePython(t, "exec sleep 60"))
	_, v := f.call(t, "POST", "/plugins/py/run/", f.admin, `{"agent":1,"action":"download","params":{"dataset":1}}`)
	id := v.(map[string]any)["id"].(string)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(f.consoleNow(t, id), "Preparing the Python environment") {
		if time.Now().After(deadline) {
			t.Fatalf("the preparation did not start: %s", f.consoleNow(t, id))
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if status, v := f.call(t, "POST", "/v2/jobs/"+id+"/stop/", f.admin, ""); status >= 300 {
		t.Fatalf("stop = %d %v", status, v)
	}
	j := f.waitJob(t, id, ended)
	if j["status"] != "STOPPED" {
		t.Errorf("job = %v", j)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the stop took %v (the build was not killed)", took)
	}
}
