package plugin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// direct serves runs over HTTP beside the worker's stdin (docs/protocol.md,
// "Direct calls"): the task-mode host announces its address, so callers
// reach the worker without crossing the Ray Serve proxy and the Python
// host. Runs of both paths share the worker's slots: a direct run without
// a free one is refused (503), so max_ongoing_requests stays a cap.
type direct struct {
	set    *synapse.ActionSet
	base   *synapse.Env
	flush  func()
	token  string
	config string // the application config's fingerprint; "" accepts any
	slots  chan struct{}
	ids    atomic.Uint64
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
}

// startDirect listens on addr (HOST:PORT, port 0 for any) and serves
// direct runs until close.
func startDirect(ctx context.Context, set *synapse.ActionSet, base *synapse.Env, addr, config string, slots chan struct{}, flush func()) (*direct, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for direct runs on %s: %w", addr, err)
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok) // never fails (crypto/rand)
	d := &direct{set: set, base: base, flush: flush, token: hex.EncodeToString(tok), config: config,
		slots: slots, ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{token}/run", d.run)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		directError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path+" (want POST /TOKEN/run)")
	})
	d.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Runs see the worker's context: SIGTERM cancels them as it cancels
		// the runs of stdin.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		defer close(d.done)
		_ = d.srv.Serve(ln) // ErrServerClosed after close
	}()
	return d, nil
}

// info is the ready message's Direct field.
func (d *direct) info() *protocol.Direct {
	return &protocol.Direct{Port: d.ln.Addr().(*net.TCPAddr).Port, Token: d.token}
}

// close stops taking runs and waits for those in flight (their callers
// still get their outcome).
func (d *direct) close() {
	_ = d.srv.Shutdown(context.Background())
	<-d.done
}

// directRequest is the body of a direct run: the task-mode run call's body.
type directRequest struct {
	Action string
	Params json.RawMessage
	JobID  string
	Env    map[string]any
}

// parseDirect reads a run body with the Python host's rules and words
// (synapse_serve.py _parse_run): an object with a non-empty string
// "action", any JSON "params", a string "job_id" and an object "env".
func parseDirect(w http.ResponseWriter, r *http.Request) (directRequest, int, string) {
	var req directRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, protocol.MaxLine))
	var body map[string]json.RawMessage
	if err := dec.Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes (the worker protocol's limit)", protocol.MaxLine)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return req, http.StatusBadRequest, "the body must be a JSON object"
		}
		return req, http.StatusBadRequest, "the body is not JSON: " + err.Error()
	}
	if body == nil {
		return req, http.StatusBadRequest, "the body must be a JSON object"
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, http.StatusBadRequest, "the body has more after its JSON object"
	}
	null := func(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }
	if json.Unmarshal(body["action"], &req.Action) != nil || req.Action == "" {
		return req, http.StatusBadRequest, `"action" must be a non-empty string`
	}
	if !null(body["job_id"]) && json.Unmarshal(body["job_id"], &req.JobID) != nil {
		return req, http.StatusBadRequest, `"job_id" must be a string`
	}
	if !null(body["env"]) && json.Unmarshal(body["env"], &req.Env) != nil {
		return req, http.StatusBadRequest, `"env" must be an object`
	}
	if !null(body["params"]) {
		req.Params = body["params"]
	}
	return req, 0, ""
}

func (d *direct) run(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.PathValue("token")), []byte(d.token)) != 1 {
		directError(w, http.StatusNotFound, "no such worker (the token does not match: the worker was restarted or replaced)")
		return
	}
	if got := r.Header.Get(protocol.ConfigHeader); d.config != "" && got != d.config {
		msg := fmt.Sprintf("this worker runs application config %.12s, not %.12s (the application was changed since its address was learned)", d.config, got)
		if got == "" {
			msg = fmt.Sprintf("the call names no application config (%s); this worker runs %.12s", protocol.ConfigHeader, d.config)
		}
		directError(w, http.StatusConflict, msg)
		return
	}
	req, status, msg := parseDirect(w, r)
	if status != 0 {
		directError(w, status, msg)
		return
	}
	select {
	case d.slots <- struct{}{}:
	default:
		// The run did not start: the caller goes through the proxy instead.
		directError(w, http.StatusServiceUnavailable, "busy: "+strconv.Itoa(len(d.slots))+" runs in flight (max_ongoing_requests "+strconv.Itoa(cap(d.slots))+")")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	out := protocol.NewWriter(flushWriter{w: w, rc: rc})
	id := "direct-" + strconv.FormatUint(d.ids.Add(1), 10)
	serveRun(r.Context(), d.set, d.base, protocol.Request{Type: protocol.TypeRun, ID: id, Action: req.Action, Params: req.Params, JobID: req.JobID, Env: req.Env}, out, d.flush, func() { <-d.slots })
}

// flushWriter sends each protocol line at once (events stream live).
type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

func directError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
