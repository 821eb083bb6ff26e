package synapse

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"time"
)

// Context is what an action receives: a context.Context (cancellation and
// deadlines of the run reach the action through it) plus the run's logger,
// environment and identity.
//
// Every method is safe for concurrent use, so an action may report from
// several goroutines. Misuse (progress with a total <= 0, metrics without a
// category) never panics: it is reported once per run as a warning and
// otherwise ignored.
type Context struct {
	context.Context
	run      *runState
	category string
}

// runState is shared by a run's Context and every Context derived from it.
type runState struct {
	id     uint64
	action string
	jobID  string
	env    *Env
	logger Logger
	now    func() time.Time

	lang string // from WithLanguage; "" reads the environment

	tracker ProgressTracker

	mu       sync.Mutex
	progress map[string]*progressState
	metrics  map[string]map[string]any
	series   map[seriesKey]*series
	warned   map[string]bool
	slog     *slog.Logger

	root Context // allocated with the state: one allocation per run
}

type progressState struct {
	start time.Time
}

func newRun(ctx context.Context, id uint64, action, jobID string, env *Env, logger Logger) *Context {
	r := &runState{id: id, action: action, jobID: jobID, env: env, logger: logger, now: time.Now}
	r.root = Context{Context: ctx, run: r}
	return &r.root
}

// JobID returns the identifier of the job this run belongs to, or "" when
// none was given.
func (c *Context) JobID() string { return c.run.jobID }

// ActionName returns the name of the running action.
func (c *Context) ActionName() string { return c.run.action }

// Env returns the run's environment (never nil).
func (c *Context) Env() *Env { return c.run.env }

// Category returns the category this Context reports under, or "".
func (c *Context) Category() string { return c.category }

// WithCategory returns a Context that reports logs, messages, progress and
// metrics under category unless a call names another. It shares the run
// (and its cancellation) with c.
func (c *Context) WithCategory(category string) *Context {
	d := *c
	d.category = category
	return &d
}

// WithContext returns a Context that reports like c (same run, logger,
// category and state) but whose cancellation, deadline and values are
// ctx's: a sub-task of an action can run under its own deadline
// (context.WithTimeout(c, d)) and keep the reporting methods, like
// (*http.Request).WithContext. It panics if ctx is nil.
func (c *Context) WithContext(ctx context.Context) *Context {
	if ctx == nil {
		panic("synapse: Context.WithContext: nil context")
	}
	d := *c
	d.Context = ctx
	return &d
}

// Emit hands e to the run's logger as an event of this run: Action, JobID
// and the run's identity are set from c, Time when it is zero, and
// Category when it is empty. It is for code that reports on an action's
// behalf with events the other methods do not build (the steps
// orchestrator's plan, say); prefer the reporting methods. Progress and
// plan events also update the run's progress record (Progress).
func (c *Context) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = c.run.now()
	}
	if e.Category == "" {
		e.Category = c.category
	}
	e.Level = min(max(e.Level, LevelDebug), LevelCritical)
	e.Action, e.JobID, e.run = c.run.action, c.run.jobID, c.run.id
	c.run.handle(e)
}

// handle passes an event of the run to its progress record and logger.
func (r *runState) handle(e Event) {
	if e.Type == EventProgress || e.Type == EventSteps {
		r.tracker.Handle(e)
	}
	r.logger.Handle(e)
}

// Now returns the run's clock reading (time.Now outside tests).
func (c *Context) Now() time.Time { return c.run.now() }

func (c *Context) event(t EventType, level Level) Event {
	level = min(max(level, LevelDebug), LevelCritical)
	return Event{
		Type:     t,
		Time:     c.run.now(),
		Level:    level,
		Action:   c.run.action,
		JobID:    c.run.jobID,
		Category: c.category,
		run:      c.run.id,
	}
}

// Log reports a structured event, such as "epoch_complete" with its data,
// at info level (Python: log(event, data)). LogAt takes a level, LogFile a
// file.
func (c *Context) Log(event string, data map[string]any) { c.LogAt(LevelInfo, event, data) }

// LogAt reports a structured event at level (Python: log(event, data,
// level=…)).
func (c *Context) LogAt(level Level, event string, data map[string]any) {
	e := c.event(EventLog, level)
	e.Event = event
	e.Data = data
	c.run.handle(e)
}

// LogMessage reports a message for people, such as "Training completed" at
// LevelSuccess (Python: log_message(message, level)). Debugf, Infof and
// the other helpers format one at their level; LogLocalized picks the
// run's language.
func (c *Context) LogMessage(message string, level Level) {
	e := c.event(EventMessage, level)
	e.Message = message
	c.run.handle(e)
}

// SetProgress reports that current of total units of work are done, under
// category if one is given (else the Context's category). The percent is
// rounded to 2 decimals; the time left is estimated from the time since the
// category started, which restarts whenever current is 0.
func (c *Context) SetProgress(current, total int, category ...string) {
	cat := c.category
	if len(category) > 0 {
		cat = category[0]
	}
	if total <= 0 {
		c.warnOnce("progress-total\x00"+cat, fmt.Sprintf("ignored progress%s: total must be > 0 (got %d)", inCategory(cat), total))
		return
	}
	if current < 0 || current > total {
		c.warnOnce("progress-current\x00"+cat, fmt.Sprintf("ignored progress%s: current must be between 0 and %d (got %d)", inCategory(cat), total, current))
		return
	}
	r := c.run
	now := r.now()
	r.mu.Lock()
	ps := r.progress[cat]
	if ps == nil {
		if r.progress == nil {
			r.progress = map[string]*progressState{}
		}
		ps = &progressState{start: now}
		r.progress[cat] = ps
	}
	if current == 0 {
		ps.start = now
	}
	elapsed := now.Sub(ps.start)
	r.mu.Unlock()

	e := c.event(EventProgress, LevelInfo)
	e.Time = now
	e.Category = cat
	e.Current, e.Total = current, total
	e.Percent = math.Round(float64(current)/float64(total)*10000) / 100
	e.ETA = -1
	if current > 0 {
		e.ETA = time.Duration(float64(elapsed) / float64(current) * float64(total-current))
	}
	r.handle(e)
}

// SetMetrics merges values into the metrics of category (later values win)
// and reports the category's cumulative metrics. category is required; an
// empty one falls back to the Context's category.
func (c *Context) SetMetrics(values map[string]any, category string) {
	if category == "" {
		category = c.category
	}
	if category == "" {
		c.warnOnce("metrics-category", "ignored metrics: a category is required, as in SetMetrics(values, \"training\")")
		return
	}
	r := c.run
	r.mu.Lock()
	if r.metrics == nil {
		r.metrics = map[string]map[string]any{}
	}
	m := r.metrics[category]
	if m == nil {
		m = make(map[string]any, len(values))
		r.metrics[category] = m
	}
	maps.Copy(m, values)
	snapshot := maps.Clone(m)
	r.mu.Unlock()

	e := c.event(EventMetrics, LevelInfo)
	e.Category = category
	e.Values = snapshot
	r.handle(e)
}

// Metrics returns a copy of the cumulative metrics of category.
func (c *Context) Metrics(category string) map[string]any {
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	return maps.Clone(c.run.metrics[category])
}

// warnOnce reports a misuse as a warning the first time it happens in a run.
func (c *Context) warnOnce(key, message string) {
	r := c.run
	r.mu.Lock()
	seen := r.warned[key]
	if !seen {
		if r.warned == nil {
			r.warned = map[string]bool{}
		}
		r.warned[key] = true
	}
	r.mu.Unlock()
	if !seen {
		c.LogMessage(message+" (reported once per run)", LevelWarning)
	}
}

func inCategory(cat string) string {
	if cat == "" {
		return ""
	}
	return fmt.Sprintf(" in category %q", cat)
}

// Slog returns a *slog.Logger whose records go to the run's logger: a record
// without attributes becomes a message, one with attributes a log event
// named after the record's message with the attributes as its data.
func (c *Context) Slog() *slog.Logger {
	if c.category != "" {
		return slog.New(&slogHandler{ctx: c})
	}
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	if c.run.slog == nil {
		c.run.slog = slog.New(&slogHandler{ctx: c})
	}
	return c.run.slog
}
