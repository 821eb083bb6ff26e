package synapse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// NewJSONLogger returns a Logger that writes each event to w as one JSON
// object on its own line (schema in docs/logging.md). It is the wire format
// between the CLI, plugin binaries and cluster jobs.
func NewJSONLogger(w io.Writer) Logger {
	return &jsonLogger{w: w}
}

type jsonLogger struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

func (l *jsonLogger) Handle(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
	enc := json.NewEncoder(&l.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// Data or Values held something JSON cannot encode (NaN, a channel):
		// send what can be sent rather than lose the event.
		l.buf.Reset()
		e.Data, _ = jsonSafe(e.Data).(map[string]any)
		e.Values, _ = jsonSafe(e.Values).(map[string]any)
		if err := enc.Encode(e); err != nil {
			l.buf.Reset()
			fmt.Fprintf(&l.buf, `{"type":"message","level":"error","message":%q}`+"\n", "encode event: "+err.Error())
		}
	}
	_, _ = l.w.Write(l.buf.Bytes())
}

// eventJSON is the wire form of Event.
type eventJSON struct {
	Type       EventType      `json:"type"`
	Time       time.Time      `json:"time"`
	Level      Level          `json:"level"`
	Action     string         `json:"action,omitempty"`
	JobID      string         `json:"job_id,omitempty"`
	Category   string         `json:"category,omitempty"`
	Event      string         `json:"event,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
	Message    string         `json:"message,omitempty"`
	Current    *int           `json:"current,omitempty"`
	Total      *int           `json:"total,omitempty"`
	Percent    *float64       `json:"percent,omitempty"`
	ETASeconds *float64       `json:"eta_seconds,omitempty"`
	Values     map[string]any `json:"values,omitempty"`
}

// MarshalJSON encodes the event in its wire form: progress fields only on
// progress events, the time in UTC, and the ETA as eta_seconds (absent
// while unknown).
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{
		Type: e.Type, Time: e.Time.UTC(), Level: e.Level, Action: e.Action, JobID: e.JobID,
		Category: e.Category, Event: e.Event, Data: e.Data, Message: e.Message, Values: e.Values,
	}
	if e.Type == EventProgress {
		j.Current, j.Total, j.Percent = &e.Current, &e.Total, &e.Percent
		if e.ETA >= 0 {
			s := math.Round(e.ETA.Seconds()*1000) / 1000
			j.ETASeconds = &s
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes the wire form. Numbers in Data and Values are kept
// as json.Number, so large integers survive the round trip exactly.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*e = Event{
		Type: j.Type, Time: j.Time, Level: j.Level, Action: j.Action, JobID: j.JobID,
		Category: j.Category, Event: j.Event, Data: j.Data, Message: j.Message, Values: j.Values,
		ETA: -1,
	}
	if j.Current != nil {
		e.Current = *j.Current
	}
	if j.Total != nil {
		e.Total = *j.Total
	}
	if j.Percent != nil {
		e.Percent = *j.Percent
	}
	if j.ETASeconds != nil {
		e.ETA = time.Duration(*j.ETASeconds * float64(time.Second))
	}
	return nil
}
