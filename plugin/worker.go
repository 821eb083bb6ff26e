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
	"sync/atomic"

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
// protocol.MaxOngoingEnv).
type workerOptions struct {
	Listen     string // HOST:PORT for direct runs; empty: none
	MaxOngoing int    // direct runs are admitted below this many in flight
}

// workerOptionsFromEnv reads the worker host's settings.
func workerOptionsFromEnv() workerOptions {
	n, _ := strconv.Atoi(os.Getenv(protocol.MaxOngoingEnv))
	return workerOptions{Listen: os.Getenv(protocol.ListenEnv), MaxOngoing: n}
}

// serveWorker speaks the worker protocol (docs/protocol.md) on r and w
// until r ends, then waits for the runs in flight. Runs are concurrent;
// cancelling ctx cancels them all. flush is called when a run ends, before
// its outcome is written (the captured stdout's Sync). With opts.Listen it
// also takes runs over HTTP (direct.go); if it cannot listen it says so on
// stderr and serves stdin alone.
func serveWorker(ctx context.Context, set *synapse.ActionSet, r io.Reader, w io.Writer, stderr io.Writer, flush func(), opts workerOptions) error {
	out := protocol.NewWriter(w)
	base := synapse.EnvFromOS("")
	var inFlight atomic.Int64
	ready := protocol.Message{Type: protocol.TypeReady, Protocol: protocol.Version, PID: os.Getpid(), Actions: infos(set, false)}
	if opts.Listen != "" {
		d, err := startDirect(ctx, set, base, opts.Listen, opts.MaxOngoing, &inFlight, flush)
		if err != nil {
			fmt.Fprintf(stderr, "synapse worker: no direct runs (callers go through the host): %v\n", err)
		} else {
			defer d.close()
			ready.Direct = d.info()
		}
	}
	if err := out.Write(ready); err != nil {
		return err
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running = map[string]context.CancelFunc{}
	)
	defer wg.Wait()
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
			inFlight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(running, req.ID)
					mu.Unlock()
					cancel()
				}()
				serveRun(rctx, set, base, req, out, flush, func() { inFlight.Add(-1) })
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
