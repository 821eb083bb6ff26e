package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// directURL starts a worker with direct runs and returns its run URL.
func directURL(t *testing.T, maxOngoing int, actions ...synapse.Action) (*workerHarness, string) {
	t.Helper()
	h := startWorkerWith(t, workerOptions{Listen: "127.0.0.1:0", MaxOngoing: maxOngoing}, io.Discard, actions...)
	ready := h.next()
	if ready.Type != protocol.TypeReady || ready.Direct == nil {
		t.Fatalf("ready message without direct: %+v", ready)
	}
	if ready.Direct.Port == 0 || len(ready.Direct.Token) != 32 {
		t.Fatalf("direct = %+v, want a port and a 32-hex token", ready.Direct)
	}
	return h, fmt.Sprintf("http://127.0.0.1:%d/%s/run", ready.Direct.Port, ready.Direct.Token)
}

func postRun(t *testing.T, ctx context.Context, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestDirectRun(t *testing.T) {
	_, url := directURL(t, 1, wEcho, wFail)
	tests := []struct {
		name, body string
		check      func(t *testing.T, o worker.Outcome, events []synapse.Event)
	}{
		{"result and events", `{"action":"echo","params":{"n":2},"job_id":"j1","env":{"REGION":"kr"}}`, func(t *testing.T, o worker.Outcome, events []synapse.Event) {
			got, _ := json.Marshal(o.Result)
			if o.Err != nil || string(got) != `{"job":"j1","n":2,"region":"kr"}` {
				t.Fatalf("outcome = %s, %v", got, o.Err)
			}
			var progress int
			for _, e := range events {
				if e.Type == synapse.EventProgress {
					progress++
				}
			}
			if progress != 3 {
				t.Errorf("got %d progress events, want 3 (0, 1, 2 of 2)", progress)
			}
		}},
		{"validation error", `{"action":"echo","params":{"n":0}}`, func(t *testing.T, o worker.Outcome, _ []synapse.Event) {
			var ve *synapse.ValidationError
			if !errors.As(o.Err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "n" {
				t.Fatalf("err = %v, want a validation error on n", o.Err)
			}
		}},
		{"action error", `{"action":"fail"}`, func(t *testing.T, o worker.Outcome, _ []synapse.Event) {
			var ee *synapse.ExecutionError
			if !errors.As(o.Err, &ee) || !strings.Contains(o.Err.Error(), "no space left") {
				t.Fatalf("err = %v, want the action's error", o.Err)
			}
		}},
		{"unknown action", `{"action":"ech"}`, func(t *testing.T, o worker.Outcome, _ []synapse.Event) {
			if !errors.Is(o.Err, synapse.ErrActionNotFound) {
				t.Fatalf("err = %v, want action not found", o.Err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postRun(t, t.Context(), url, tt.body)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			rec := &recordLogger{}
			o := worker.Read(resp.Body, "", rec)
			if !o.Settled {
				t.Fatalf("stream ended without an outcome: %v", o.Err)
			}
			tt.check(t, o, rec.events())
		})
	}
}

func TestDirectRefusals(t *testing.T) {
	_, url := directURL(t, 1, wEcho)
	base := strings.TrimSuffix(url, "/run")
	tests := []struct {
		name, method, url, body string
		status                  int
		want                    string
	}{
		{"wrong token", http.MethodPost, base[:strings.LastIndexByte(base, '/')] + "/0123456789abcdef0123456789abcdef/run", `{"action":"echo"}`, http.StatusNotFound, "token does not match"},
		{"no action", http.MethodPost, url, `{"params":{}}`, http.StatusBadRequest, "must be a non-empty string"},
		{"not JSON", http.MethodPost, url, `{`, http.StatusBadRequest, "the body is not JSON"},
		{"array body", http.MethodPost, url, `[1]`, http.StatusBadRequest, "the body must be a JSON object"},
		{"null body", http.MethodPost, url, `null`, http.StatusBadRequest, "the body must be a JSON object"},
		{"trailing data", http.MethodPost, url, `{"action":"echo"} x`, http.StatusBadRequest, "more after its JSON object"},
		{"env not an object", http.MethodPost, url, `{"action":"echo","env":"x"}`, http.StatusBadRequest, `must be an object`},
		{"job_id not a string", http.MethodPost, url, `{"action":"echo","job_id":5}`, http.StatusBadRequest, `must be a string`},
		{"GET", http.MethodGet, url, "", http.StatusNotFound, "want POST /TOKEN/run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, tt.url, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("got %d %s, want %d containing %q", resp.StatusCode, b, tt.status, tt.want)
			}
		})
	}
}

// A direct run is admitted only below max_ongoing_requests runs in flight,
// counting the runs of stdin: the caller then goes through the host.
func TestDirectBusy(t *testing.T) {
	h, url := directURL(t, 1, wEcho, wWait)
	h.send(protocol.Request{Type: protocol.TypeRun, ID: "1", Action: "wait"})
	if m := h.next(); m.ID != "1" || m.Type != protocol.TypeEvent {
		t.Fatalf("want the wait run's first event, got %+v", m)
	}
	resp := postRun(t, t.Context(), url, `{"action":"echo"}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "busy") {
		t.Fatalf("got %d %s, want 503 busy", resp.StatusCode, b)
	}
	h.send(protocol.Request{Type: protocol.TypeCancel, ID: "1"})
	if _, out := h.until("1"); out.Type != protocol.TypeError {
		t.Fatalf("cancelled run ended with %+v", out)
	}
	// Free again: the run count went back down.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := postRun(t, t.Context(), url, `{"action":"echo"}`)
		o := worker.Read(resp.Body, "", synapse.DiscardLogger)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && o.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the run ended: %d %v", resp.StatusCode, o.Err)
		}
	}
}

// Closing the request cancels the run: its context ends.
func TestDirectCancel(t *testing.T) {
	ended := make(chan error, 1)
	wait := synapse.NewAction("wait", func(ctx *synapse.Context, p map[string]any) (any, error) {
		ctx.LogMessage("waiting", synapse.LevelInfo)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	})
	_, url := directURL(t, 2, wait)
	ctx, cancel := context.WithCancel(t.Context())
	resp := postRun(t, ctx, url, `{"action":"wait"}`)
	defer resp.Body.Close()
	// Read the first event: the run started.
	line, err := readLine(resp.Body)
	if err != nil || !bytes.Contains(line, []byte("waiting")) {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("action's context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing the request did not cancel the run")
	}
}

// A worker that cannot listen says why and serves stdin alone.
func TestDirectListenFails(t *testing.T) {
	var stderr syncBuffer
	h := startWorkerWith(t, workerOptions{Listen: "256.0.0.1:0"}, &stderr, wEcho)
	ready := h.next()
	if ready.Type != protocol.TypeReady || ready.Direct != nil {
		t.Fatalf("ready = %+v, want no direct", ready)
	}
	if !strings.Contains(stderr.String(), "no direct runs") {
		t.Errorf("stderr = %q", stderr.String())
	}
	h.send(protocol.Request{Type: protocol.TypeRun, ID: "1", Action: "echo"})
	if _, out := h.until("1"); out.Type != protocol.TypeResult {
		t.Fatalf("stdin run ended with %+v", out)
	}
}

func readLine(r io.Reader) ([]byte, error) {
	var out []byte
	b := make([]byte, 1)
	for {
		if _, err := r.Read(b); err != nil {
			return out, err
		}
		if b[0] == '\n' {
			return out, nil
		}
		out = append(out, b[0])
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type recordLogger struct {
	mu sync.Mutex
	ev []synapse.Event
}

func (r *recordLogger) Handle(e synapse.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev = append(r.ev, e)
}

func (r *recordLogger) events() []synapse.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]synapse.Event(nil), r.ev...)
}

// The worker's slots are shared: with max_ongoing_requests 1, a run from
// stdin waits while a direct run holds the slot.
func TestDirectSharesSlots(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	hold := synapse.NewAction("hold", func(ctx *synapse.Context, p map[string]any) (any, error) {
		ctx.LogMessage("holding", synapse.LevelInfo)
		<-ctx.Done()
		note("hold ended")
		return nil, ctx.Err()
	})
	mark := synapse.NewAction("mark", func(ctx *synapse.Context, p map[string]any) (any, error) {
		note("mark ran")
		return "ok", nil
	})
	h, url := directURL(t, 1, hold, mark)
	ctx, cancel := context.WithCancel(t.Context())
	resp := postRun(t, ctx, url, `{"action":"hold"}`)
	defer resp.Body.Close()
	if line, err := readLine(resp.Body); err != nil || !bytes.Contains(line, []byte("holding")) {
		t.Fatalf("first line %q, %v", line, err)
	}
	h.send(protocol.Request{Type: protocol.TypeRun, ID: "1", Action: "mark"})
	cancel() // frees the slot
	if _, out := h.until("1"); out.Type != protocol.TypeResult {
		t.Fatalf("stdin run ended with %+v", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ", ") != "hold ended, mark ran" {
		t.Fatalf("order = %v: the stdin run did not wait for the slot", order)
	}
}

// A direct run must name the worker's application config.
func TestDirectConfig(t *testing.T) {
	h := startWorkerWith(t, workerOptions{Listen: "127.0.0.1:0", Config: "cafe01"}, io.Discard, wEcho)
	ready := h.next()
	url := fmt.Sprintf("http://127.0.0.1:%d/%s/run", ready.Direct.Port, ready.Direct.Token)
	for _, tt := range []struct {
		header string
		status int
	}{{"", http.StatusConflict}, {"cafe02", http.StatusConflict}, {"cafe01", http.StatusOK}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{"action":"echo"}`))
		if tt.header != "" {
			req.Header.Set(protocol.ConfigHeader, tt.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("config %q: %d %s, want %d", tt.header, resp.StatusCode, b, tt.status)
		}
	}
}

// When stdin ends the worker stops taking direct runs at once, while its
// stdin runs finish.
func TestDirectStopsAtEOF(t *testing.T) {
	release := make(chan struct{})
	slow := synapse.NewAction("slow", func(ctx *synapse.Context, p map[string]any) (any, error) {
		ctx.LogMessage("started", synapse.LevelInfo)
		<-release
		return "done", nil
	})
	h, url := directURL(t, 2, slow, wEcho)
	h.send(protocol.Request{Type: protocol.TypeRun, ID: "1", Action: "slow"})
	if m := h.next(); m.ID != "1" {
		t.Fatalf("want the slow run's first event, got %+v", m)
	}
	h.inW.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{"action":"echo"}`))
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			break // refused: no more direct runs
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("direct runs still taken after stdin ended (status %d)", resp.StatusCode)
		}
	}
	close(release)
	if _, out := h.until("1"); out.Type != protocol.TypeResult {
		t.Fatalf("the stdin run ended with %+v", out)
	}
}
