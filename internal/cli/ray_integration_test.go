//go:build integration

package cli_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
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
	p := scriptParams(t, "script-ray", map[string]string{"RAY_ADDRESS": addr, "RUN": fmt.Sprint(time.Now().UnixNano())})
	p.Cmds["waitjob"] = cmdWaitJob
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
