//go:build integration

package ray_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
	"github.com/synapse-sdk/synapse-go/ray"
)

// workerPIDs returns the process IDs of the second Ray node on this machine
// (scripts/ray-head.sh worker-start, custom resource worker_node=1).
func workerPIDs(t *testing.T) []int {
	t.Helper()
	file := os.Getenv("SYNAPSE_TEST_RAY_WORKER_PIDS")
	if file == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SYNAPSE_TEST_RAY_WORKER_PIDS is not set: CI must run the integration suite with a second Ray node (make test-integration)")
		}
		t.Skip("no second Ray node: run `make test-integration` (it starts one) or scripts/ray-head.sh worker-start")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		t.Fatalf("%s lists no processes", file)
	}
	return pids
}

// TestIntegrationTwoNodes: runs that ask for a resource only the second
// node has are placed there, stream their logs and return their results as
// on the head; killing that node mid-job fails the job with Ray's reason
// within a bounded time, and nothing hangs.
func TestIntegrationTwoNodes(t *testing.T) {
	pids := workerPIDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	onWorker := ray.Cluster{Address: rayAddress(t), Resources: ray.Resources{Custom: map[string]float64{"worker_node": 1}}}
	p := loadPlugin(t)

	// A job placed on the worker node.
	jobs, err := ray.NewJobExecutor(p, ray.JobOptions{Cluster: onWorker})
	if err != nil {
		t.Fatal(err)
	}
	job, err := jobs.SubmitJob(ctx, "echo", map[string]any{"steps": 3})
	if err != nil {
		t.Fatal(err)
	}
	rec := plugintest.NewRecorder()
	if err := job.Follow(ctx, rec); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	res, err := job.Result(ctx)
	if err != nil || res.(map[string]any)["node"] != "worker" {
		t.Fatalf("job on the worker node: %v, %v", res, err)
	}
	if p, ok := rec.LastPercent("echo"); !ok || p != 100 || len(rec.Logs("step")) != 4 {
		t.Errorf("events from the worker node: progress %v (%v), %d step logs", p, ok, len(rec.Logs("step")))
	}

	// A task worker placed on the worker node.
	task, err := ray.NewTaskExecutor(p, ray.TaskOptions{Cluster: onWorker}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	res, err = task.Run(ctx, "echo", nil)
	if err != nil || res.(map[string]any)["node"] != "worker" {
		t.Errorf("task on the worker node: %v, %v", res, err)
	}
	// The next call goes straight to that node's worker.
	res, err = task.Run(ctx, "echo", nil)
	if err != nil || res.(map[string]any)["node"] != "worker" || !task.Timings().Direct {
		t.Errorf("second task call on the worker node: %v, %v, direct %v", res, err, task.Timings().Direct)
	}
	if _, err := ray.DownTasks(ctx, rayAddress(t), p.Code()); err != nil {
		t.Errorf("remove the task worker: %v", err)
	}

	// Kill the node mid-job: the job fails with Ray's reason, in bounded time.
	job, err = jobs.SubmitJob(ctx, "sleep", map[string]any{"seconds": 600})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		st, err := job.Status(ctx)
		if err == nil && st == synapse.JobRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sleep job is still %s (%v) after 2 minutes", st, err)
		}
		time.Sleep(500 * time.Millisecond) // polling Ray's job status
	}
	followed := make(chan error, 1)
	go func() { followed <- job.Follow(ctx, synapse.DiscardLogger) }()
	for _, pid := range pids {
		_ = exec.Command("pkill", "-9", "-P", strconv.Itoa(pid)).Run()
		_ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
	}
	killed := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer rcancel()
	_, err = job.Result(rctx)
	if err == nil || rctx.Err() != nil {
		t.Fatalf("Result after the node died = %v (context %v)", err, rctx.Err())
	}
	info, ierr := job.Info(ctx)
	if ierr != nil || info.Status != synapse.JobFailed || !strings.Contains(strings.ToLower(info.Message), "node") {
		t.Errorf("job after its node died: %+v, %v", info, ierr)
	}
	if !strings.Contains(err.Error(), "failed") {
		t.Errorf("the error does not say the job failed: %v", err)
	}
	select {
	case <-followed:
	case <-time.After(time.Minute):
		t.Error("Follow did not end within a minute of the job failing")
	}
	t.Logf("the job failed %v after its node was killed: %v", time.Since(killed).Round(time.Second), err)
}
