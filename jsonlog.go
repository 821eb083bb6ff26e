package synapse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
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
	mu   sync.Mutex
	w    io.Writer
	buf  bytes.Buffer
	line []byte // the fast path's buffer
}

func (l *jsonLogger) Handle(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Type == EventMetric {
		var ok bool
		if l.line, ok = appendMetric(l.line[:0], &e); ok {
			_, _ = l.w.Write(l.line)
			return
		}
	}
	l.slowHandle(e)
}

// slowHandle writes e through encoding/json; l.mu is held.
func (l *jsonLogger) slowHandle(e Event) {
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
	File       string         `json:"file,omitempty"`
	FileName   string         `json:"file_name,omitempty"`
	Message    string         `json:"message,omitempty"`
	Current    *int           `json:"current,omitempty"`
	Total      *int           `json:"total,omitempty"`
	Percent    *float64       `json:"percent,omitempty"`
	ETASeconds *float64       `json:"eta_seconds,omitempty"`
	Failed     bool           `json:"failed,omitempty"`
	Values     map[string]any `json:"values,omitempty"`
	Key        string         `json:"key,omitempty"`
	Value      *jsonFloat     `json:"value,omitempty"`
	Steps      []StepInfo     `json:"steps,omitempty"`
}

// jsonFloat is a float64 whose non-finite values encode as the strings
// "NaN", "+Inf" and "-Inf" (as the logger writes them inside Data), and
// decode from them (and from null, as NaN).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	return appendValue(nil, float64(f)), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "null", `"NaN"`:
		*f = jsonFloat(math.NaN())
		return nil
	case `"+Inf"`, `"Inf"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	}
	return json.Unmarshal(b, (*float64)(f))
}

// appendValue writes a metric value: a number, or for a value that is not
// finite its name as a JSON string.
func appendValue(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b = append(b, '"')
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		return append(b, '"')
	}
	return appendFloat(b, f)
}

// MarshalJSON encodes the event in its wire form: progress fields only on
// progress events, value only on metric events, the time in UTC, and the
// ETA as eta_seconds (absent while unknown).
func (e Event) MarshalJSON() ([]byte, error) {
	j := eventJSON{
		Type: e.Type, Time: e.Time.UTC(), Level: e.Level, Action: e.Action, JobID: e.JobID,
		Category: e.Category, Event: e.Event, Data: e.Data, File: e.File, FileName: e.FileName,
		Message: e.Message, Values: e.Values, Key: e.Key, Steps: e.Steps,
	}
	switch e.Type {
	case EventProgress:
		j.Current, j.Total, j.Percent, j.Failed = &e.Current, &e.Total, &e.Percent, e.Failed
		if e.ETA >= 0 {
			s := math.Round(e.ETA.Seconds()*1000) / 1000
			j.ETASeconds = &s
		}
	case EventMetric:
		j.Value = (*jsonFloat)(&e.Value)
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
		Category: j.Category, Event: j.Event, Data: j.Data, File: j.File, FileName: j.FileName,
		Message: j.Message, Values: j.Values, Key: j.Key, Steps: j.Steps, Failed: j.Failed,
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
	if j.Value != nil {
		e.Value = float64(*j.Value)
	}
	return nil
}

// appendMetric appends the wire form of a metric event, as MarshalJSON
// would write it, and reports whether it could: strings that need
// escaping, and extra metrics that are not a few numbers, strings and
// booleans, take the general path. It is what makes a metric point cheap
// enough to log in a tight loop.
func appendMetric(b []byte, e *Event) ([]byte, bool) {
	if !plainJSON(e.Action) || !plainJSON(e.JobID) || !plainJSON(e.Category) || !plainJSON(e.Key) {
		return b, false
	}
	start := len(b)
	b = append(b, `{"type":"metric","time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, e.Level.String()...)
	b = append(b, '"')
	b = appendField(b, "action", e.Action)
	b = appendField(b, "job_id", e.JobID)
	b = appendField(b, "category", e.Category)
	if len(e.Data) > 0 {
		var ok bool
		b = append(b, `,"data":`...)
		if b, ok = appendFlatMap(b, e.Data); !ok {
			return b[:start], false
		}
	}
	b = appendField(b, "key", e.Key)
	b = append(b, `,"value":`...)
	b = appendValue(b, e.Value)
	return append(b, "}\n"...), true
}

// appendFlatMap appends m as encoding/json would (keys sorted) when it has
// at most 8 keys, all plain, and values that are numbers, plain strings or
// booleans; otherwise it reports false.
func appendFlatMap(b []byte, m map[string]any) ([]byte, bool) {
	if len(m) > 8 {
		return b, false
	}
	var arr [8]string
	keys := arr[:0]
	for k := range m {
		if !plainJSON(k) {
			return b, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		switch v := m[k].(type) {
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return b, false // the general path writes these as strings
			}
			b = appendFloat(b, v)
		case string:
			if !plainJSON(v) {
				return b, false
			}
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
		case bool:
			b = strconv.AppendBool(b, v)
		default:
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = append(b, value...)
	return append(b, '"')
}

// plainJSON reports whether s is written in JSON as is: printable ASCII
// without quote or backslash.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendFloat writes f as encoding/json does, and null when it is not
// finite (callers write non-finite values their own way first).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
