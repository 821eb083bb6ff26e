package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// workerHarness runs serveWorker on pipes and reads its messages.
type workerHarness struct {
	t    *testing.T
	in   *protocol.Writer
	inW  io.WriteCloser
	msgs chan protocol.Message
	done chan error
}

func startWorker(t *testing.T, actions ...synapse.Action) *workerHarness {
	t.Helper()
	return startWorkerWith(t, workerOptions{}, io.Discard, actions...)
}

// startWorkerWith is startWorker with the host's options and stderr.
func startWorkerWith(t *testing.T, opts workerOptions, stderr io.Writer, actions ...synapse.Action) *workerHarness {
	t.Helper()
	set, err := synapse.NewActionSet(actions)
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &workerHarness{t: t, in: protocol.NewWriter(inW), inW: inW, msgs: make(chan protocol.Message, 100), done: make(chan error, 1)}
	go func() {
		h.done <- serveWorker(context.Background(), set, inR, outW, stderr, func() {}, opts)
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, protocol.MaxLine)
		for sc.Scan() {
			var m protocol.Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("worker wrote a line that is not JSON: %q", sc.Text())
				continue
			}
			h.msgs <- m
		}
		close(h.msgs)
	}()
	t.Cleanup(func() { inW.Close() })
	return h
}

func (h *workerHarness) send(r protocol.Request) {
	h.t.Helper()
	if err := h.in.Write(r); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next message, failing after a deadline.
func (h *workerHarness) next() protocol.Message {
	h.t.Helper()
	select {
	case m, ok := <-h.msgs:
		if !ok {
			h.t.Fatal("worker output ended")
		}
		return m
	case <-time.After(10 * time.Second):
		h.t.Fatal("no message from the worker within 10s")
	}
	return protocol.Message{}
}

// until returns the events of run id up to and including its outcome.
func (h *workerHarness) until(id string) (events []synapse.Event, outcome protocol.Message) {
	h.t.Helper()
	for {
		m := h.next()
		if m.ID != id {
			continue
		}
		if m.Type == protocol.TypeEvent {
			var e synapse.Event
			if err := json.Unmarshal(m.Event, &e); err != nil {
				h.t.Fatalf("bad event %s: %v", m.Event, err)
			}
			events = append(events, e)
			continue
		}
		return events, m
	}
}

type wp struct {
	N int `json:"n" default:"3" validate:"min=1"`
}

var (
	wEcho = synapse.NewAction("echo", func(ctx *synapse.Context, p wp) (map[string]any, error) {
		for i := 0; i <= p.N; i++ {
			ctx.SetProgress(i, p.N, "loop")
		}
		ctx.Log("env", map[string]any{"region": ctx.Env().GetString("REGION", "none")})
		return map[string]any{"n": p.N, "job": ctx.JobID(), "region": ctx.Env().GetString("REGION", "none")}, nil
	}, synapse.WithDescription("echo n"))
	wFail  = synapse.NewAction("fail", func(ctx *synapse.Context, p map[string]any) (any, error) { return nil, errors.New("no space left") })
	wCrash = synapse.NewAction("crash", func(ctx *synapse.Context, p map[string]any) (any, error) { panic("boom") })
	wWait  = synapse.NewAction("wait", func(ctx *synapse.Context, p map[string]any) (any, error) {
		ctx.LogMessage("waiting", synapse.LevelInfo)
		<-ctx.Done()
		return nil, ctx.Err()
	})
)

func TestWorkerProtocol(t *testing.T) {
	h := startWorker(t, wEcho, wFail, wCrash, wWait)
	ready := h.next()
	if ready.Type != protocol.TypeReady || ready.Protocol != protocol.Version || ready.PID == 0 || len(ready.Actions) != 4 || ready.Actions[0].Name != "echo" || ready.Actions[0].Description != "echo n" {
		t.Fatalf("ready = %+v", ready)
	}

	t.Run("run", func(t *testing.T) {
		h.send(protocol.Request{Type: protocol.TypeRun, ID: "r1", Action: "echo", Params: json.RawMessage(`{"n": 2}`), JobID: "j1", Env: map[string]any{"REGION": "eu"}})
		events, out := h.until("r1")
		if out.Type != protocol.TypeResult || string(out.Result) != `{"job":"j1","n":2,"region":"eu"}` {
			t.Fatalf("outcome = %+v %s", out, out.Result)
		}
		var progress int
		for _, e := range events {
			if e.Type == synapse.EventProgress {
				progress++
			}
			if e.Action != "echo" || e.JobID != "j1" {
				t.Errorf("event lacks the run's identity: %+v", e)
			}
		}
		if progress != 3 || events[len(events)-1].Data["region"] != "eu" {
			t.Errorf("events = %+v", events)
		}
	})
	t.Run("defaults without params", func(t *testing.T) {
		h.send(protocol.Request{Type: protocol.TypeRun, ID: "r2", Action: "echo"})
		_, out := h.until("r2")
		if !strings.Contains(string(out.Result), `"n":3`) || !strings.Contains(string(out.Result), `"region":"none"`) {
			t.Fatalf("outcome = %s", out.Result)
		}
	})
	t.Run("typed errors", func(t *testing.T) {
		tests := []struct {
			req  protocol.Request
			want protocol.Error
		}{
			{protocol.Request{Type: protocol.TypeRun, ID: "e1", Action: "echo", Params: json.RawMessage(`{"n": 0}`)},
				protocol.Error{Kind: protocol.KindValidation, Action: "echo", Fields: []protocol.FieldError{{Field: "n", Message: "must be >= 1 (got 0)"}}}},
			{protocol.Request{Type: protocol.TypeRun, ID: "e2", Action: "ecoh"},
				protocol.Error{Kind: protocol.KindActionNotFound, Action: "ecoh", Suggestion: "echo"}},
			{protocol.Request{Type: protocol.TypeRun, ID: "e3", Action: "fail"},
				protocol.Error{Kind: protocol.KindExecution, Action: "fail", Message: "no space left"}},
			{protocol.Request{Type: protocol.TypeRun, ID: "e4", Action: "crash"},
				protocol.Error{Kind: protocol.KindExecution, Action: "crash", Message: "panic: boom", Panic: true}},
		}
		for _, tt := range tests {
			h.send(tt.req)
			_, out := h.until(tt.req.ID)
			got := out.Error
			if out.Type != protocol.TypeError || got == nil || got.Kind != tt.want.Kind || got.Action != tt.want.Action || got.Panic != tt.want.Panic {
				t.Errorf("%s: outcome = %+v", tt.req.ID, got)
				continue
			}
			if tt.want.Message != "" && got.Message != tt.want.Message {
				t.Errorf("%s: message = %q, want %q", tt.req.ID, got.Message, tt.want.Message)
			}
			if tt.want.Suggestion != got.Suggestion || len(got.Fields) != len(tt.want.Fields) {
				t.Errorf("%s: error = %+v", tt.req.ID, got)
			}
			if tt.want.Panic && !strings.Contains(got.Stack, "worker_test.go") {
				t.Errorf("%s: no stack", tt.req.ID)
			}
			// The typed error survives the round trip.
			back := worker.FromError(got)
			if exit.Code(back) != map[string]int{protocol.KindValidation: 2, protocol.KindActionNotFound: 2, protocol.KindExecution: 1}[got.Kind] {
				t.Errorf("%s: rebuilt error %v has exit code %d", tt.req.ID, back, exit.Code(back))
			}
		}
	})
	t.Run("cancel", func(t *testing.T) {
		h.send(protocol.Request{Type: protocol.TypeRun, ID: "c1", Action: "wait"})
		for m := h.next(); m.ID != "c1" || m.Type != protocol.TypeEvent; m = h.next() {
		} // the run has started
		h.send(protocol.Request{Type: protocol.TypeCancel, ID: "c1"})
		_, out := h.until("c1")
		if out.Error == nil || out.Error.Cause != "canceled" {
			t.Fatalf("outcome = %+v", out.Error)
		}
		if err := worker.FromError(out.Error); !errors.Is(err, context.Canceled) || !errors.Is(err, synapse.ErrExecution) {
			t.Errorf("rebuilt error %v does not match context.Canceled", err)
		}
	})
	t.Run("ping and bad lines", func(t *testing.T) {
		h.send(protocol.Request{Type: protocol.TypePing, ID: "p1"})
		if m := h.next(); m.Type != protocol.TypePong || m.ID != "p1" {
			t.Fatalf("got %+v", m)
		}
		if _, err := h.inW.Write([]byte("not json\n")); err != nil {
			t.Fatal(err)
		}
		if m := h.next(); m.Type != protocol.TypeError || m.Error.Kind != protocol.KindProtocol {
			t.Fatalf("got %+v", m)
		}
		h.send(protocol.Request{Type: "dance", ID: "x"})
		if m := h.next(); m.Type != protocol.TypeError || !strings.Contains(m.Error.Message, `unknown request type "dance"`) {
			t.Fatalf("got %+v", m)
		}
		h.send(protocol.Request{Type: protocol.TypeRun, Action: "echo"})
		if m := h.next(); m.Type != protocol.TypeError || !strings.Contains(m.Error.Message, "unique id") {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("concurrent runs", func(t *testing.T) {
		h.send(protocol.Request{Type: protocol.TypeRun, ID: "slow", Action: "wait"})
		h.send(protocol.Request{Type: protocol.TypeRun, ID: "fast", Action: "echo"})
		_, out := h.until("fast") // finishes while "slow" is still running
		if out.Type != protocol.TypeResult {
			t.Fatalf("fast run: %+v", out)
		}
		h.send(protocol.Request{Type: protocol.TypeCancel, ID: "slow"})
		if _, out := h.until("slow"); out.Error == nil || out.Error.Cause != "canceled" {
			t.Fatalf("slow run: %+v", out)
		}
	})
	h.inW.Close()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("serveWorker: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop at end of input")
	}
}

func TestWireLoggerThrottlesProgress(t *testing.T) {
	var b strings.Builder
	l := newWireLogger("r", protocol.NewWriter(&b))
	progress := synapse.NewAction("progress", func(c *synapse.Context, _ struct{}) (any, error) {
		for i := 0; i <= 10000; i++ {
			c.SetProgress(i, 10000, "x")
		}
		return nil, nil
	})
	if _, err := synapse.NewLocalExecutor(synapse.WithLogger(l)).Execute(t.Context(), progress, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 101 {
		t.Errorf("%d progress messages for 10,001 calls, want 101", n)
	}
}
