package synapse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// actionSet is the actions of one plugin binary, by name and in order.
type actionSet struct {
	byName map[string]Action
	names  []string
}

func newActionSet(actions []Action) (*actionSet, error) {
	s := &actionSet{byName: map[string]Action{}}
	for _, a := range actions {
		if a == nil {
			return nil, fmt.Errorf("register actions: action %d is nil", len(s.names))
		}
		if _, dup := s.byName[a.Name()]; dup {
			return nil, fmt.Errorf("register actions: two actions are named %q", a.Name())
		}
		s.byName[a.Name()] = a
		s.names = append(s.names, a.Name())
	}
	return s, nil
}

// find returns the action named name or an *ActionNotFoundError.
func (s *actionSet) find(name string) (Action, error) {
	if a, ok := s.byName[name]; ok {
		return a, nil
	}
	return nil, notFound(name, s.names)
}

func (s *actionSet) infos(withSchema bool) []protocol.ActionInfo {
	out := make([]protocol.ActionInfo, 0, len(s.names))
	for _, n := range s.names {
		a := s.byName[n]
		info := protocol.ActionInfo{Name: n, Description: a.Description()}
		if withSchema {
			info.Schema = a.Schema()
		}
		out = append(out, info)
	}
	return out
}

// serveWorker speaks the worker protocol (docs/protocol.md) on r and w
// until r ends, then waits for the runs in flight. Runs are concurrent;
// cancelling ctx cancels them all.
func serveWorker(ctx context.Context, set *actionSet, r io.Reader, w io.Writer) error {
	out := protocol.NewWriter(w)
	if err := out.Write(protocol.Message{Type: protocol.TypeReady, Protocol: protocol.Version, PID: os.Getpid(), Actions: set.infos(false)}); err != nil {
		return err
	}
	base := EnvFromOS("")
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(running, req.ID)
					mu.Unlock()
					cancel()
				}()
				serveRun(rctx, set, base, req, out)
			}()
		default:
			_ = out.Write(protocol.Message{Type: protocol.TypeError, ID: req.ID, Error: &protocol.Error{Kind: protocol.KindProtocol, Message: fmt.Sprintf("unknown request type %q (want run, cancel or ping)", req.Type)}})
		}
	}
	return sc.Err()
}

// serveRun executes one run request and writes its events and outcome.
func serveRun(ctx context.Context, set *actionSet, base *Env, req protocol.Request, out *protocol.Writer) {
	fail := func(err error) {
		_ = out.Write(protocol.Message{Type: protocol.TypeError, ID: req.ID, Error: toWireError(err)})
	}
	action, err := set.find(req.Action)
	if err != nil {
		fail(err)
		return
	}
	cfg := execConfig{
		env:    MergeEnv(base, NewEnv(req.Env)),
		jobID:  req.JobID,
		logger: newWireLogger(req.ID, out),
	}
	params := any(req.Params)
	if len(req.Params) == 0 {
		params = nil
	}
	result, err := execute(ctx, cfg, action, params)
	if err != nil {
		fail(err)
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		fail(&ExecutionError{Action: action.Name(), JobID: req.JobID, Err: fmt.Errorf("encode result as JSON: %w", err)})
		return
	}
	_ = out.Write(protocol.Message{Type: protocol.TypeResult, ID: req.ID, Result: b})
}

// newWireLogger sends a run's events as protocol event messages. Progress
// is throttled as on the console, so a tight loop does not flood the pipe.
func newWireLogger(id string, out *protocol.Writer) Logger {
	return &throttledLogger{inner: LoggerFunc(func(e Event) {
		b, err := json.Marshal(e)
		if err != nil {
			e.Data, _ = jsonSafe(e.Data).(map[string]any)
			e.Values, _ = jsonSafe(e.Values).(map[string]any)
			if b, err = json.Marshal(e); err != nil {
				return
			}
		}
		_ = out.Write(protocol.Message{Type: protocol.TypeEvent, ID: id, Event: b})
	})}
}
