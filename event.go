package synapse

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Level is the severity of a message or log event. The seven levels are
// the Synapse backend's (log entry field "level"); the Python SDK's
// LogLevel has the same names.
type Level int8

// Levels, from least to most severe. The zero Level is LevelInfo. A
// Context reports a level outside this range as the nearest one.
const (
	LevelDebug    Level = -1
	LevelInfo     Level = 0
	LevelSuccess  Level = 1
	LevelWarning  Level = 2
	LevelDanger   Level = 3 // a problem people must look at; the run goes on
	LevelError    Level = 4
	LevelCritical Level = 5
)

var levelNames = [...]string{"debug", "info", "success", "warning", "danger", "error", "critical"}

// String returns the lower-case name: "debug", "info", "success",
// "warning", "danger", "error" or "critical".
func (l Level) String() string {
	if i := int(l) - int(LevelDebug); i >= 0 && i < len(levelNames) {
		return levelNames[i]
	}
	return fmt.Sprintf("level(%d)", int8(l))
}

// MarshalText encodes the level as its name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes a level name (case-insensitive; "" is info).
// "warn" and "fatal" are accepted as aliases of "warning" and "critical".
func (l *Level) UnmarshalText(b []byte) error {
	name := strings.ToLower(string(b))
	switch name {
	case "", "info":
		*l = LevelInfo
		return nil
	case "warn":
		*l = LevelWarning
		return nil
	case "fatal":
		*l = LevelCritical
		return nil
	}
	for i, n := range levelNames {
		if n == name {
			*l = Level(i) + LevelDebug
			return nil
		}
	}
	return fmt.Errorf("parse level: unknown level %q (want one of %s)", b, strings.Join(levelNames[:], ", "))
}

// EventType says what an Event reports.
type EventType string

// The kinds of event a run produces. The names of log, metric,
// visualization and trials are the Synapse backend's log event names
// (POST /logs/ field "event"); the others are synapse-go's.
const (
	EventLog           EventType = "log"           // a structured event: Event, Data, maybe File
	EventMessage       EventType = "message"       // a human message: Message
	EventProgress      EventType = "progress"      // Current of Total, Percent, ETA; or Failed
	EventMetrics       EventType = "metrics"       // the cumulative Values of Category (a snapshot)
	EventMetric        EventType = "metric"        // one point of the series Category/Key: Value, extra metrics in Data
	EventVisualization EventType = "visualization" // an image (File) of Category; Data holds group, index and metadata
	EventTrials        EventType = "trials"        // hyperparameter-search trials: Data holds a Trials
	EventSteps         EventType = "steps"         // the plan of a steps orchestrator: Steps
)

// Known reports whether t is one of the event types above. Readers of an
// event stream use it to tell events from other JSON lines.
func (t EventType) Known() bool {
	switch t {
	case EventLog, EventMessage, EventProgress, EventMetrics, EventMetric, EventVisualization, EventTrials, EventSteps:
		return true
	}
	return false
}

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

	// EventLog: the event name and its data. EventMetric: the extra
	// metrics of the point. EventVisualization: "group", "index" and the
	// metadata. EventTrials: the Trials as a JSON object.
	Event string         `json:"event,omitempty"`
	Data  map[string]any `json:"data,omitempty"`

	// File is an attached file as a base64 data URI
	// ("data:image/png;base64,…"), the form the Synapse backend takes in
	// a log entry's "file" field; FileName is its name for people
	// ("(bytes)" for bytes given without one). EventLog (LogFile) and EventVisualization.
	File     string `json:"file,omitempty"`
	FileName string `json:"file_name,omitempty"`

	// EventMessage
	Message string `json:"message,omitempty"`

	// EventProgress. Percent is Current/Total*100 rounded to 2 decimals.
	// ETA is the estimated time left, or -1 while unknown (JSON: eta_seconds
	// absent). Failed marks the category as failed (SetProgressFailed);
	// Current and Total are then 0, and Percent is the percent the
	// category reached, or 0 for the one it reported before.
	Current int           `json:"current,omitempty"`
	Total   int           `json:"total,omitempty"`
	Percent float64       `json:"percent,omitempty"`
	ETA     time.Duration `json:"-"`
	Failed  bool          `json:"failed,omitempty"`

	// EventMetrics: all metrics of Category so far, merged.
	Values map[string]any `json:"values,omitempty"`

	// EventMetric: the series key within Category ("loss") and the
	// point's value. A value that is not finite travels as the JSON string
	// "NaN", "+Inf" or "-Inf".
	Key   string  `json:"key,omitempty"`
	Value float64 `json:"value,omitempty"`

	// EventSteps: every step of the plan, in order.
	Steps []StepInfo `json:"steps,omitempty"`

	// run identifies the Execute call that produced the event, so that a
	// logger shared by concurrent runs keeps per-run state apart.
	run uint64
}

// StepInfo is one step of a plan (EventSteps): its name, its 0-based
// order, and its proportion, the percentage of the whole run it stands
// for (the proportions of a plan add up to 100). They are the "order"
// and "proportion" of a step in the Synapse backend's progress_record.
type StepInfo struct {
	Name       string  `json:"name"`
	Order      int     `json:"order"`
	Proportion float64 `json:"proportion"`
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
// at 0% and 100%, and when it marks a failure. Other events always pass.
// Use it in front of a logger that sends events over a pipe or network, so
// a tight progress loop does not flood it.
//
// The last progress event held back in a category is not lost: it is
// passed on before the next progress event of another category of the
// same run, and by Flush. So a progress record rebuilt from what passed
// (see ProgressTracker) ends the same as one built from every event.
func ThrottleProgress(l Logger) *ThrottledLogger { return &ThrottledLogger{inner: l} }

// ThrottledLogger is the Logger returned by ThrottleProgress.
type ThrottledLogger struct {
	inner    Logger
	mu       sync.Mutex
	throttle progressThrottle
	held     map[progressKey]Event // the last progress event held back, per run and category
}

// Handle passes e on to the wrapped logger, or holds it back (see
// ThrottleProgress).
func (l *ThrottledLogger) Handle(e Event) {
	if e.Type != EventProgress {
		l.inner.Handle(e)
		return
	}
	key := progressKey{run: e.run, category: e.Category}
	l.mu.Lock()
	var release []Event
	if !l.throttle.allow(e, true) {
		if l.held == nil {
			l.held = map[progressKey]Event{}
		}
		l.held[key] = e
		l.mu.Unlock()
		return
	}
	delete(l.held, key)
	for k, h := range l.held {
		if k.run == e.run {
			release = append(release, h)
			delete(l.held, k)
		}
	}
	l.mu.Unlock()
	for _, h := range release {
		l.inner.Handle(h)
	}
	l.inner.Handle(e)
}

// Flush passes on every progress event still held back. Call it when a
// run ends, before reporting its result.
func (l *ThrottledLogger) Flush() {
	l.mu.Lock()
	held := make([]Event, 0, len(l.held))
	for k, h := range l.held {
		held = append(held, h)
		delete(l.held, k)
	}
	l.mu.Unlock()
	for _, h := range held {
		l.inner.Handle(h)
	}
}

// DiscardLogger drops every event.
var DiscardLogger Logger = LoggerFunc(func(Event) {})
