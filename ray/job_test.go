package ray

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/serve"
	"github.com/synapse-sdk/synapse-go/internal/worker"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/plugintest"
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

// TestOptionsChecked: options Ray could not use fail in the constructor,
// as usage errors, before anything is built or sent.
func TestOptionsChecked(t *testing.T) {
	p, err := plugin.Load(executortest.PluginDir())
	if err != nil {
		t.Fatal(err)
	}
	bad := []Cluster{
		{Resources: Resources{GPUs: math.NaN()}},
		{Resources: Resources{CPUs: math.Inf(1)}},
		{Resources: Resources{GPUs: 1.5}},
		{Resources: Resources{CPUs: -1}},
		{Resources: Resources{Memory: -1}},
		{Arch: "sparc"},
		{Address: "ftp://x"},
	}
	for _, c := range bad {
		_, jerr := NewJobExecutor(p, JobOptions{Cluster: c})
		_, terr := NewTaskExecutor(p, TaskOptions{Cluster: c})
		for _, err := range []error{jerr, terr} {
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) || coder.ExitCode() != 2 {
				t.Errorf("%+v: error = %v, want a usage error", c, err)
			}
		}
	}
	if _, err := NewTaskExecutor(p, TaskOptions{Replicas: -3}); err == nil || !strings.Contains(err.Error(), "Replicas") {
		t.Errorf("Replicas -3: %v", err)
	}
	if _, err := NewJobExecutor(p, JobOptions{}, synapse.WithJobID("a/b")); err == nil || !strings.Contains(err.Error(), "invalid job ID") {
		t.Errorf("job ID a/b: %v", err)
	}
	if _, err := NewJobExecutor(p, JobOptions{Cluster: Cluster{Resources: Resources{CPUs: 0.5, GPUs: 2}, Arch: "arm64"}}); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// TestRunPluginModeOptions: RunPlugin takes the mode's options by value or
// pointer (nil meaning the defaults) and refuses other types.
func TestRunPluginModeOptions(t *testing.T) {
	dir := executortest.PluginDir()
	ctx := t.Context()
	for _, opts := range []any{(*JobOptions)(nil), &JobOptions{Cluster: Cluster{Arch: "sparc"}}, JobOptions{Cluster: Cluster{Arch: "sparc"}}} {
		_, err := synapse.RunPlugin(ctx, dir, "echo", nil, synapse.WithMode(synapse.ModeJob), synapse.WithModeOptions(opts),
			synapse.WithJobID("bad/id"), synapse.WithLogger(synapse.DiscardLogger))
		if err == nil || !(strings.Contains(err.Error(), "invalid job ID") || strings.Contains(err.Error(), "option Arch")) {
			t.Errorf("options %#v: %v", opts, err)
		}
	}
	_, err := synapse.RunPlugin(ctx, dir, "echo", nil, synapse.WithMode(synapse.ModeTask), synapse.WithModeOptions(JobOptions{}))
	if err == nil || !strings.Contains(err.Error(), "mode options must be ray.TaskOptions (got ray.JobOptions)") {
		t.Errorf("job options in task mode: %v", err)
	}
}

func TestNewJobID(t *testing.T) {
	for _, action := range []string{"train", "fine_tune", "with space/and slash", strings.Repeat("long", 40), "ünïcode"} {
		id := newJobID("my-plugin", action)
		if err := rayapi.CheckSubmissionID(id); err != nil || !strings.HasPrefix(id, "synapse-my-plugin-") {
			t.Errorf("newJobID(%q) = %q: %v", action, id, err)
		}
	}
}

// TestResultFallsBackToStoredLog: when the followed stream ended before the
// outcome (a cut stream), Result reads the log Ray stored; when that has no
// result either, the error says what to look at (a fake dashboard: the real
// one cannot be made to cut a stream on demand).
func TestResultFallsBackToStoredLog(t *testing.T) {
	stored := "event\n" + worker.ResultStart + "\n{\"a\":1}\n" + worker.ResultEnd + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/jobs/j1", "/api/jobs/j2":
			_ = json.NewEncoder(w).Encode(map[string]any{"submission_id": "j", "status": "SUCCEEDED", "metadata": map[string]string{"action": "train"}})
		case "/api/jobs/j1/logs":
			_ = json.NewEncoder(w).Encode(map[string]string{"logs": stored})
		case "/api/jobs/j2/logs":
			_ = json.NewEncoder(w).Encode(map[string]string{"logs": "just text\n"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client, err := rayapi.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cut := worker.ParseJobLog("event\n" + worker.ResultStart + "\n") // the stream ended inside the result
	j := &Job{id: "j1", client: client, stream: cut}
	if v, err := j.Result(t.Context()); err != nil || v.(map[string]any)["a"] != 1.0 {
		t.Errorf("Result = %v, %v; want the stored log's result", v, err)
	}
	j2 := &Job{id: "j2", client: client, stream: worker.ParseJobLog("")}
	_, err = j2.Result(t.Context())
	if err == nil || !strings.Contains(err.Error(), `run action "train": job j2 succeeded but its log has no result`) || !strings.Contains(err.Error(), "synapse plugin job logs j2") || !strings.Contains(err.Error(), "just text") {
		t.Errorf("no result anywhere: %v", err)
	}
}

// TestStopPendingJob: Ray keeps a job that waits for resources PENDING
// after accepting a stop (Ray 2.60); Stop says so within seconds instead of
// waiting a minute (a fake dashboard that behaves that way).
func TestStopPendingJob(t *testing.T) {
	pendingStopWait = 300 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/jobs/p1/stop":
			_ = json.NewEncoder(w).Encode(map[string]bool{"stopped": true})
		case r.URL.Path == "/api/jobs/p1":
			_ = json.NewEncoder(w).Encode(map[string]any{"submission_id": "p1", "status": "PENDING", "message": "waiting for resources"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	j, err := OpenJob(srv.URL, "p1")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = j.Stop(t.Context())
	if !errors.Is(err, ErrStopPending) || !strings.Contains(err.Error(), "RAY_JOB_START_TIMEOUT_SECONDS") {
		t.Errorf("Stop = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

// TestTaskWorkerLostMidCall: a replica killed mid-call cuts the stream; the
// error says the worker died and that the call can be retried (a fake
// Serve proxy: the cut must come at a chosen moment).
func TestTaskWorkerLostMidCall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the conformance plugin to validate params; skipped with -short")
	}
	t.Setenv("SYNAPSE_CACHE_DIR", t.TempDir())
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_, _ = io.WriteString(w, `{"type":"event","id":"","event":{"type":"log","event":"started","level":"info"}}`+"\n")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the replica dies: the stream is cut
	}))
	defer proxy.Close()
	p, err := plugin.Load(executortest.PluginDir())
	if err != nil {
		t.Fatal(err)
	}
	te, err := NewTaskExecutor(p, TaskOptions{}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	te.app, te.proxy, te.up.ok = &serve.App{Name: "synapse-conformance-x", RoutePrefix: "/x"}, proxy.URL, true
	_, err = te.Run(t.Context(), "wait", map[string]any{"seconds": 60})
	var xe *synapse.ExecutionError
	if !errors.Is(err, ErrWorkerLost) || !errors.As(err, &xe) || xe.Action != "wait" || !strings.Contains(err.Error(), "the call can be retried") {
		t.Errorf("error = %v", err)
	}
}

// TestFollowCompletesFromStoredLog: Ray's log tail delivers a job's last
// lines seconds after Ray reports the job ended; Follow then reads the rest
// from the stored log instead of waiting (a fake dashboard whose tail
// stalls after the first line, as the real one does for a few seconds).
func TestFollowCompletesFromStoredLog(t *testing.T) {
	first := `{"type":"log","time":"2026-12-05T00:00:00Z","level":"info","event":"step","data":{"i":0}}` + "\n"
	stored := first + `{"type":"log","time":"2026-12-05T00:00:01Z","level":"info","event":"step","data":{"i":1}}` + "\n" +
		worker.ResultStart + "\n{\"a\":1}\n" + worker.ResultEnd + "\n"
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/jobs/j1":
			_ = json.NewEncoder(w).Encode(map[string]any{"submission_id": "j1", "status": "SUCCEEDED", "metadata": map[string]string{"action": "train"}})
		case "/api/jobs/j1/logs":
			_ = json.NewEncoder(w).Encode(map[string]string{"logs": stored})
		case "/api/jobs/j1/logs/tail":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			_ = c.Write(r.Context(), websocket.MessageText, []byte(first))
			select { // the rest would come much later
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client, err := rayapi.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	j := &Job{id: "j1", client: client}
	rec := plugintest.NewRecorder()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := j.Follow(ctx, rec); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if n := len(rec.Logs("step")); n != 2 {
		t.Errorf("got %d step events, want 2 (each once)", n)
	}
	if v, err := j.Result(ctx); err != nil || v.(map[string]any)["a"] != 1.0 {
		t.Errorf("Result = %v, %v", v, err)
	}
}
