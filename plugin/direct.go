package plugin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
// host. Runs of both paths share inFlight, which caps direct admissions.
type direct struct {
	set      *synapse.ActionSet
	base     *synapse.Env
	flush    func()
	token    string
	max      int64
	inFlight *atomic.Int64
	ids      atomic.Uint64
	srv      *http.Server
	ln       net.Listener
	done     chan struct{}
}

// startDirect listens on addr (HOST:PORT, port 0 for any) and serves
// direct runs until close. maxOngoing < 1 means 1.
func startDirect(ctx context.Context, set *synapse.ActionSet, base *synapse.Env, addr string, maxOngoing int, inFlight *atomic.Int64, flush func()) (*direct, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for direct runs on %s: %w", addr, err)
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok) // never fails (crypto/rand)
	d := &direct{set: set, base: base, flush: flush, token: hex.EncodeToString(tok),
		max: int64(max(maxOngoing, 1)), inFlight: inFlight, ln: ln, done: make(chan struct{})}
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
	Action string          `json:"action"`
	Params json.RawMessage `json:"params"`
	JobID  string          `json:"job_id"`
	Env    map[string]any  `json:"env"`
}

func (d *direct) run(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.PathValue("token")), []byte(d.token)) != 1 {
		directError(w, http.StatusNotFound, "no such worker (the token does not match: the worker was restarted or replaced)")
		return
	}
	var req directRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, protocol.MaxLine))
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			directError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", protocol.MaxLine))
			return
		}
		directError(w, http.StatusBadRequest, "the body is not a JSON object: "+err.Error())
		return
	}
	if req.Action == "" {
		directError(w, http.StatusBadRequest, `"action" must be a non-empty string`)
		return
	}
	if n := d.inFlight.Add(1); n > d.max {
		d.inFlight.Add(-1)
		// The run did not start: the caller goes through the proxy instead.
		directError(w, http.StatusServiceUnavailable, "busy: "+strconv.FormatInt(n-1, 10)+" runs in flight (max_ongoing_requests "+strconv.FormatInt(d.max, 10)+")")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	out := protocol.NewWriter(flushWriter{w: w, rc: rc})
	id := "direct-" + strconv.FormatUint(d.ids.Add(1), 10)
	serveRun(r.Context(), d.set, d.base, protocol.Request{Type: protocol.TypeRun, ID: id, Action: req.Action, Params: req.Params, JobID: req.JobID, Env: req.Env}, out, d.flush, func() { d.inFlight.Add(-1) })
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
