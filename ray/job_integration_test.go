//go:build integration

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/plugintest"
	"github.com/synapse-sdk/synapse-go/ray"
)

// rayAddress returns the dashboard of the real Ray head the integration
// suite runs against (started by scripts/test-integration.sh).
func rayAddress(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SYNAPSE_TEST_RAY_ADDRESS is not set: CI must run the integration suite against a real Ray head (make test-integration)")
		}
		t.Skip("no Ray head: run `make test-integration` (it starts one) or set SYNAPSE_TEST_RAY_ADDRESS")
	}
	return addr
}

const jobPlugin = "../testdata/plugins/jobtest"

func uniqueID(t *testing.T, what string) string {
	return fmt.Sprintf("synapse-test-%s-%d", what, time.Now().UnixNano())
}

// jobOptions are the job-mode options of the test cluster.
func jobOptions(t *testing.T) ray.JobOptions {
	return ray.JobOptions{Cluster: ray.Cluster{Address: rayAddress(t)}}
}

func submit(t *testing.T, ctx context.Context, action string, params any, opts ...synapse.Option) *ray.Job {
	t.Helper()
	p, err := plugin.Load(jobPlugin)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ray.NewJobExecutor(p, jobOptions(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.SubmitJob(ctx, action, params)
	if err != nil {
		t.Fatalf("submit %s: %v", action, err)
	}
	return job
}

func TestIntegrationJobSucceeds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Setenv("SYNAPSE_TEST_SECRET", "must-not-reach-the-cluster")
	t.Setenv("LAYER", "os") // the caller's OS env is not shipped: config.yaml's value wins
	id := uniqueID(t, "echo")
	job := submit(t, ctx, "echo", map[string]any{"text": "hi", "steps": 4},
		synapse.WithJobID(id), synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if job.ID() != id || job.Existing || !strings.Contains(job.DashboardURL, id) {
		t.Errorf("job = %+v", job)
	}
	rec := plugintest.NewRecorder()
	if err := job.Follow(ctx, rec); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	res, err := job.Result(ctx)
	if err != nil {
		t.Fatalf("Result: %v", err)
	}
	got := res.(map[string]any)
	want := map[string]any{"text_len": 2.0, "job_id": id, "layer": "config", "from_config": "yes", "from_flag": "explicit", "home_leaked": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("result[%s] = %v, want %v", k, got[k], v)
		}
	}
	if p, ok := rec.LastPercent("echo"); !ok || p != 100 {
		t.Errorf("followed progress ended at %v (%v)", p, ok)
	}
	if n := len(rec.Logs("step")); n != 5 {
		t.Errorf("%d step logs followed, want 5", n)
	}
	if m := rec.Metrics("echo"); m["steps"] == nil {
		t.Errorf("metrics = %v", m)
	}
	info, err := job.Info(ctx)
	if err != nil || info.Status != synapse.JobSucceeded || info.Metadata["plugin"] != "jobtest" {
		t.Errorf("info = %+v, %v", info, err)
	}

	// Ray's own CLI agrees with ours.
	rayBin := os.Getenv("SYNAPSE_TEST_RAY_BIN")
	if rayBin == "" {
		t.Log("SYNAPSE_TEST_RAY_BIN not set: skipping the `ray job status` cross-check")
		return
	}
	out, err := exec.CommandContext(ctx, rayBin, "job", "status", "--address", rayAddress(t), id).CombinedOutput()
	if err != nil {
		t.Fatalf("ray job status: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("Job '%s' succeeded", id)) {
		t.Errorf("ray job status says:\n%s", out)
	}

	// Resubmitting with the same ID is the same job, not a second one.
	again := submit(t, ctx, "echo", map[string]any{"text": "hi", "steps": 4},
		synapse.WithJobID(id), synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if !again.Existing || again.ID() != id {
		t.Errorf("resubmit = %+v, want the existing job", again)
	}
	// The same ID with other params is refused, not mistaken for the old job.
	_, err = synapse.RunPlugin(ctx, jobPlugin, "echo", map[string]any{"text": "other", "steps": 4},
		synapse.WithMode(synapse.ModeJob), synapse.WithModeOptions(jobOptions(t)), synapse.WithJobID(id),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	var dup *rayapi.DuplicateJobError
	if !errors.As(err, &dup) || !strings.Contains(err.Error(), id) {
		t.Errorf("same ID, other params: %v", err)
	}
}

func TestIntegrationJobFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tests := []struct {
		action string
		params any
		check  func(error) bool
		msg    string
	}{
		{"fail", nil, func(err error) bool { return errors.Is(err, synapse.ErrExecution) }, "the dataset is empty"},
		{"crash", nil, func(err error) bool {
			var xe *synapse.ExecutionError
			return errors.As(err, &xe) && xe.Panicked() && strings.Contains(xe.Stack, "main.go")
		}, "panic: assignment to entry in nil map"},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			job := submit(t, ctx, tt.action, tt.params)
			_, err := job.Result(ctx)
			if err == nil || !tt.check(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Result error = %v (%T), want one containing %q", err, err, tt.msg)
			}
			info, _ := job.Info(ctx)
			if info.Status != synapse.JobFailed {
				t.Errorf("status = %s, want FAILED", info.Status)
			}
		})
	}
}

func TestIntegrationJobInvalidParamsNotSubmitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id := uniqueID(t, "invalid")
	_, err := synapse.RunPlugin(ctx, jobPlugin, "echo", map[string]any{"steps": -1},
		synapse.WithMode(synapse.ModeJob), synapse.WithModeOptions(jobOptions(t)), synapse.WithJobID(id))
	if !errors.Is(err, synapse.ErrValidation) || !strings.Contains(err.Error(), "steps: must be >= 0 (got -1)") {
		t.Fatalf("error = %v, want the validation error", err)
	}
	job, _ := ray.OpenJob(rayAddress(t), id)
	if _, err := job.Info(ctx); err == nil {
		t.Error("a job was submitted with invalid params")
	}
}

func TestIntegrationJobStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	job := submit(t, ctx, "sleep", map[string]any{"seconds": 600})
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := job.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st == synapse.JobRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after a minute", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := job.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st, _ := job.Status(ctx); st != synapse.JobStopped {
		t.Errorf("status after Stop = %s", st)
	}
	if _, err := job.Result(ctx); !errors.Is(err, synapse.ErrJobStopped) {
		t.Errorf("Result of a stopped job = %v", err)
	}
}

func TestIntegrationJobLargeParams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	text := strings.Repeat("x", 40000) // over the 32,000-character env limit: sent in a file
	job := submit(t, ctx, "echo", map[string]any{"text": text, "steps": 0})
	res, err := job.Result(ctx)
	if err != nil {
		t.Fatalf("Result: %v", err)
	}
	if got := res.(map[string]any)["text_len"]; got != float64(len(text)) {
		t.Errorf("text_len = %v, want %d", got, len(text))
	}
}

func TestIntegrationJobTooLargeRefusedBeforeUpload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src, err := filepath.Abs(jobPlugin)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.yaml", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The copy lives outside the SDK module: give it a module using the SDK.
	sdk, _ := filepath.Abs("..")
	gomod := "module example.com/big\n\ngo 1.26\n\nrequire github.com/synapse-sdk/synapse-go v0.0.0-00010101000000-000000000000\n\nreplace github.com/synapse-sdk/synapse-go => " + sdk + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	big, err := os.Create(filepath.Join(dir, "weights.bin"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	seed := uint64(1)
	for i := 0; i < 101; i++ { // 101 MiB of incompressible bytes
		for j := 0; j < len(buf); j += 8 {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(seed >> (8 * k))
			}
		}
		if _, err := big.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	big.Close()
	id := uniqueID(t, "big")
	_, err = synapse.RunPlugin(ctx, dir, "echo", nil, synapse.WithMode(synapse.ModeJob), synapse.WithModeOptions(jobOptions(t)), synapse.WithJobID(id))
	var tl *pack.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "weights.bin") || exit.Code(err) != 2 {
		t.Fatalf("error = %v, want a TooLargeError naming weights.bin", err)
	}
	job, _ := ray.OpenJob(rayAddress(t), id)
	if _, err := job.Info(ctx); err == nil {
		t.Error("a job was submitted for a package that was refused")
	}
}

// TestIntegrationJobNoisyOutput: what an action prints (bytes that are not
// UTF-8, a 5 MiB line, an unterminated progress bar right before it
// returns) cannot hide the result, break Ray's log endpoint or turn events
// into raw lines.
func TestIntegrationJobNoisyOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	job := submit(t, ctx, "noisy", nil)
	rec := plugintest.NewRecorder()
	if err := job.Follow(ctx, rec); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	res, err := job.Result(ctx)
	if err != nil || res.(map[string]any)["ok"] != 1.0 {
		t.Fatalf("Result = %v, %v", res, err)
	}
	if len(rec.Logs("after_noise")) != 1 {
		t.Errorf("the event after the noise was lost or shown raw")
	}
	var stdout, stderr []string
	for _, e := range rec.Events() {
		switch e.Category {
		case "stdout":
			stdout = append(stdout, e.Message)
		case "stderr":
			stderr = append(stderr, e.Message)
		case "ray":
			if strings.Contains(e.Message, "SYNAPSE_RESULT") || strings.Contains(e.Message, `{"type":`) {
				t.Errorf("a protocol line was shown raw: %.200q", e.Message)
			}
		}
	}
	if !slices.Contains(stdout, "debug: starting") || !slices.Contains(stdout, "progress 100%") || !slices.Contains(stderr, `warn: bytes \xff\xfe on stderr`) {
		t.Errorf("stdout lines %d (%.80q…), stderr %q", len(stdout), stdout, stderr)
	}
	// Ray's log endpoint reads the whole log (it fails on bytes that are not UTF-8).
	logs, err := job.Logs(ctx)
	if err != nil || !strings.Contains(logs, "__SYNAPSE_RESULT_END__") {
		t.Errorf("Logs: %v (%d bytes)", err, len(logs))
	}
	for _, line := range strings.Split(logs, "\n") {
		if len(line) > 128<<10 {
			t.Errorf("a log line of %d bytes", len(line))
		}
	}
}

// An unchanged plugin's package comes from the package cache on the second
// submission, and the job runs from it.
func TestIntegrationJobPackageCached(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	t.Setenv("SYNAPSE_CACHE_DIR", t.TempDir())
	first := submit(t, ctx, "echo", map[string]any{"text": "one", "steps": 0}, synapse.WithJobID(uniqueID(t, "pkg1")))
	if first.Timings.Cached || first.Timings.PackageCached {
		t.Errorf("first submission with an empty cache: timings %+v", first.Timings)
	}
	second := submit(t, ctx, "echo", map[string]any{"text": "three", "steps": 0}, synapse.WithJobID(uniqueID(t, "pkg2")))
	if !second.Timings.Cached || !second.Timings.PackageCached || !second.Timings.Reused {
		t.Errorf("second submission: timings %+v, want binary and package cached and the package reused", second.Timings)
	}
	res, err := second.Result(ctx)
	if err != nil {
		t.Fatalf("Result: %v", err)
	}
	if got := res.(map[string]any)["text_len"]; got != 5.0 {
		t.Errorf("result text_len = %v, want 5", got)
	}
}
