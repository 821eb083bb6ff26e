package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
)

// backend records requests; fail says how to answer each (0 = 200).
type backend struct {
	mu       sync.Mutex
	requests []string // "METHOD PATH BODY"
	fail     func(n int, method, body string) int
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	n := len(b.requests)
	b.requests = append(b.requests, r.Method+" "+r.URL.Path+" "+string(body))
	b.mu.Unlock()
	if r.Header.Get("Synapse-Access-Token") != "Token tok" {
		w.WriteHeader(401)
		return
	}
	if b.fail != nil {
		if code := b.fail(n, r.Method, string(body)); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	w.WriteHeader(200)
}

func (b *backend) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

func TestReporterFinalStatusRetried(t *testing.T) {
	finals := 0
	b := &backend{fail: func(n int, method, body string) int {
		if strings.Contains(body, "SUCCEEDED") {
			if finals++; finals <= 2 { // the server is down twice
				return 503
			}
		}
		return 0
	}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	var warn bytes.Buffer
	r := New(srv.URL+"/", "tok", "job-1", &warn)
	r.deadline = 30 * time.Second
	r.Start(t.Context())
	r.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelSuccess, Message: "hi"})
	r.Handle(synapse.Event{Type: synapse.EventProgress, Time: time.Now(), Category: "train", Current: 1, Total: 1, Percent: 100, ETA: 0})
	r.Finish(t.Context(), time.Second, json.RawMessage(`{"ok":true}`), nil)
	reqs := b.all()
	last := reqs[len(reqs)-1]
	if !strings.HasPrefix(last, "PATCH /jobs/job-1/ ") || !strings.Contains(last, `"status":"SUCCEEDED"`) || !strings.Contains(last, `"time_elapsed":1`) {
		t.Errorf("last request = %s", last)
	}
	var logs, patches int
	for _, q := range reqs {
		switch {
		case strings.HasPrefix(q, "POST /logs/") && strings.Contains(q, `"content":"hi"`) && strings.Contains(q, `"level":"success"`):
			logs++
		case strings.HasPrefix(q, "PATCH"):
			patches++
		}
	}
	if logs != 1 || patches != 5 { // RUNNING, records, and the final status three times
		t.Errorf("%d log requests, %d patches; requests = %q", logs, patches, reqs)
	}
	if strings.Count(warn.String(), "WARNING") != 1 {
		t.Errorf("warnings = %q, want exactly one", warn.String())
	}
}

func TestReporterFailureAndRefusal(t *testing.T) {
	b := &backend{fail: func(n int, method, _ string) int {
		if method == "PATCH" && n > 0 {
			return 400 // the job has ended: not retried
		}
		return 0
	}}
	srv := httptest.NewServer(b)
	defer srv.Close()
	r := New(srv.URL, "tok", "job-2", io.Discard)
	r.Start(t.Context())
	start := time.Now()
	r.Finish(t.Context(), 0, nil, errors.New("disk full"))
	if time.Since(start) > 5*time.Second {
		t.Errorf("a refused final status was retried for %v", time.Since(start))
	}
	reqs := b.all()
	last := reqs[len(reqs)-1]
	if !strings.Contains(last, `"status":"FAILED"`) || !strings.Contains(last, `"error":"disk full"`) || !strings.Contains(last, `"error_type":"execution"`) {
		t.Errorf("final = %s", last)
	}
}

// TestReporterFailedStepKeepsPercent: the final PATCH of a run whose step
// failed carries the percent the step reached (examples/train failing at
// epoch 2 of 3: 33.33), not 0.
func TestReporterFailedStepKeepsPercent(t *testing.T) {
	b := &backend{}
	srv := httptest.NewServer(b)
	defer srv.Close()
	r := New(srv.URL, "tok", "job-3", io.Discard)
	r.Start(t.Context())
	r.Handle(synapse.Event{Type: synapse.EventProgress, Time: time.Now(), Category: "train", Current: 1, Total: 3, Percent: 33.33, ETA: time.Second})
	r.Handle(synapse.Event{Type: synapse.EventProgress, Time: time.Now(), Level: synapse.LevelError, Category: "train", Failed: true, ETA: -1})
	r.Finish(t.Context(), time.Second, nil, errors.New("epoch 2: loss diverged"))
	reqs := b.all()
	last := reqs[len(reqs)-1]
	var body struct {
		Status         string
		ProgressRecord synapse.ProgressRecord `json:"progress_record"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(last, " ", 3)[2]), &body); err != nil {
		t.Fatalf("final %s: %v", last, err)
	}
	st := body.ProgressRecord.Steps["train"]
	if body.Status != "FAILED" || st.Status != "failed" || st.Percent != 33.33 || body.ProgressRecord.Current.Percent != 33.33 {
		t.Errorf("final = %s; want FAILED with step train failed at 33.33%%", last)
	}
}

func TestLogEntryForms(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		e    synapse.Event
		want string
	}{
		{synapse.Event{Type: synapse.EventMessage, Time: now, Level: synapse.LevelDanger, Message: "m"}, `{"data":{"content":"m"},"datetime":"2026-12-04T10:00:00Z","event":"message","job":"j","level":"danger"}`},
		{synapse.Event{Type: synapse.EventMetric, Time: now, Category: "train", Key: "loss", Value: 0.5, Data: map[string]any{"epoch": 1}}, `{"data":{"category":"train","key":"loss","metrics":{"epoch":1},"value":0.5},"datetime":"2026-12-04T10:00:00Z","event":"metric","job":"j","level":"info","step":"train"}`},
		{synapse.Event{Type: synapse.EventLog, Time: now, Event: "cm", File: "data:image/png;base64,AA=="}, `{"data":{},"datetime":"2026-12-04T10:00:00Z","event":"cm","file":"data:image/png;base64,AA==","job":"j","level":"info"}`},
		{synapse.Event{Type: synapse.EventProgress, Time: now}, `null`},
	}
	for _, tt := range tests {
		b, _ := json.Marshal(logEntry(tt.e, "j"))
		if string(b) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.e.Type, b, tt.want)
		}
	}
}

// TestReporterWarnsPlainly: a backend that is down or failing is warned
// about once, in plain words (no Go URL-error text such as `Patch "…":
// dial tcp …`), saying the reporter retries.
func TestReporterWarnsPlainly(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + down.Addr().String()
	down.Close() // nothing listens there now: connection refused
	failing := httptest.NewServer(&backend{fail: func(int, string, string) int { return 503 }})
	defer failing.Close()
	tests := []struct {
		name, host, want string
	}{
		{"server down", refused, "WARNING: report to " + refused + ": cannot reach the server (connection refused); retrying for up to 2 minutes (the run goes on; later reporting problems are not shown)\n"},
		{"server failing", failing.URL, "WARNING: report to " + failing.URL + "/jobs/j/: HTTP 503 Service Unavailable; retrying for up to 2 minutes (the run goes on; later reporting problems are not shown)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warn bytes.Buffer
			r := New(tt.host, "tok", "j", &warn)
			r.Start(t.Context())
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond) // the final status gives up
			defer cancel()
			r.Finish(ctx, 0, nil, nil)
			if warn.String() != tt.want {
				t.Errorf("warning = %q, want %q", warn.String(), tt.want)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	dial := func(err error) error {
		return &url.Error{Op: "Patch", URL: "http://127.0.0.1:1/jobs/j/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	tests := []struct {
		err  error
		want string
	}{
		{dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "connection refused"},
		{dial(os.NewSyscallError("read", syscall.ECONNRESET)), "connection reset"},
		{dial(&net.DNSError{Err: "no such host", Name: "synapse.invalid", IsNotFound: true}), "host synapse.invalid not found"},
		{&url.Error{Op: "Patch", URL: "http://h/", Err: context.DeadlineExceeded}, "timed out"},
		{&url.Error{Op: "Patch", URL: "http://h/", Err: io.EOF}, "the server closed the connection"},
		{dial(errors.New("network is unreachable")), "network is unreachable"},
	}
	for _, tt := range tests {
		if got := unreachable(tt.err); got != tt.want {
			t.Errorf("unreachable(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
