//go:build integration

package server

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestIntegrationPythonBackendClient drives a running server with the
// Python SDK's own BackendClient (synapse-sdk from PyPI; scripts/python-sdk.sh
// installs it and test-integration.sh sets SYNAPSE_TEST_SDK_PYTHON): list
// agents, publish, run, poll, read and tail the console log.
func TestIntegrationPythonBackendClient(t *testing.T) {
	python := os.Getenv("SYNAPSE_TEST_SDK_PYTHON")
	if python == "" {
		t.Fatal("SYNAPSE_TEST_SDK_PYTHON is not set: run scripts/python-sdk.sh (make test-integration does) and point it at the python it prints")
	}
	zipPath := filepath.Join(t.TempDir(), "plugin.zip")
	if err := os.WriteFile(zipPath, releaseZip(t), 0o600); err != nil {
		t.Fatal(err)
	}
	url, printed, stop := serve(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), Agents: []AgentSpec{{Name: "local"}, {Name: "ray", Ray: rayAddress(t)}}})
	defer stop()
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	cmd := exec.CommandContext(t.Context(), python, filepath.Join("testdata", "backend_client.py"))
	cmd.Env = append(os.Environ(), "SERVER="+url, "TOKEN="+token, "ZIP="+zipPath, "CONFIG="+conformanceConfig)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the Python client failed: %v\n%s", err, stderr)
	}
	var summary struct {
		Agents, Release int
		Runs            []struct {
			Agent, Job   string
			Overall      float64
			ConsoleLines int `json:"console_lines"`
		}
	}
	if err := json.Unmarshal(out, &summary); err != nil || summary.Agents != 2 || len(summary.Runs) != 2 {
		t.Fatalf("summary %s: %+v, %v", out, summary, err)
	}
	for _, r := range summary.Runs {
		if r.Overall != 100 || r.ConsoleLines == 0 {
			t.Errorf("run on %s: %+v", r.Agent, r)
		}
	}
}
