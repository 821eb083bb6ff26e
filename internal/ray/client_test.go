package ray

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	synapse "github.com/synapse-sdk/synapse-go"

	"github.com/coder/websocket"
)

// ---- helpers ----

// newTestClient returns a client of srv with short timings.
func newTestClient(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.pollMin, c.pollMax = 5*time.Millisecond, 20*time.Millisecond
	c.backoffMin, c.backoffMax = 5*time.Millisecond, 20*time.Millisecond
	c.outageWindow = 150 * time.Millisecond
	c.agentRetryFor, c.agentRetryDelay = 2*time.Second, 10*time.Millisecond
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeText answers with a text/plain error, as aiohttp does.
func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

const traceback = `Traceback (most recent call last):
  File "/ray/dashboard/modules/job/job_head.py", line 419, in submit_job
    resp = await job_agent_client.submit_job_internal(submit_request)
RuntimeError: Request failed with status code 500: something   odd
`

// ---- ResolveAddress ----

func TestResolveAddress(t *testing.T) {
	tests := []struct {
		in, env, want string
		wantErr       string
	}{
		{in: "", want: DefaultAddress},
		{in: "auto", want: DefaultAddress},
		{in: "  ", want: DefaultAddress},
		{in: "", env: "http://head:8265/", want: "http://head:8265"},
		{in: "auto", env: "ray://head:10001", want: "http://head:8265"},
		{in: "", env: "auto", want: DefaultAddress},
		{in: "", env: "ftp://x", wantErr: `invalid RAY_ADDRESS "ftp://x"`},
		{in: "http://other:1234", env: "http://head:8265", want: "http://other:1234"},
		{in: "ray://head:10001", want: "http://head:8265"},
		{in: "ray://head", want: "http://head:8265"},
		{in: "ray://10.0.0.5:10001/", want: "http://10.0.0.5:8265"},
		{in: "ray://[::1]:10001", want: "http://[::1]:8265"},
		{in: "head:8265", want: "http://head:8265"},
		{in: "10.0.0.5:9999", want: "http://10.0.0.5:9999"},
		{in: "head", want: "http://head:8265"},
		{in: "[::1]:8265", want: "http://[::1]:8265"},
		{in: "http://127.0.0.1:8265", want: "http://127.0.0.1:8265"},
		{in: "http://127.0.0.1:8265///", want: "http://127.0.0.1:8265"},
		{in: "https://ray.example.com", want: "https://ray.example.com"},
		{in: "HTTPS://ray.example.com/dash/", want: "https://ray.example.com/dash"},
		{in: "ws://head:8265", wantErr: `invalid Ray address "ws://head:8265": unsupported scheme`},
		{in: "grpc://head", wantErr: "unsupported scheme"},
		{in: "http://", wantErr: "no host"},
		{in: "ray://", wantErr: "no host"},
		{in: "ray://head:10001/path", wantErr: "ray://host[:port]"},
		{in: "head:port", wantErr: `bad port "port"`},
		{in: "head:0", wantErr: `bad port "0"`},
		{in: "head:70000", wantErr: `bad port "70000"`},
		{in: "head:", wantErr: `bad port ""`},
		{in: ":8265", wantErr: "no host"},
		{in: "http://head:x", wantErr: `invalid Ray address "http://head:x"`},
		{in: "http://head:8265?x=1", wantErr: "query"},
		{in: "http://u:p@head:8265", wantErr: "credentials"},
		{in: "::1", wantErr: "brackets"},
		{in: "head/path", wantErr: "host[:port]"},
		{in: "he ad:80", wantErr: "spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.in+"|"+tt.env, func(t *testing.T) {
			t.Setenv("RAY_ADDRESS", tt.env)
			got, err := ResolveAddress(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveAddress(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNewClientAddressAndJobURL(t *testing.T) {
	t.Setenv("RAY_ADDRESS", "")
	c, err := NewClient("ray://head:10001")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Address(); got != "http://head:8265" {
		t.Errorf("Address() = %q", got)
	}
	if got := c.JobURL("sdk-1/x"); got != "http://head:8265/#/jobs/sdk-1%2Fx" {
		t.Errorf("JobURL = %q", got)
	}
	if _, err := NewClient("ftp://x"); err == nil || !strings.Contains(err.Error(), `"ftp://x"`) {
		t.Errorf("NewClient(ftp://x) error = %v", err)
	}
}

// ---- headers ----

func TestHeadersOnRESTAndWebSocket(t *testing.T) {
	tests := []struct {
		name     string
		env      string
		opts     []Option
		wantAuth string
	}{
		{name: "env token", env: "envtok", wantAuth: "Bearer envtok"},
		{name: "WithToken overrides env", env: "envtok", opts: []Option{WithToken("opt")}, wantAuth: "Bearer opt"},
		{name: "WithToken empty sends none", env: "envtok", opts: []Option{WithToken("")}, wantAuth: ""},
		{name: "no token", wantAuth: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RAY_AUTH_TOKEN", tt.env)
			var mu sync.Mutex
			seen := map[string]string{} // "METHOD path" -> Authorization
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen[r.Method+" "+r.URL.Path] = r.Header.Get("Authorization")
				mu.Unlock()
				if ua := r.Header.Get("User-Agent"); ua != "synapse-go" {
					t.Errorf("%s %s: User-Agent %q", r.Method, r.URL.Path, ua)
				}
				switch r.URL.Path {
				case "/api/version":
					writeJSON(w, map[string]string{"version": "4", "ray_version": "2.60.0"})
				case "/api/jobs/":
					writeJSON(w, map[string]string{"job_id": "j1", "submission_id": "j1"})
				case "/api/jobs/j1":
					writeJSON(w, map[string]any{"type": "SUBMISSION", "submission_id": "j1", "status": "SUCCEEDED"})
				case "/api/jobs/j1/logs/tail":
					c, err := websocket.Accept(w, r, nil)
					if err != nil {
						return
					}
					_ = c.Write(r.Context(), websocket.MessageText, []byte("hi\n"))
					_ = c.Close(websocket.StatusNormalClosure, "")
				case "/api/packages/gcs/p.zip":
					if r.Method == http.MethodGet {
						writeText(w, 404, "Package gcs://p.zip does not exist")
					}
				default:
					writeText(w, 404, "404: Not Found")
				}
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, tt.opts...)
			ctx := testCtx(t)
			if _, err := c.Version(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Submit(ctx, SubmitRequest{Entrypoint: "true"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.EnsurePackage(ctx, "gcs://p.zip", []byte("zip")); err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			if err := c.Tail(ctx, "j1", func(s string) error { got.WriteString(s); return nil }); err != nil {
				t.Fatal(err)
			}
			if got.String() != "hi\n" {
				t.Errorf("tail = %q", got.String())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range []string{"GET /api/version", "POST /api/jobs/", "GET /api/packages/gcs/p.zip", "PUT /api/packages/gcs/p.zip", "GET /api/jobs/j1/logs/tail", "GET /api/jobs/j1"} {
				auth, ok := seen[k]
				if !ok {
					t.Errorf("no request %s", k)
				} else if auth != tt.wantAuth {
					t.Errorf("%s: Authorization %q, want %q", k, auth, tt.wantAuth)
				}
			}
		})
	}
}

// ---- errors ----

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		wantText string // exact Error()
	}{
		{500, traceback, "ray: GET /api/jobs/j1: 500 Internal Server Error\n" + strings.TrimSpace(traceback)},
		{401, "Unauthorized: missing token\n", "ray: GET /api/jobs/j1: 401 Unauthorized (the cluster requires a token: set RAY_AUTH_TOKEN)\nUnauthorized: missing token"},
		{403, "Forbidden", "ray: GET /api/jobs/j1: 403 Forbidden (the token in RAY_AUTH_TOKEN was rejected: check it against the cluster's)\nForbidden"},
		{413, "", "ray: GET /api/jobs/j1: 413 Request Entity Too Large (the request is larger than the dashboard's 100 MiB limit)"},
		{400, "bad", "ray: GET /api/jobs/j1: 400 Bad Request\nbad"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeText(w, tt.status, tt.body)
			}))
			defer srv.Close()
			_, err := newTestClient(t, srv.URL).Job(testCtx(t), "j1")
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("err = %T %v, want *HTTPError", err, err)
			}
			if he.Status != tt.status || he.Method != "GET" || he.Path != "/api/jobs/j1" {
				t.Errorf("HTTPError = %+v", he)
			}
			if err.Error() != tt.wantText {
				t.Errorf("Error() =\n%s\nwant\n%s", err.Error(), tt.wantText)
			}
			if errors.Is(err, ErrJobNotFound) {
				t.Error("matches ErrJobNotFound")
			}
		})
	}
}

func TestJobNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/version" {
			_, _ = io.WriteString(w, `{"version": "4", "ray_version": "2.60.0"}`)
			return
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/api/jobs/"), "/")
		writeText(w, 404, "Job "+id+" does not exist")
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := testCtx(t)
	calls := map[string]func() error{
		"Job":    func() error { _, err := c.Job(ctx, "nope"); return err },
		"Stop":   func() error { _, err := c.Stop(ctx, "nope"); return err },
		"Delete": func() error { return c.Delete(ctx, "nope") },
		"Logs":   func() error { _, err := c.Logs(ctx, "nope"); return err },
		"Wait":   func() error { _, err := c.Wait(ctx, "nope"); return err },
		"Tail":   func() error { return c.Tail(ctx, "nope", func(string) error { return nil }) },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrJobNotFound) {
			t.Errorf("%s: err = %v, want ErrJobNotFound", name, err)
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 404 || !strings.Contains(err.Error(), "Job nope does not exist") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A 404 elsewhere is not a missing job.
	_, err := c.EnsurePackage(ctx, "x.zip", nil)
	if err == nil || errors.Is(err, ErrJobNotFound) {
		t.Errorf("EnsurePackage: %v", err)
	}
	if (&HTTPError{Status: 404, Path: "/api/jobs/"}).Is(ErrJobNotFound) {
		t.Error("404 on the job list matches ErrJobNotFound")
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	c := newTestClient(t, addr)
	_, err = c.Version(testCtx(t))
	want := "ray: cannot reach the Ray dashboard at " + addr + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.HasSuffix(err.Error(), "; is a Ray head running? (set --ray-address or RAY_ADDRESS)") {
		t.Fatalf("err = %v", err)
	}
	// The tail gives up after repeated failed connects, with the same text.
	err = c.Tail(testCtx(t), "j1", func(string) error { return nil })
	var oe *OutageError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "the job may still be running: follow it again with `synapse plugin job logs -f j1`") || !strings.Contains(err.Error(), want) {
		t.Fatalf("Tail err = %v", err)
	}
}

func TestVersion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/good/api/version" {
			_, _ = io.WriteString(w, `{"version": "4", "ray_version": "2.60.0", "ray_commit": "abc", "session_name": "s", "new_field": 1}`)
			return
		}
		writeText(w, 404, "404: Not Found")
	}))
	defer srv.Close()
	ctx := testCtx(t)
	v, err := newTestClient(t, srv.URL+"/good/").Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *v != (Version{Version: "4", RayVersion: "2.60.0", RayCommit: "abc", SessionName: "s"}) {
		t.Errorf("Version = %+v", v)
	}
	_, err = newTestClient(t, srv.URL).Version(ctx)
	var nr *NotRayError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "no Ray dashboard at "+srv.URL+": it answered GET /api/version with 404 Not Found") {
		t.Errorf("err = %v", err)
	}
}

// TestNotRay: another web server at the address is named as such, and its
// HTML error page is never printed.
func TestNotRay(t *testing.T) {
	page := "<!DOCTYPE html><html><head><title>404</title></head><body>" + strings.Repeat("<p>nope</p>", 200) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, page)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := testCtx(t)
	for name, call := range map[string]func() error{
		"Jobs":   func() error { _, err := c.Jobs(ctx); return err },
		"Job":    func() error { _, err := c.Job(ctx, "x"); return err },
		"Submit": func() error { _, err := c.Submit(ctx, SubmitRequest{Entrypoint: "true"}); return err },
	} {
		err := call()
		var nr *NotRayError
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), "usually listens on port 8265") {
			t.Errorf("%s: err = %v, want a *NotRayError", name, err)
		}
		if strings.Contains(err.Error(), "<") || errors.Is(err, ErrJobNotFound) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestUnauthorized: a 401 says to set the token, or that it was rejected.
func TestUnauthorized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeText(w, 401, "Unauthorized")
	}))
	defer srv.Close()
	t.Setenv("RAY_AUTH_TOKEN", "")
	_, err := newTestClient(t, srv.URL).Jobs(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "set RAY_AUTH_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	t.Setenv("RAY_AUTH_TOKEN", "tok-123")
	_, err = newTestClient(t, srv.URL).Jobs(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "was rejected") || strings.Contains(err.Error(), "tok-123") {
		t.Errorf("rejected token: %v", err)
	}
}

// ---- submit ----

func TestSubmitJSON(t *testing.T) {
	tests := []struct {
		name     string
		req      SubmitRequest
		wantKeys []string
	}{
		{"minimal", SubmitRequest{Entrypoint: "echo hi"}, []string{"entrypoint"}},
		{"full", SubmitRequest{
			Entrypoint:          "echo hi",
			SubmissionID:        "sdk-1",
			RuntimeEnv:          map[string]any{"working_dir": "gcs://_ray_pkg_1.zip"},
			Metadata:            map[string]string{"sdk": "go"},
			EntrypointNumCPUs:   1,
			EntrypointNumGPUs:   0.5,
			EntrypointMemory:    1 << 29,
			EntrypointResources: map[string]float64{"tag": 1},
		}, []string{"entrypoint", "entrypoint_memory", "entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_resources", "metadata", "runtime_env", "submission_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/api/jobs/" {
					t.Errorf("request %s %s, want POST /api/jobs/", r.Method, r.URL.Path)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
					t.Error(err)
				}
				writeJSON(w, map[string]any{"job_id": "raysubmit_abc", "submission_id": "raysubmit_abc"})
			}))
			defer srv.Close()
			res, err := newTestClient(t, srv.URL).Submit(testCtx(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if *res != (SubmitResult{ID: "raysubmit_abc"}) {
				t.Errorf("result %+v", res)
			}
			keys := make([]string, 0, len(body))
			for k := range body {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("keys %v, want %v (body %v)", keys, tt.wantKeys, body)
			}
			if tt.name == "full" && (body["entrypoint_memory"] != float64(1<<29) || body["entrypoint_num_gpus"] != 0.5) {
				t.Errorf("body %v", body)
			}
		})
	}
	if _, err := newTestClient(t, "http://127.0.0.1:1").Submit(testCtx(t), SubmitRequest{}); err == nil || !strings.Contains(err.Error(), "entrypoint is empty") {
		t.Errorf("empty entrypoint: %v", err)
	}
}

func TestSubmitRetriesNoAgent(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) <= 2 {
			writeText(w, 500, "Traceback (most recent call last):\nRuntimeError: No available agent to submit job, please try again later.")
			return
		}
		writeJSON(w, map[string]any{"job_id": "a", "submission_id": "a"})
	}))
	defer srv.Close()
	res, err := newTestClient(t, srv.URL).Submit(testCtx(t), SubmitRequest{Entrypoint: "x", SubmissionID: "a"})
	if err != nil || res.ID != "a" || res.Existing {
		t.Fatalf("Submit = %+v, %v", res, err)
	}
	if n := posts.Load(); n != 3 {
		t.Errorf("%d POSTs, want 3", n)
	}

	// The retry is bounded.
	posts.Store(-1000)
	c := newTestClient(t, srv.URL)
	c.agentRetryFor = 50 * time.Millisecond
	_, err = c.Submit(testCtx(t), SubmitRequest{Entrypoint: "x"})
	if err == nil || !strings.Contains(err.Error(), "No available agent to submit job") {
		t.Fatalf("err = %v", err)
	}
}

func TestSubmitDuplicateID(t *testing.T) {
	const dup = "Traceback (most recent call last):\nRuntimeError: Request failed with status code 400: Traceback...\nValueError: Job with submission_id sdk-1 already exists. Please use a different submission_id.\n."
	tests := []struct {
		name       string
		entrypoint string
		wantErr    bool
	}{
		{"same entrypoint", "echo hi", false},
		{"different entrypoint", "echo bye", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.Method + " " + r.URL.Path {
				case "POST /api/jobs/":
					writeText(w, 500, dup)
				case "GET /api/jobs/sdk-1":
					writeJSON(w, map[string]any{"type": "SUBMISSION", "submission_id": "sdk-1", "job_id": nil, "status": "RUNNING", "entrypoint": "echo hi"})
				default:
					writeText(w, 404, "404: Not Found")
				}
			}))
			defer srv.Close()
			res, err := newTestClient(t, srv.URL).Submit(testCtx(t), SubmitRequest{Entrypoint: tt.entrypoint, SubmissionID: "sdk-1"})
			if !tt.wantErr {
				if err != nil || *res != (SubmitResult{ID: "sdk-1", Existing: true}) {
					t.Fatalf("Submit = %+v, %v", res, err)
				}
				return
			}
			var de *DuplicateJobError
			if !errors.As(err, &de) || de.ID != "sdk-1" || de.ExistingEntrypoint != "echo hi" {
				t.Fatalf("err = %T %v", err, err)
			}
			if !strings.Contains(err.Error(), `"sdk-1"`) {
				t.Errorf("Error() = %s", err)
			}
		})
	}
}

// ---- job queries ----

func TestJobDecodingAndJobs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/jobs/":
			_, _ = io.WriteString(w, `[
 {"type": "DRIVER", "job_id": "01000000", "submission_id": null, "status": "SUCCEEDED", "entrypoint": "", "start_time": 5000},
 {"type": "SUBMISSION", "job_id": null, "submission_id": "old", "status": "SUCCEEDED", "entrypoint": "a", "start_time": 1000, "retry_policy": {"max": 1}},
 {"type": "SUBMISSION", "job_id": "02000000", "submission_id": "new", "status": "RUNNING", "entrypoint": "b", "start_time": 3000, "attempt_number": 2}
]`)
		case "/api/jobs/j1":
			_, _ = io.WriteString(w, `{"type": "SUBMISSION", "job_id": null, "submission_id": "j1",
 "driver_info": {"id": "02000000", "node_ip_address": "10.0.0.5", "pid": "41233"},
 "status": "FAILED", "entrypoint": "exit 3", "message": "Job entrypoint command failed with exit code 3", "error_type": null,
 "start_time": 1767225600000, "end_time": 1767225612000, "metadata": {"sdk": "go"}, "runtime_env": {"env_vars": {"A": "1"}},
 "driver_agent_http_address": "http://10.0.0.5:52365", "driver_node_id": "8c1d", "driver_exit_code": 3, "unknown": [1, 2]}`)
		case "/api/jobs/j1/logs":
			writeJSON(w, map[string]string{"logs": "a\nb\n"})
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := testCtx(t)
	jobs, err := c.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].SubmissionID != "new" || jobs[1].SubmissionID != "old" || jobs[0].JobID != "02000000" {
		t.Errorf("Jobs = %+v", jobs)
	}
	j, err := c.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	three := 3
	want := Job{Type: "SUBMISSION", SubmissionID: "j1", Status: synapse.JobFailed, Entrypoint: "exit 3",
		Message: "Job entrypoint command failed with exit code 3", StartTime: 1767225600000, EndTime: 1767225612000,
		Metadata: map[string]string{"sdk": "go"}, RuntimeEnv: map[string]any{"env_vars": map[string]any{"A": "1"}},
		DriverExitCode: &three, DriverAgentHTTPAddress: "http://10.0.0.5:52365", DriverNodeID: "8c1d"}
	if !reflect.DeepEqual(*j, want) {
		t.Errorf("Job =\n%+v\nwant\n%+v", *j, want)
	}
	logs, err := c.Logs(ctx, "j1")
	if err != nil || logs != "a\nb\n" {
		t.Errorf("Logs = %q, %v", logs, err)
	}
}

func TestTerminal(t *testing.T) {
	for s, want := range map[synapse.JobStatus]bool{synapse.JobPending: false, synapse.JobRunning: false, synapse.JobStopped: true, synapse.JobSucceeded: true, synapse.JobFailed: true, "": false} {
		if s.Terminal() != want {
			t.Errorf("%q.Terminal() = %v", s, !want)
		}
	}
}

// statusServer serves one job whose status the test sets; stop and delete
// are recorded.
type statusServer struct {
	mu      sync.Mutex
	status  synapse.JobStatus
	gets    int
	stops   int
	fail503 int // answer the next n GETs with 503
	onGet   func(n int) synapse.JobStatus
}

func (s *statusServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method + " " + r.URL.Path {
	case "GET /api/jobs/j1":
		s.gets++
		if s.fail503 > 0 {
			s.fail503--
			writeText(w, 503, "busy")
			return
		}
		if s.onGet != nil {
			s.status = s.onGet(s.gets)
		}
		writeJSON(w, map[string]any{"type": "SUBMISSION", "submission_id": "j1", "status": s.status})
	case "POST /api/jobs/j1/stop":
		s.stops++
		writeJSON(w, map[string]bool{"stopped": !s.status.Terminal()})
	case "DELETE /api/jobs/j1":
		if !s.status.Terminal() {
			writeText(w, 500, "Attempted to delete job 'j1', but it is in a non-terminal state RUNNING.")
			return
		}
		writeJSON(w, map[string]bool{"deleted": true})
	default:
		writeText(w, 404, "404: Not Found")
	}
}

func TestStopAndWait(t *testing.T) {
	t.Run("stops", func(t *testing.T) {
		s := &statusServer{status: synapse.JobRunning, onGet: func(n int) synapse.JobStatus {
			if n >= 3 {
				return synapse.JobStopped
			}
			return synapse.JobRunning
		}}
		srv := httptest.NewServer(s)
		defer srv.Close()
		job, err := newTestClient(t, srv.URL).StopAndWait(testCtx(t), "j1", 10*time.Second)
		if err != nil || job.Status != synapse.JobStopped || s.stops != 1 {
			t.Fatalf("StopAndWait = %+v, %v (stops %d)", job, err, s.stops)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := &statusServer{status: synapse.JobRunning}
		srv := httptest.NewServer(s)
		defer srv.Close()
		start := time.Now()
		_, err := newTestClient(t, srv.URL).StopAndWait(testCtx(t), "j1", 100*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), `job "j1" is still RUNNING 100ms after stop was requested`) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("already terminal", func(t *testing.T) {
		s := &statusServer{status: synapse.JobSucceeded}
		srv := httptest.NewServer(s)
		defer srv.Close()
		c := newTestClient(t, srv.URL)
		stopped, err := c.Stop(testCtx(t), "j1")
		if err != nil || stopped {
			t.Fatalf("Stop = %v, %v", stopped, err)
		}
		job, err := c.StopAndWait(testCtx(t), "j1", time.Second)
		if err != nil || job.Status != synapse.JobSucceeded {
			t.Fatalf("StopAndWait = %+v, %v", job, err)
		}
	})
}

func TestWaitAndDelete(t *testing.T) {
	s := &statusServer{status: synapse.JobRunning, fail503: 2, onGet: func(n int) synapse.JobStatus {
		if n >= 6 {
			return synapse.JobFailed
		}
		return synapse.JobRunning
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := testCtx(t)
	if err := c.Delete(ctx, "j1"); err == nil || !strings.Contains(err.Error(), "500 Internal Server Error\nAttempted to delete job 'j1', but it is in a non-terminal state") {
		t.Fatalf("Delete of running job: %v", err)
	}
	job, err := c.Wait(ctx, "j1")
	if err != nil || job.Status != synapse.JobFailed {
		t.Fatalf("Wait = %+v, %v", job, err)
	}
	if err := c.Delete(ctx, "j1"); err != nil {
		t.Fatal(err)
	}

	// Persistent 5xx ends the wait with the server's text.
	s.mu.Lock()
	s.fail503 = 100
	s.mu.Unlock()
	if _, err := c.Wait(ctx, "j1"); err == nil || !strings.Contains(err.Error(), "503 Service Unavailable\nbusy") {
		t.Fatalf("Wait err = %v", err)
	}

	// Cancellation.
	s.mu.Lock()
	s.fail503, s.onGet, s.status = 0, nil, synapse.JobPending
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(cctx, "j1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait err = %v", err)
	}
}

// ---- packages ----

func TestEnsurePackage(t *testing.T) {
	var mu sync.Mutex
	stored := map[string][]byte{}
	var puts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		name, ok := strings.CutPrefix(r.URL.Path, "/api/packages/gcs/")
		if !ok {
			writeText(w, 404, "404: Not Found")
			return
		}
		switch r.Method {
		case http.MethodGet:
			if _, ok := stored[name]; !ok {
				writeText(w, 404, "Package gcs://"+name+" does not exist")
			}
		case http.MethodPut:
			puts++
			b, _ := io.ReadAll(r.Body)
			if name == "broken.zip" {
				writeText(w, 500, "Traceback (most recent call last):\nValueError: bad zip")
				return
			}
			stored[name] = b
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := testCtx(t)
	data := []byte("PK\x03\x04 pretend zip")
	for i, want := range []bool{true, false} {
		uploaded, err := c.EnsurePackage(ctx, "gcs://_ray_pkg_1.zip", data)
		if err != nil || uploaded != want {
			t.Fatalf("call %d: EnsurePackage = %v, %v; want %v", i, uploaded, err, want)
		}
	}
	if !bytes.Equal(stored["_ray_pkg_1.zip"], data) || puts != 1 {
		t.Errorf("stored %q after %d PUTs", stored["_ray_pkg_1.zip"], puts)
	}
	if _, err := c.EnsurePackage(ctx, "broken.zip", data); err == nil || !strings.Contains(err.Error(), "ray: PUT /api/packages/gcs/broken.zip: 500 Internal Server Error\nTraceback") {
		t.Errorf("err = %v", err)
	}
	big := make([]byte, maxPackageSize+1)
	if _, err := c.EnsurePackage(ctx, "big.zip", big); err == nil || !strings.Contains(err.Error(), "100 MiB upload limit") {
		t.Errorf("err = %v", err)
	}
	if _, err := c.EnsurePackage(ctx, "a/b.zip", data); err == nil {
		t.Error("name with a slash accepted")
	}
	if puts != 2 {
		t.Errorf("%d PUTs, want 2", puts)
	}
}

// ---- tail ----

// tailLog is a log with multibyte text, ordinary lines and one line longer
// than coder/websocket's default 32 KiB read limit.
func tailLog() string {
	var b strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&b, "line %04d — ünïcödé ✓ %s\n", i, strings.Repeat("x", i%17))
		if i == 500 {
			b.WriteString(strings.Repeat("é", 25000) + "\n") // 50,000 bytes
		}
	}
	return b.String()
}

// split cuts s into pieces of about the given sizes (cycled), each ending on
// a rune boundary, as the dashboard's text frames do.
func split(s string, sizes ...int) []string {
	var out []string
	for i := 0; s != ""; i++ {
		n := min(sizes[i%len(sizes)], len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n++
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// tailStep is what the fake dashboard does on one tail connection.
type tailStep struct {
	status synapse.JobStatus // status set before sending
	frames []string
	after  synapse.JobStatus // status set before closing ("" keeps it)
	close  string            // "normal" or "drop"
}

// tailServer is a fake dashboard for one job "j1" whose tail connections
// follow steps in order.
type tailServer struct {
	t      *testing.T
	steps  []tailStep
	mu     sync.Mutex
	status synapse.JobStatus
	conns  int
}

func (s *tailServer) setStatus(st synapse.JobStatus) {
	if st != "" {
		s.mu.Lock()
		s.status = st
		s.mu.Unlock()
	}
}

func (s *tailServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/jobs/j1":
		s.mu.Lock()
		st := s.status
		s.mu.Unlock()
		writeJSON(w, map[string]any{"type": "SUBMISSION", "submission_id": "j1", "status": st})
	case "/api/jobs/j1/logs/tail":
		s.mu.Lock()
		n := s.conns
		s.conns++
		s.mu.Unlock()
		if n >= len(s.steps) {
			s.t.Errorf("unexpected tail connection %d", n+1)
			writeText(w, 500, "no more steps")
			return
		}
		step := s.steps[n]
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			s.t.Error(err)
			return
		}
		s.setStatus(step.status)
		for _, f := range step.frames {
			if err := c.Write(r.Context(), websocket.MessageText, []byte(f)); err != nil {
				s.t.Errorf("connection %d: write: %v", n+1, err)
				return
			}
		}
		s.setStatus(step.after)
		switch step.close {
		case "drop":
			_ = c.CloseNow() // no close frame: an abnormal closure for the client
		default:
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	default:
		writeText(w, 404, "404: Not Found")
	}
}

func TestTail(t *testing.T) {
	log := tailLog()
	if len(log) < 100_000 {
		t.Fatalf("log too short: %d", len(log))
	}
	cut := func(frac float64) int { // a rune boundary near frac of the log
		n := int(float64(len(log)) * frac)
		for !utf8.RuneStart(log[n]) {
			n++
		}
		return n
	}
	p40, p80 := cut(0.4), cut(0.8)
	tests := []struct {
		name      string
		steps     []tailStep
		wantConns int
	}{
		{
			name: "normal close of a finished job",
			steps: []tailStep{
				{status: synapse.JobRunning, frames: split(log, 4096, 60000, 7), after: synapse.JobSucceeded, close: "normal"},
			},
			wantConns: 1,
		},
		{
			name: "drop while running, restart at byte 0, then succeed",
			steps: []tailStep{
				{status: synapse.JobRunning, frames: split(log[:p40], 1000, 40000, 3), close: "drop"},
				{status: synapse.JobRunning, frames: split(log, 7000, 50001, 13), after: synapse.JobSucceeded, close: "normal"},
			},
			wantConns: 2,
		},
		{
			name: "drop while running, then drop after success: drain once",
			steps: []tailStep{
				{status: synapse.JobRunning, frames: split(log[:p40], 33000), close: "drop"},
				{status: synapse.JobRunning, frames: split(log[:p80], 2500, 45000), after: synapse.JobSucceeded, close: "drop"},
				{frames: split(log, 100000), close: "drop"},
			},
			wantConns: 3,
		},
		{
			name: "normal close while running: reconnect",
			steps: []tailStep{
				{status: synapse.JobRunning, frames: split(log[:p40], 9000), close: "normal"},
				{status: synapse.JobRunning, frames: split(log[:p40], 500), close: "normal"}, // nothing new
				{status: synapse.JobRunning, frames: split(log, 65536), after: synapse.JobSucceeded, close: "normal"},
			},
			wantConns: 3,
		},
		{
			name: "job finished before the tail: empty stream",
			steps: []tailStep{
				{status: synapse.JobFailed, close: "normal"},
			},
			wantConns: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &tailServer{t: t, steps: tt.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			var got strings.Builder
			var chunks int
			err := newTestClient(t, srv.URL).Tail(testCtx(t), "j1", func(chunk string) error {
				if chunk == "" {
					t.Error("empty chunk")
				}
				chunks++
				got.WriteString(chunk)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := log
			if len(tt.steps) == 1 && tt.steps[0].frames == nil {
				want = ""
			}
			if got.String() != want {
				g := got.String()
				i := 0
				for i < min(len(g), len(want)) && g[i] == want[i] {
					i++
				}
				t.Fatalf("got %d bytes in %d chunks, want %d; first difference at byte %d", len(g), chunks, len(want), i)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.conns != tt.wantConns {
				t.Errorf("%d connections, want %d", s.conns, tt.wantConns)
			}
		})
	}
}

func TestTailCallbackErrorAndCancel(t *testing.T) {
	s := &tailServer{t: t, steps: []tailStep{
		{status: synapse.JobRunning, frames: []string{"a\n", "b\n", "c\n"}, close: "normal"},
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	stop := errors.New("enough")
	var got []string
	err := newTestClient(t, srv.URL).Tail(testCtx(t), "j1", func(chunk string) error {
		got = append(got, chunk)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || !slices.Equal(got, []string{"a\n", "b\n"}) {
		t.Fatalf("Tail = %v, chunks %q", err, got)
	}

	// A silent stream (driver not started) ends with ctx.
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/jobs/j1/logs/tail" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			<-r.Context().Done()
			return
		}
		writeJSON(w, map[string]any{"type": "SUBMISSION", "submission_id": "j1", "status": "PENDING"})
	}))
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := newTestClient(t, silent.URL).Tail(ctx, "j1", func(string) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Tail = %v", err)
	}
}

func TestTailGivesUp(t *testing.T) {
	var tails atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/jobs/j1/logs/tail":
			tails.Add(1)
			writeText(w, 500, "Traceback (most recent call last):\naiohttp.ClientConnectorError: Cannot connect to host 10.0.0.5:52365")
		case "/api/jobs/j1":
			writeJSON(w, map[string]any{"type": "SUBMISSION", "submission_id": "j1", "status": "RUNNING"})
		case "/api/jobs/j2/logs/tail":
			writeText(w, 401, "Unauthorized")
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	err := c.Tail(testCtx(t), "j1", func(string) error { return nil })
	var oe *OutageError
	if !errors.As(err, &oe) || oe.For < 150*time.Millisecond ||
		!strings.Contains(err.Error(), "500 Internal Server Error\nTraceback (most recent call last):\naiohttp.ClientConnectorError") {
		t.Fatalf("err = %v", err)
	}
	if n := tails.Load(); n < 3 {
		t.Errorf("%d connects within the outage window, want several", n)
	}
	// A 4xx handshake answer is final.
	err = c.Tail(testCtx(t), "j2", func(string) error { return nil })
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(err.Error(), "set RAY_AUTH_TOKEN") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckSubmissionID(t *testing.T) {
	for id, ok := range map[string]bool{
		"synapse-train-1a2b3c4d": true, "job_1.2": true, "A": true, strings.Repeat("x", 128): true,
		"": false, "a/b": false, "../x": false, ".hidden": false, "-x": false, "has space": false, "é": false,
		strings.Repeat("x", 129): false, "a\nb": false,
	} {
		err := CheckSubmissionID(id)
		if (err == nil) != ok {
			t.Errorf("CheckSubmissionID(%q) = %v", id, err)
		}
		var se *SubmissionIDError
		if err != nil && (!errors.As(err, &se) || se.ExitCode() != 2) {
			t.Errorf("CheckSubmissionID(%q) = %T, want a usage error", id, err)
		}
	}
}

func TestAddressErrorIsUsage(t *testing.T) {
	for _, addr := range []string{"ftp://x", "http://", "host:99999", "a b"} {
		_, err := NewClient(addr)
		var ae *AddressError
		if !errors.As(err, &ae) || ae.ExitCode() != 2 || !strings.Contains(err.Error(), addr) {
			t.Errorf("NewClient(%q) = %v", addr, err)
		}
	}
	t.Setenv("RAY_ADDRESS", "gopher://x")
	if _, err := NewClient(""); err == nil || !strings.Contains(err.Error(), "RAY_ADDRESS") {
		t.Errorf("bad RAY_ADDRESS: %v", err)
	}
}

// TestTailRidesOutOutage: the dashboard goes away mid-job (connects and
// status checks fail) for longer than many retries; once it is back the
// log continues with no line shown twice or lost.
func TestTailRidesOutOutage(t *testing.T) {
	log := tailLog()
	half := len(log) / 2
	for !utf8.RuneStart(log[half]) {
		half++
	}
	ts := &tailServer{t: t, steps: []tailStep{
		{status: synapse.JobRunning, frames: split(log[:half], 3000), close: "drop"},
		{status: synapse.JobRunning, frames: split(log, 5000), after: synapse.JobSucceeded, close: "normal"},
	}}
	var down atomic.Bool
	var downSince time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if time.Since(downSince) < 400*time.Millisecond {
				writeText(w, 502, "Bad Gateway") // the dashboard restarting behind a proxy
				return
			}
			down.Store(false)
		}
		ts.ServeHTTP(w, r)
		if r.URL.Path == "/api/jobs/j1/logs/tail" && !down.Load() && ts.conns == 1 {
			downSince = time.Now()
			down.Store(true)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	c.outageWindow = 5 * time.Second
	var got strings.Builder
	if err := c.Tail(testCtx(t), "j1", func(s string) error { got.WriteString(s); return nil }); err != nil {
		t.Fatalf("Tail: %v", err)
	}
	if got.String() != log {
		t.Errorf("got %d bytes, want the %d bytes of the log exactly once", got.Len(), len(log))
	}
}
