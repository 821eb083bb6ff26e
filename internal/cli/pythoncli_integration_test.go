//go:build integration

package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/cli"
)

// TestIntegrationPythonConfigFile checks that the Python CLI
// (synapse-sdk 2026.2.17) and this one share ~/.synapse/config.json: a
// `synapse login` of the Python CLI logs this one in, and the agent this
// one selects and the token it saves are what the Python SDK reads.
func TestIntegrationPythonConfigFile(t *testing.T) {
	python := os.Getenv("SYNAPSE_TEST_SDK_PYTHON")
	if python == "" {
		t.Fatal("SYNAPSE_TEST_SDK_PYTHON is not set: run scripts/python-sdk.sh (make test-integration does) and point it at the python it prints")
	}
	pyCLI := filepath.Join(filepath.Dir(python), "synapse")
	host, token := startTestServer(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SYNAPSE_CONFIG_FILE", "")
	t.Setenv("SYNAPSE_HOST", "")
	t.Setenv("SYNAPSE_ACCESS_TOKEN", "")
	t.Setenv("SYNAPSE_PLUGIN_RUN_USER_TOKEN", "")
	t.Setenv("SYNAPSE_PLUGIN_RUN_TENANT", "")

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := cli.Run(args, &cli.IOStreams{In: bytes.NewReader(nil), Out: &out, ErrOut: &errOut}); code != 0 {
			t.Fatalf("synapse %v: exit %d\n%s", args, code, errOut.String())
		}
		return out.String()
	}

	// The Python CLI logs in; this CLI uses its credentials.
	py := exec.CommandContext(t.Context(), pyCLI, "login", "--host", host, "--token", token)
	py.Env = os.Environ()
	if out, err := py.CombinedOutput(); err != nil {
		t.Fatalf("python synapse login: %v\n%s", err, out)
	}
	run("agent", "list")
	run("agent", "select", "2")

	// The Python SDK reads the agent this CLI selected, and the token.
	read := exec.CommandContext(t.Context(), python, "-c", `
import json
from synapse_sdk.cli.agent.config import get_agent_config
from synapse_sdk.utils.auth import load_credentials
a = get_agent_config()
c = load_credentials()
print(json.dumps({"agent_id": a.id, "agent_name": a.name, "host": c.host, "token": c.token}))
`)
	read.Env = os.Environ()
	out, err := read.Output()
	if err != nil {
		t.Fatalf("python read: %v\n%s", err, out)
	}
	var got struct {
		AgentID   int    `json:"agent_id"`
		AgentName string `json:"agent_name"`
		Host      string `json:"host"`
		Token     string `json:"token"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python printed %s: %v", out, err)
	}
	if got.AgentID != 2 || got.AgentName != "b" || got.Host != host || got.Token != token {
		t.Fatalf("the Python SDK read %+v, want agent 2 (b), host %s and the token", got, host)
	}
	st, err := os.Stat(filepath.Join(home, ".synapse", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %o, want 600", st.Mode().Perm())
	}
}
