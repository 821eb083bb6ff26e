package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// infos describes the actions of set for the `actions` command and the
// worker's ready message.
func infos(set *synapse.ActionSet, withSchema bool) []protocol.ActionInfo {
	names := set.Names()
	out := make([]protocol.ActionInfo, 0, len(names))
	for _, n := range names {
		a, _ := set.Lookup(n)
		info := protocol.ActionInfo{Name: n, Description: a.Description()}
		if withSchema {
			info.Schema = a.Schema()
		}
		out = append(out, info)
	}
	return out
}

// workerOptions are the worker host's settings (protocol.ListenEnv,
// protocol.MaxOngoingEnv, protocol.ConfigEnv).
type workerOptions struct {
	Listen     string // HOST:PORT for direct runs; empty: none
	MaxOngoing int    // runs at once, both paths; 0: no cap (1 with Listen)
	Config     string // the application config's fingerprint; direct runs must name it
}

// workerOptionsFromEnv reads the worker host's settings.
func workerOptionsFromEnv() workerOptions {
	n, _ := strconv.Atoi(os.Getenv(protocol.MaxOngoingEnv))
	return workerOptions{Listen: os.Getenv(protocol.ListenEnv), MaxOngoing: max(n, 0), Config: os.Getenv(protocol.ConfigEnv)}
}

// serveWorker speaks the worker protocol (docs/protocol.md) on r and w
// until r ends, then waits for the runs in flight. Runs are concurrent, at
// most opts.MaxOngoing at once (a run waits for a slot); cancelling ctx
// cancels them all. flush is called when a run ends, before its outcome is
// written (the captured stdout's Sync). With opts.Listen it also takes
// runs over HTTP (direct.go), which share the slots; if it cannot listen it
// says so on stderr and serves stdin alone. When r ends it stops taking
// direct runs first, then waits for every run in flight.
func serveWorker(ctx context.Context, set *synapse.ActionSet, r io.Reader, w io.Writer, stderr io.Writer, flush func(), opts workerOptions) error {
	out := protocol.NewWriter(w)
	base := synapse.EnvFromOS("")
	var slots chan struct{} // nil: no cap
	if opts.MaxOngoing > 0 || opts.Listen != "" {
		slots = make(chan struct{}, max(opts.MaxOngoing, 1))
	}
	ready := protocol.Message{Type: protocol.TypeReady, Protocol: protocol.Version, PID: os.Getpid(), Actions: infos(set, false)}
	var d *direct
	if opts.Listen != "" {
		var err error
		if d, err = startDirect(ctx, set, base, opts.Listen, opts.Config, slots, flush); err != nil {
			fmt.Fprintf(stderr, "synapse worker: no direct runs (callers go through the host): %v\n", err)
			d = nil
		} else {
			ready.Direct = d.info()
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running = map[string]context.CancelFunc{}
	)
	defer func() {
		if d != nil {
			d.close() // no new direct runs; those in flight end
		}
		wg.Wait()
	}()
	if err := out.Write(ready); err != nil {
		return err
	}
	sc := protocol.NewScanner(r)
	for sc.Scan() {
		var req protocol.Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			_ = out.Write(protocol.Message{Type: protocol.TypeError, Error: &protocol.Error{Kind: protocol.KindProtocol, Message: "read request: " + err.Error()}})
			continue
		}
		switch req.Type {
		case protocol.TypePing:
			_ = out.Write(protocol.Message{Type: protocol.TypePong, ID: req.ID})
		case protocol.TypeCancel:
			mu.Lock()
			if cancel := running[req.ID]; cancel != nil {
				cancel()
			}
			mu.Unlock()
		case protocol.TypeRun:
			mu.Lock()
			_, busy := running[req.ID]
			mu.Unlock()
			if req.ID == "" || busy {
				_ = out.Write(protocol.Message{Type: protocol.TypeError, ID: req.ID, Error: &protocol.Error{Kind: protocol.KindProtocol, Message: fmt.Sprintf("run request needs a unique id (got %q)", req.ID)}})
				continue
			}
			rctx, cancel := context.WithCancel(ctx)
			mu.Lock()
			running[req.ID] = cancel
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(running, req.ID)
					mu.Unlock()
					cancel()
				}()
				release := func() {}
				if slots != nil {
					select {
					case slots <- struct{}{}:
						release = func() { <-slots }
					case <-rctx.Done():
						// Cancelled while waiting for a slot: it never ran.
						_ = out.Write(protocol.Message{Type: protocol.TypeError, ID: req.ID, Error: worker.ToError(&synapse.ExecutionError{Action: req.Action, JobID: req.JobID, Err: rctx.Err()})})
						return
					}
				}
				serveRun(rctx, set, base, req, out, flush, release)
			}()
		default:
			_ = out.Write(protocol.Message{Type: protocol.TypeError, ID: req.ID, Error: &protocol.Error{Kind: protocol.KindProtocol, Message: fmt.Sprintf("unknown request type %q (want run, cancel or ping)", req.Type)}})
		}
	}
	return sc.Err()
}

// serveRun executes one run request and writes its events and outcome.
// ended is called once, just before the outcome is written, so a caller
// that starts its next run on reading the outcome finds this one counted
// out.
func serveRun(ctx context.Context, set *synapse.ActionSet, base *synapse.Env, req protocol.Request, out *protocol.Writer, flush, ended func()) {
	fail := func(err error) {
		ended()
		_ = out.Write(protocol.Message{Type: protocol.TypeError, ID: req.ID, Error: worker.ToError(err)})
	}
	action, err := set.Lookup(req.Action)
	if err != nil {
		fail(err)
		return
	}
	wire := newWireLogger(req.ID, out)
	exec := synapse.NewLocalExecutor(
		synapse.WithEnv(synapse.MergeEnv(base, synapse.NewEnv(req.Env))),
		synapse.WithJobID(req.JobID),
		synapse.WithLogger(wire))
	params := any(req.Params)
	if len(req.Params) == 0 {
		params = nil
	}
	result, err := exec.Execute(ctx, action, params)
	wire.Flush() // held-back progress, so the caller's progress record ends right
	flush()      // what the action printed goes out before its outcome
	if err != nil {
		fail(err)
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		fail(&synapse.ExecutionError{Action: action.Name(), JobID: req.JobID, Err: fmt.Errorf("encode result as JSON: %w", err)})
		return
	}
	ended()
	_ = out.Write(protocol.Message{Type: protocol.TypeResult, ID: req.ID, Result: b})
}

// newWireLogger sends a run's events as protocol event messages. Progress
// is throttled as on the console, so a tight loop does not flood the pipe.
func newWireLogger(id string, out *protocol.Writer) *synapse.ThrottledLogger {
	return synapse.ThrottleProgress(synapse.NewJSONLogger(lineFunc(func(line []byte) {
		_ = out.Write(protocol.Message{Type: protocol.TypeEvent, ID: id, Event: bytes.TrimRight(line, "\n")})
	})))
}

// lineFunc is an io.Writer that hands each write (one JSON line of the
// JSON logger) to a function.
type lineFunc func([]byte)

func (f lineFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}
