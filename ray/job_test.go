package ray

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/internal/worker"
	"github.com/synapse-sdk/synapse-go/plugin"
)

func TestJobOutcome(t *testing.T) {
	ok := worker.ParseJobLog(worker.ResultStart + "\n{\"a\":1}\n" + worker.ResultEnd + "\n")
	if v, err := jobOutcome("j", "a", &JobInfo{Status: synapse.JobSucceeded}, ok); err != nil || v.(map[string]any)["a"] != 1.0 {
		t.Errorf("succeeded: %v, %v", v, err)
	}
	if _, err := jobOutcome("j", "a", &JobInfo{Status: synapse.JobSucceeded}, worker.ParseJobLog("no markers\n")); err == nil || !strings.Contains(err.Error(), "has no result") {
		t.Errorf("succeeded without result: %v", err)
	}
	if _, err := jobOutcome("j", "a", &JobInfo{Status: synapse.JobStopped}, ok); !errors.Is(err, synapse.ErrJobStopped) {
		t.Errorf("stopped: %v", err)
	}
	typed := worker.ParseJobLog(`{"type":"error","error":{"kind":"execution","message":"bad","action":"a","cause":"canceled"}}` + "\n")
	_, err := jobOutcome("j", "a", &JobInfo{Status: synapse.JobFailed}, typed)
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || xe.JobID != "j" || !errors.Is(err, context.Canceled) {
		t.Errorf("failed with typed error: %v", err)
	}
	untyped := worker.ParseJobLog("line 1\nSegmentation fault\n")
	_, err = jobOutcome("j", "a", &JobInfo{Status: synapse.JobFailed, ErrorType: "JOB_ENTRYPOINT_COMMAND_ERROR", Message: "exit code 139"}, untyped)
	if err == nil || !strings.Contains(err.Error(), "job j failed (JOB_ENTRYPOINT_COMMAND_ERROR): exit code 139") || !strings.Contains(err.Error(), "Segmentation fault") {
		t.Errorf("failed without typed error: %v", err)
	}
}

// TestClusterEnv: a cluster run gets config.yaml env < explicit env and
// SYNAPSE_HOST, never this process's environment or access token.
func TestClusterEnv(t *testing.T) {
	p, err := plugin.Load(executortest.PluginDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNAPSE_ACCESS_TOKEN", "secret-token")
	t.Setenv("SYNAPSE_HOST", "https://synapse.example")
	t.Setenv("SOME_LOCAL_VAR", "local")
	env := clusterEnv(p, synapse.NewEnv(map[string]any{"LAYER": "explicit", "N": 3}))
	want := map[string]string{"LAYER": "explicit", "FROM_CONFIG": "yes", "N": "3", "SYNAPSE_HOST": "https://synapse.example"}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Errorf("env = %v, want %v", env, want)
	}
	// An explicit token is the caller's decision.
	env = clusterEnv(p, synapse.NewEnv(map[string]any{"SYNAPSE_ACCESS_TOKEN": "given"}))
	if env["SYNAPSE_ACCESS_TOKEN"] != "given" {
		t.Errorf("explicit token = %q", env["SYNAPSE_ACCESS_TOKEN"])
	}
}
