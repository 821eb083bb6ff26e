// Package protocol defines the line-delimited JSON protocol between a client
// (the synapse CLI, RunPlugin, a cluster worker host) and a plugin binary
// started as `PLUGIN worker`. docs/protocol.md is its specification.
//
// The client writes one Request per line to the worker's stdin; the worker
// writes one Message per line to its stdout. The worker's stderr is free
// text for people (it is not part of the protocol).
package protocol

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Version is the protocol version a worker announces in its ready message.
const Version = 1

// Request types.
const (
	TypeRun    = "run"    // run Action with Params; answered by events and one result or error
	TypeCancel = "cancel" // cancel the run with ID
	TypePing   = "ping"   // answered by a pong with the same ID
)

// Message types.
const (
	TypeReady  = "ready"  // first line: the worker is up
	TypeEvent  = "event"  // an event of run ID (the JSON event schema of docs/logging.md)
	TypeResult = "result" // run ID succeeded
	TypeError  = "error"  // run ID failed (or, without ID, a request could not be read)
	TypePong   = "pong"
)

// Request is one line from the client.
type Request struct {
	Type   string          `json:"type"`
	ID     string          `json:"id,omitempty"`
	Action string          `json:"action,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	JobID  string          `json:"job_id,omitempty"`
	// Env is layered over the worker's own environment for this run.
	Env map[string]any `json:"env,omitempty"`
}

// Message is one line from the worker.
type Message struct {
	Type   string          `json:"type"`
	ID     string          `json:"id,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`

	// Ready fields.
	Protocol int          `json:"protocol,omitempty"`
	PID      int          `json:"pid,omitempty"`
	Actions  []ActionInfo `json:"actions,omitempty"`
	// Direct is set when the worker also takes runs over HTTP (ListenEnv).
	Direct *Direct `json:"direct,omitempty"`
}

// Environment variables a worker host sets for `PLUGIN worker`.
const (
	// ListenEnv asks the worker to also take runs over HTTP on this
	// HOST:PORT (port 0: any free port), announced as Direct in the ready
	// message. The task-mode host (Ray Serve) sets it to the node's IP.
	ListenEnv = "SYNAPSE_WORKER_LISTEN"
	// MaxOngoingEnv caps the runs the worker runs at once (stdin's and
	// direct ones together; default: no cap for stdin, 1 with ListenEnv):
	// a run from stdin waits for a slot, a direct run gets 503 without one.
	MaxOngoingEnv = "SYNAPSE_WORKER_MAX_ONGOING"
	// ConfigEnv is the fingerprint of the application config the worker
	// was started with (the task-mode host sets it); a direct run must
	// carry the same value in ConfigHeader, or it gets 409.
	ConfigEnv = "SYNAPSE_WORKER_CONFIG"
)

// ConfigHeader carries an application config's fingerprint: on a direct
// run, the one the caller expects; on the task-mode host's answers, the
// one the worker runs.
const ConfigHeader = "X-Synapse-Config"

// Direct is where a worker takes runs over HTTP: POST
// http://HOST:Port/Token/run with the body of a task-mode run call
// ({"action", "params", "job_id", "env"}), answered by the run's message
// lines as application/x-ndjson (docs/protocol.md, "Direct calls").
type Direct struct {
	Port int `json:"port"`
	// Token is a random 128-bit hex string: a request with another token
	// gets 404, so a stale address never reaches a different worker.
	Token string `json:"token"`
}

// ActionInfo describes an action a plugin binary provides.
type ActionInfo struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
}

// Error kinds.
const (
	KindValidation     = "validation"
	KindExecution      = "execution"
	KindActionNotFound = "action_not_found"
	KindProtocol       = "protocol"
)

// Error is a typed error crossing the process boundary.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Action  string `json:"action,omitempty"`
	JobID   string `json:"job_id,omitempty"`
	// Validation.
	Fields []FieldError `json:"fields,omitempty"`
	// Action not found.
	Available  []string `json:"available,omitempty"`
	Suggestion string   `json:"suggestion,omitempty"`
	// Execution.
	Cause string `json:"cause,omitempty"` // "canceled" or "deadline_exceeded" when the run was cancelled
	Panic bool   `json:"panic,omitempty"`
	Stack string `json:"stack,omitempty"`
}

// FieldError is one rejected param.
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Writer writes messages or requests as JSON lines; it is safe for
// concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write encodes v as one line.
func (w *Writer) Write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode protocol line: %w", err)
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.w.Write(b)
	return err
}

// MaxLine is the longest line a Scanner accepts (params and results can be large).
const MaxLine = 64 << 20

// NewScanner returns a line scanner for protocol input on r.
func NewScanner(r io.Reader) *bufio.Scanner {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return s
}
