// Package worker holds what the plugin binary and the executors that talk
// to it share: the typed errors' wire form, the reader of a worker's
// output stream, and the environment contract of a plugin run as a job.
package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// Environment variables of a plugin binary run as a job (the names match
// the Python SDK's job worker).
const (
	EnvActionEntrypoint = "SYNAPSE_ACTION_ENTRYPOINT"
	EnvActionParams     = "SYNAPSE_ACTION_PARAMS"
	EnvActionParamsFile = "SYNAPSE_ACTION_PARAMS_FILE"
	EnvJobID            = "SYNAPSE_JOB_ID"
)

// MaxEnvParams is the longest params JSON passed in SYNAPSE_ACTION_PARAMS;
// longer params travel in a file (SYNAPSE_ACTION_PARAMS_FILE).
const MaxEnvParams = 32000

// Markers around the result in a job's output. A reader takes the last pair.
const (
	ResultStart = "__SYNAPSE_RESULT_START__"
	ResultEnd   = "__SYNAPSE_RESULT_END__"
)

// BinaryName is the plugin binary's name inside a cluster package.
const BinaryName = "synapse-plugin"

// ErrorLine is the last line a failed job writes: its typed error.
type ErrorLine struct {
	Type  string          `json:"type"` // "error"
	Error *protocol.Error `json:"error"`
}

// NeedsWrap reports whether a result must travel as {"result": …}: any
// non-object, and an object whose only key is "result" (which a reader
// would otherwise unwrap). The Python SDK wraps non-objects the same way.
func NeedsWrap(b []byte) bool {
	if len(b) == 0 || b[0] != '{' {
		return true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return true
	}
	_, only := m["result"]
	return only && len(m) == 1
}

// Outcome is how a run read from a worker ended.
type Outcome struct {
	Result any
	Err    error
	// Settled is true when the worker reported the outcome (not a broken
	// or ended stream).
	Settled bool
}

// ErrGone matches a worker whose output ended before it reported a result.
var ErrGone = errors.New("the plugin worker exited before reporting a result")

// Read reads worker protocol messages (docs/protocol.md) from r until run
// id ends, passing its events to logger as one run's. An empty id accepts
// any run's messages (a stream that carries one run only). Lines that are
// not protocol messages (an action printing to stdout) become messages in
// category "stdout".
func Read(r io.Reader, id string, logger synapse.Logger) Outcome {
	logger = synapse.NewRunLogger(logger)
	sc := protocol.NewScanner(r)
	for sc.Scan() {
		var m protocol.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Type == "" {
			// Not protocol: the action printed to stdout. Pass it on as text
			// and keep reading, so the run's outcome is not lost.
			logger.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelInfo, Category: "stdout", Message: sc.Text()})
			continue
		}
		if id != "" && m.ID != id && m.Type != protocol.TypeError && !(m.Type == protocol.TypeEvent && m.ID == "") || m.Type == protocol.TypeReady {
			continue // the ready line, or another run's messages (events of no run, ID "", are the worker's output)
		}
		switch m.Type {
		case protocol.TypeEvent:
			var e synapse.Event
			if err := json.Unmarshal(m.Event, &e); err == nil {
				logger.Handle(e)
			}
		case protocol.TypeResult:
			var v any
			if err := json.Unmarshal(m.Result, &v); err != nil {
				return Outcome{Err: fmt.Errorf("read plugin result: %w", err)}
			}
			return Outcome{Result: v, Settled: true}
		case protocol.TypeError:
			if m.Error == nil {
				return Outcome{Err: errors.New("plugin worker reported an error without details"), Settled: true}
			}
			if m.Error.Kind == protocol.KindProtocol {
				return Outcome{Err: fmt.Errorf("plugin worker: %s", m.Error.Message), Settled: true}
			}
			return Outcome{Err: FromError(m.Error), Settled: true}
		}
	}
	if err := sc.Err(); err != nil {
		return Outcome{Err: fmt.Errorf("read plugin worker output: %w", err)}
	}
	return Outcome{Err: &synapse.ExecutionError{Err: ErrGone}}
}
