//go:build integration

package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/ray"
)

// TestIntegrationScripts runs testdata/script-ray against the real Ray head
// of the integration suite.
func TestIntegrationScripts(t *testing.T) {
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SYNAPSE_TEST_RAY_ADDRESS is not set: CI must run the integration suite against a real Ray head (make test-integration)")
		}
		t.Skip("no Ray head: run `make test-integration` or set SYNAPSE_TEST_RAY_ADDRESS")
	}
	python := os.Getenv("SYNAPSE_TEST_SDK_PYTHON")
	if python == "" {
		// remote_e2e.txtar runs the Python CLI.
		t.Fatal("SYNAPSE_TEST_SDK_PYTHON is not set: run scripts/python-sdk.sh (make test-integration does) and point it at the python it prints")
	}
	p := scriptParams(t, "script-ray", map[string]string{"RAY_ADDRESS": addr, "RUN": fmt.Sprint(time.Now().UnixNano()), "SDKPY_BIN": filepath.Dir(python)})
	p.Cmds["waitjob"] = cmdWaitJob
	p.Cmds["waitremote"] = cmdWaitRemote
	testscript.Run(t, p)
}

// cmdWaitJob waits up to two minutes for a Ray job to reach a status:
// `waitjob ID STATUS`.
func cmdWaitJob(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitjob ID STATUS")
	}
	client, err := ray.NewClient(ts.Getenv("RAY_ADDRESS"))
	ts.Check(err)
	deadline := time.Now().Add(2 * time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		job, err := client.Job(context.Background(), args[0])
		if err == nil {
			last = string(job.Status)
			if last == args[1] {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	ts.Fatalf("waitjob: job %s is %s, not %s, after two minutes", args[0], last, args[1])
}

// cmdWaitRemote waits up to two minutes for the newest job of the
// backend at $HOST ($TOKEN) to reach a status, and prints {"id": ID}:
// `waitremote STATUS`.
func cmdWaitRemote(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitremote STATUS")
	}
	client, err := backend.New(ts.Getenv("HOST"), ts.Getenv("TOKEN"))
	ts.Check(err)
	deadline := time.Now().Add(2 * time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		jobs, err := client.Jobs(context.Background(), backend.JobsFilter{Limit: 1})
		if err == nil && len(jobs) == 1 {
			last = jobs[0].Status
			if last == args[0] {
				fmt.Fprintf(ts.Stdout(), "{\"id\":%q}\n", jobs[0].ID)
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	ts.Fatalf("waitremote: the newest job is %s, not %s, after two minutes", last, args[0])
}
