//go:build integration

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/ray"
)

// copyPlugin copies a plugin directory without .synapse and __pycache__,
// with files replaced or added from extra (path → content).
func copyPlugin(t *testing.T, src, dst string, extra map[string]string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
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
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range extra {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationPythonRelease: a Python plugin (the synapse-sdk sample
// trio, testdata/plugins/python-sample) published with the Python SDK's
// CLI runs on the process agent through the SDK's own worker: each action
// SUCCEEDED with its result, a progress record, log entries (the worker's
// JobLogger) and a console log; a plugin whose requirement pip cannot find
// FAILED with pip's message (testdata/python_release.py checks it all).
// Environments go to $SYNAPSE_TEST_VENV_DIR (default: the temp dir's
// synapse-go-test-server-venvs), kept between runs.
func TestIntegrationPythonRelease(t *testing.T) {
	python := os.Getenv("SYNAPSE_TEST_SDK_PYTHON")
	if python == "" {
		t.Fatal("SYNAPSE_TEST_SDK_PYTHON is not set: run scripts/python-sdk.sh (make test-integration does) and point it at the python it prints")
	}
	venvs := os.Getenv("SYNAPSE_TEST_VENV_DIR")
	if venvs == "" {
		venvs = filepath.Join(os.TempDir(), "synapse-go-test-server-venvs")
	}
	sample, err := filepath.Abs(filepath.Join("..", "..", "testdata", "plugins", "python-sample"))
	if err != nil {
		t.Fatal(err)
	}
	plug, bad := filepath.Join(t.TempDir(), "sample"), filepath.Join(t.TempDir(), "bad")
	copyPlugin(t, sample, plug, nil)
	cfg, err := os.ReadFile(filepath.Join(sample, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copyPlugin(t, sample, bad, map[string]string{
		"requirements.txt": "synapse-go-no-such-package-4f2a==0.0.1\n",
		"config.yaml":      regexp.MustCompile(`(?m)^code: python-sample$`).ReplaceAllString(string(cfg), "code: python-bad"),
	})

	url, printed, stop := serve(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), VenvDir: venvs, Agents: []AgentSpec{{Name: "local"}}})
	defer stop()
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	cmd := exec.CommandContext(t.Context(), python, filepath.Join("testdata", "python_release.py"))
	cmd.Env = append(os.Environ(), "SERVER="+url, "TOKEN="+token, "PLUGIN="+plug, "BAD_PLUGIN="+bad)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the Python driver failed: %v\n%s", err, stderr)
	}
	var summary struct {
		Agents []string
		Runs   []struct {
			Agent, Action, Job, Status string
			Seconds                    float64
			LogEntries                 int `json:"log_entries"`
		}
	}
	if err := json.Unmarshal(out, &summary); err != nil || len(summary.Runs) != 5*len(summary.Agents) {
		t.Fatalf("summary %s: %+v, %v", out, summary, err)
	}
	for _, r := range summary.Runs {
		t.Logf("%s on %s: job %s in %.1fs (%d log entries) %s", r.Action, r.Agent, r.Job, r.Seconds, r.LogEntries, r.Status)
	}
}

// rayPython returns the Python version ("3.12") the Ray cluster at addr
// runs jobs with, asked with a one-line Ray job.
func rayPython(t *testing.T, addr string) string {
	t.Helper()
	client, err := ray.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	id := "synapse-go-python-version-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := client.Submit(t.Context(), ray.SubmitRequest{Entrypoint: `python -c "import sys; print('PYTHON=%d.%d' % sys.version_info[:2])"`, SubmissionID: id}); err != nil {
		t.Fatalf("ask the Ray head for its Python version: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := client.Wait(ctx, id); err != nil {
		t.Fatalf("ask the Ray head for its Python version: %v", err)
	}
	logs, err := client.Logs(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	_ = client.Delete(t.Context(), id)
	m := regexp.MustCompile(`PYTHON=(\d+\.\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the Ray head's Python version job printed %q", logs)
	}
	return m[1]
}

// TestIntegrationPythonReleaseRay is TestIntegrationPythonRelease on a Ray
// agent: the Python SDK's worker as a Ray job, the release as its
// working_dir, synapse-sdk and requirements.txt in runtime_env.pip. Ray
// runs jobs on its head's Python, and synapse-sdk needs 3.12 or newer: the
// test fails at once, saying so, on an older head (scripts/ray-head.sh
// starts one on 3.12).
func TestIntegrationPythonReleaseRay(t *testing.T) {
	addr := rayAddress(t)
	python := os.Getenv("SYNAPSE_TEST_SDK_PYTHON")
	if python == "" {
		t.Fatal("SYNAPSE_TEST_SDK_PYTHON is not set: run scripts/python-sdk.sh (make test-integration does) and point it at the python it prints")
	}
	if v := rayPython(t, addr); versionLess(v, "3.12") {
		t.Fatalf("the Ray head at %s runs Python %s, but Python releases (synapse-sdk) need Python >= 3.12 on the cluster: restart the test head with scripts/ray-head.sh, which builds it on Python 3.12 (scripts/find-python.sh)", addr, v)
	}
	sample, err := filepath.Abs(filepath.Join("..", "..", "testdata", "plugins", "python-sample"))
	if err != nil {
		t.Fatal(err)
	}
	plug, bad := filepath.Join(t.TempDir(), "sample"), filepath.Join(t.TempDir(), "bad")
	copyPlugin(t, sample, plug, nil)
	cfg, err := os.ReadFile(filepath.Join(sample, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copyPlugin(t, sample, bad, map[string]string{
		"requirements.txt": "synapse-go-no-such-package-4f2a==0.0.1\n",
		"config.yaml":      regexp.MustCompile(`(?m)^code: python-sample$`).ReplaceAllString(string(cfg), "code: python-bad"),
	})
	url, printed, stop := serve(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), Agents: []AgentSpec{{Name: "ray", Ray: addr}}})
	defer stop()
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	cmd := exec.CommandContext(t.Context(), python, filepath.Join("testdata", "python_release.py"))
	cmd.Env = append(os.Environ(), "SERVER="+url, "TOKEN="+token, "PLUGIN="+plug, "BAD_PLUGIN="+bad)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the Python driver failed: %v\n%s", err, stderr)
	}
	t.Logf("summary: %s", out)
}

// versionLess compares two "major.minor" versions.
func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || am == bm && an < bn
}
