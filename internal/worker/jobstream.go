package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// JobStream reads a job's log text, chunk by chunk, as written by a plugin
// binary's `job` command: JSON event lines become Events, the last result
// marker pair is the result, an error line is the job's typed error, and
// any other line (Ray's own, the binary's stderr) is raw text.
type JobStream struct {
	event func(synapse.Event)
	raw   func(line string)
	// OnOutcome, if set, is called when a result or an error line has been
	// read.
	OnOutcome func()

	partial   []byte
	inResult  bool
	resultBuf []byte
	// Result is the last complete result (nil when none was read).
	Result json.RawMessage
	// Err is the job's typed error, from its error line.
	Err *protocol.Error
	// Tail holds the last raw lines, for failure reports.
	Tail []string
}

const keepTailLines = 20

// NewJobStream returns a stream passing events to event and other lines
// to raw (either may be nil).
func NewJobStream(event func(synapse.Event), raw func(string)) *JobStream {
	return &JobStream{event: event, raw: raw}
}

// Write takes the next chunk of log text (chunks need not end at lines).
func (s *JobStream) Write(chunk string) {
	s.partial = append(s.partial, chunk...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return
		}
		line := string(bytes.TrimRight(s.partial[:i], "\r"))
		s.partial = s.partial[i+1:]
		s.line(line)
	}
}

// Close handles a last line without a newline.
func (s *JobStream) Close() {
	if len(s.partial) > 0 {
		line := string(s.partial)
		s.partial = nil
		s.line(line)
	}
}

func (s *JobStream) line(line string) {
	switch {
	case line == ResultStart:
		s.inResult, s.resultBuf = true, nil
		return
	case line == ResultEnd && s.inResult:
		s.inResult = false
		s.Result = json.RawMessage(bytes.TrimSpace(s.resultBuf))
		if s.OnOutcome != nil {
			s.OnOutcome()
		}
		return
	case s.inResult:
		s.resultBuf = append(append(s.resultBuf, line...), '\n')
		return
	}
	if strings.HasPrefix(line, "{\"type\":") {
		var probe struct {
			Type  string          `json:"type"`
			Error *protocol.Error `json:"error"`
		}
		if json.Unmarshal([]byte(line), &probe) == nil {
			switch t := synapse.EventType(probe.Type); {
			case t.Known():
				var e synapse.Event
				if json.Unmarshal([]byte(line), &e) == nil {
					if s.event != nil {
						s.event(e)
					}
					return
				}
			case t == "error":
				if probe.Error != nil {
					s.Err = probe.Error
					if s.OnOutcome != nil {
						s.OnOutcome()
					}
					return
				}
			}
		}
	}
	s.Tail = append(s.Tail, line)
	if len(s.Tail) > keepTailLines {
		s.Tail = s.Tail[len(s.Tail)-keepTailLines:]
	}
	if s.raw != nil {
		s.raw(line)
	}
}

// ParseJobLog runs a whole log through a JobStream.
func ParseJobLog(logs string) *JobStream {
	s := NewJobStream(nil, nil)
	s.Write(logs)
	s.Close()
	return s
}

// UnwrapResult undoes the {"result": x} wrapping of non-object results.
func UnwrapResult(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if inner, ok := m["result"]; ok {
			return inner, nil
		}
	}
	return v, nil
}

// MaxResult is the largest result (bytes of JSON) a job may have: the
// largest PATCH /jobs/{id}/ body the synapse server takes, 8 MiB.
const MaxResult = 8 << 20

// ErrResult: a result taken from a job's output cannot be recorded (too
// big, or not JSON). Matched with errors.Is; the error is a *ResultError.
var ErrResult = errors.New("invalid result")

// ResultError says why a result printed between ResultStart and ResultEnd
// cannot be recorded: it is Size bytes, over MaxResult, or (Size within
// the limit) not valid JSON. It matches ErrResult.
type ResultError struct {
	Size    int  // bytes of the result
	Invalid bool // not valid JSON (else: too big)
}

func (e *ResultError) Error() string {
	if !e.Invalid {
		return fmt.Sprintf("the result is %d bytes, over the %d MiB a result may be: return a smaller result (store large outputs in files and return their paths)", e.Size, MaxResult>>20)
	}
	return fmt.Sprintf("the result the plugin printed is not valid JSON (%d bytes; its output between %s and %s was cut or changed): return a JSON value", e.Size, ResultStart, ResultEnd)
}

// Unwrap makes the error match ErrResult.
func (e *ResultError) Unwrap() error { return ErrResult }

// CheckResult returns nil if raw may be recorded as a job's result: valid
// JSON of at most MaxResult bytes; else a *ResultError.
func CheckResult(raw json.RawMessage) error {
	switch {
	case len(raw) > MaxResult:
		return &ResultError{Size: len(raw)}
	case !json.Valid(raw):
		return &ResultError{Size: len(raw), Invalid: true}
	}
	return nil
}
