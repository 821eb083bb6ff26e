package synapse

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// jobStream reads a job's log text, chunk by chunk, as written by a plugin
// binary's `job` command: JSON event lines become Events, the last result
// marker pair is the result, an error line is the job's typed error, and
// any other line (Ray's own, the binary's stderr) is raw text.
type jobStream struct {
	event   func(Event)
	raw     func(line string)
	outcome func() // called when a result or an error line has been read

	partial   []byte
	inResult  bool
	resultBuf []byte
	result    json.RawMessage // the last complete result
	err       *protocol.Error
	tail      []string // the last raw lines, for failure reports
}

const keepTailLines = 20

func newJobStream(event func(Event), raw func(string)) *jobStream {
	return &jobStream{event: event, raw: raw}
}

// Write takes the next chunk of log text (chunks need not end at lines).
func (s *jobStream) Write(chunk string) {
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
func (s *jobStream) Close() {
	if len(s.partial) > 0 {
		line := string(s.partial)
		s.partial = nil
		s.line(line)
	}
}

func (s *jobStream) line(line string) {
	switch {
	case line == resultStart:
		s.inResult, s.resultBuf = true, nil
		return
	case line == resultEnd && s.inResult:
		s.inResult = false
		s.result = json.RawMessage(bytes.TrimSpace(s.resultBuf))
		if s.outcome != nil {
			s.outcome()
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
			switch EventType(probe.Type) {
			case EventLog, EventMessage, EventProgress, EventMetrics:
				var e Event
				if json.Unmarshal([]byte(line), &e) == nil {
					if s.event != nil {
						s.event(e)
					}
					return
				}
			case "error":
				if probe.Error != nil {
					s.err = probe.Error
					if s.outcome != nil {
						s.outcome()
					}
					return
				}
			}
		}
	}
	s.tail = append(s.tail, line)
	if len(s.tail) > keepTailLines {
		s.tail = s.tail[len(s.tail)-keepTailLines:]
	}
	if s.raw != nil {
		s.raw(line)
	}
}

// parseJobLog runs a whole log through a jobStream.
func parseJobLog(logs string) *jobStream {
	s := newJobStream(nil, nil)
	s.Write(logs)
	s.Close()
	return s
}

// unwrapResult undoes the {"result": x} wrapping of non-object results.
func unwrapResult(raw json.RawMessage) (any, error) {
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
