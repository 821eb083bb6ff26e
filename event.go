package synapse

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Level is the severity of a message or log event.
type Level int8

// Levels, from least to most severe. The zero Level is LevelInfo.
const (
	LevelDebug   Level = -1
	LevelInfo    Level = 0
	LevelSuccess Level = 1
	LevelWarning Level = 2
	LevelError   Level = 3
)

// String returns the lower-case name: "debug", "info", "success", "warning", "error".
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelSuccess:
		return "success"
	case LevelWarning:
		return "warning"
	case LevelError:
		return "error"
	}
	return fmt.Sprintf("level(%d)", int8(l))
}

// MarshalText encodes the level as its name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes a level name (case-insensitive). "warn" and
// "danger" are accepted as aliases of "warning" and "error".
func (l *Level) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "debug":
		*l = LevelDebug
	case "info", "":
		*l = LevelInfo
	case "success":
		*l = LevelSuccess
	case "warning", "warn":
		*l = LevelWarning
	case "error", "danger", "critical":
		*l = LevelError
	default:
		return fmt.Errorf("parse level: unknown level %q (want debug, info, success, warning or error)", b)
	}
	return nil
}

// EventType says what an Event reports.
type EventType string

// The kinds of event a run produces.
const (
	EventLog      EventType = "log"      // a structured event: Event and Data
	EventMessage  EventType = "message"  // a human message: Message
	EventProgress EventType = "progress" // Current of Total, Percent, ETA
	EventMetrics  EventType = "metrics"  // the cumulative Values of Category
)

// Event is one thing a run reported. Which fields are set depends on Type;
// the JSON form (see NewJSONLogger and docs/logging.md) is the wire format
// between the CLI, plugin binaries and cluster jobs.
type Event struct {
	Type     EventType `json:"type"`
	Time     time.Time `json:"time"`
	Level    Level     `json:"level"`
	Action   string    `json:"action,omitempty"`
	JobID    string    `json:"job_id,omitempty"`
	Category string    `json:"category,omitempty"`

	// EventLog
	Event string         `json:"event,omitempty"`
	Data  map[string]any `json:"data,omitempty"`

	// EventMessage
	Message string `json:"message,omitempty"`

	// EventProgress. Percent is Current/Total*100 rounded to 2 decimals.
	// ETA is the estimated time left, or -1 while unknown (JSON: eta_seconds
	// absent).
	Current int           `json:"current,omitempty"`
	Total   int           `json:"total,omitempty"`
	Percent float64       `json:"percent,omitempty"`
	ETA     time.Duration `json:"-"`

	// EventMetrics: all metrics of Category so far, merged.
	Values map[string]any `json:"values,omitempty"`

	// run identifies the Execute call that produced the event, so that a
	// logger shared by concurrent runs keeps per-run state apart.
	run uint64
}

// Logger receives the events of runs. Handle must be safe for concurrent
// use. Data is the map the action passed to Context.Log: a logger that
// keeps events should copy it. Values is a fresh copy for every event.
type Logger interface {
	Handle(Event)
}

// LoggerFunc adapts a function to the Logger interface.
type LoggerFunc func(Event)

// Handle calls f(e).
func (f LoggerFunc) Handle(e Event) { f(e) }

// MultiLogger returns a Logger that passes every event to each of loggers in turn.
func MultiLogger(loggers ...Logger) Logger {
	ls := append([]Logger(nil), loggers...)
	return LoggerFunc(func(e Event) {
		for _, l := range ls {
			l.Handle(e)
		}
	})
}

// NewRunLogger returns a Logger that passes events to l as the events of
// one new run, so per-run state in l (progress throttling, live bars) stays
// apart from other runs that share l. Executors that receive a run's
// events from another process or machine wrap the caller's logger with it
// once per run.
func NewRunLogger(l Logger) Logger {
	run := runIDs.Add(1)
	return LoggerFunc(func(e Event) {
		e.run = run
		l.Handle(e)
	})
}

// ThrottleProgress returns a Logger that passes events to l, thinning
// progress the way the console does: an event reaches l when its
// whole-number percent or its category changed since the last one shown,
// and at 0% and 100%. Other events always pass. Use it in front of a
// logger that sends events over a pipe or network, so a tight progress
// loop does not flood it.
func ThrottleProgress(l Logger) Logger { return &throttledLogger{inner: l} }

type throttledLogger struct {
	inner    Logger
	mu       sync.Mutex
	throttle progressThrottle
}

func (l *throttledLogger) Handle(e Event) {
	if e.Type == EventProgress {
		l.mu.Lock()
		ok := l.throttle.allow(e, true)
		l.mu.Unlock()
		if !ok {
			return
		}
	}
	l.inner.Handle(e)
}

// DiscardLogger drops every event.
var DiscardLogger Logger = LoggerFunc(func(Event) {})
