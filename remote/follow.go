package remote

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/retry"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// holdBack is how long after the first progress or metrics record a poll
// sees the console log has to show an event of the plugin binary before
// the records are taken as the only source (a console without events).
var holdBack = 2 * time.Second

// endGrace is how long Follow waits, once the job has ended, for the
// console stream's "complete" before reading the rest of the console log
// (GET console_logs/) instead: a backend may not send one.
var endGrace = 10 * time.Second

// Follow passes the job's events to logger until the job has ended and
// its console log is drained, or ctx is done (the job keeps running).
//
// It follows the console log (GET /jobs/{id}/tail_console_logs/, Server-
// Sent Events, reconnecting with Last-Event-ID, or skipping the lines
// already passed when the backend does not number them): a plugin
// binary's JSON event lines become its events, exactly as in the other
// modes; other lines become messages in category Category. Beside it, it
// polls the job (GET /jobs/{id}/, about once a second): a job waiting for
// a slot on its agent gives a message with its place in the queue, and
// when the console log carries no events (a plugin that is not a Go
// binary), progress_record and metrics_record become progress, plan and
// metrics events. A console stream that fails while the job has ended is
// completed from the stored console log.
func (j *Job) Follow(ctx context.Context, logger synapse.Logger) error {
	f := &follower{job: j, logger: synapse.NewRunLogger(logger), steps: map[string]float64{}, metrics: map[string]string{}}
	f.stream = worker.NewJobStream(f.event, f.raw)

	tailCtx, cancelTail := context.WithCancel(ctx)
	defer cancelTail()
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- j.client.TailConsole(tailCtx, j.id, 0, f.line)
	}()
	pollCtx, cancelPoll := context.WithCancel(ctx)
	ended := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		f.poll(pollCtx, ended)
	}()
	defer func() {
		cancelPoll()
		<-pollDone
	}()

	var err error
	select {
	case err = <-tailDone:
	case <-ended:
		select {
		case err = <-tailDone:
		case <-time.After(endGrace):
			cancelTail()
			<-tailDone
			err = f.fill(ctx)
		case <-ctx.Done():
			cancelTail()
			err = <-tailDone
		}
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		// The stream failed: if the job has ended, its stored log completes it.
		if bj, gerr := j.client.Job(ctx, j.id); gerr == nil && bj.Ended() {
			err = f.fill(ctx)
		}
	}
	if err != nil {
		return err
	}
	cancelPoll()
	<-pollDone
	// The console log is complete: the job's final record has the last
	// progress and metrics (for a console without events).
	if bj, gerr := j.client.Job(ctx, j.id); gerr == nil {
		f.observe(bj, true)
	}
	f.mu.Lock()
	f.stream.Close()
	f.mu.Unlock()
	j.mu.Lock()
	j.stream = f.stream
	j.mu.Unlock()
	return nil
}

// follower is the state of one Follow.
type follower struct {
	job    *Job
	logger synapse.Logger

	mu        sync.Mutex // serialises the logger and the state below
	stream    *worker.JobStream
	last      int64 // the number of the last console line read
	sawEvents bool  // the console log carries the plugin binary's events
	// What the poll delivered of the records, for a console without
	// events: each step's last percent, each category's metrics (JSON).
	steps    map[string]float64
	metrics  map[string]string
	planSent bool
	records0 time.Time // when a poll first saw a record (see observe)
	queue    string    // the last queue note
}

// line takes one console line of the stream.
func (f *follower) line(l backend.Line) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Seq <= f.last {
		return nil
	}
	f.last = l.Seq
	f.stream.Write(l.Text + "\n")
	return nil
}

// fill reads the stored console log and passes on the lines the stream
// did not.
func (f *follower) fill(ctx context.Context) error {
	lines, err := f.job.client.ConsoleLogs(ctx, f.job.id)
	if err != nil {
		return err
	}
	for i, text := range lines {
		_ = f.line(backend.Line{Seq: int64(i + 1), Text: text})
	}
	return nil
}

// event passes on an event of the plugin binary (f.mu is held).
func (f *follower) event(e synapse.Event) {
	f.sawEvents = true
	f.logger.Handle(e)
}

// raw passes on a console line that is not an event (f.mu is held): a
// line of the Python SDK's JobLogger ("[STEP: s] [LEVEL: X] text") as a
// message of level X in category s (else Category), a message's content
// alone; its progress and metrics lines are left out, as the job's record
// carries them.
func (f *follower) raw(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	step, level, msg, ok := pythonLine(line)
	if !ok {
		f.note(line)
		return
	}
	if step != "" && (progressLine.MatchString(msg) || strings.HasPrefix(msg, "Metrics: ")) {
		return
	}
	f.logger.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: level, Category: cmp.Or(step, Category), JobID: f.job.id, Message: msg})
}

// pythonConsole matches a console line of the Python SDK's JobLogger:
// "[STEP: train] [LEVEL: WARNING] text" (the step is optional); ANSI
// colours are removed first.
var (
	pythonConsole = regexp.MustCompile(`^(?:\[STEP: ([^\]]*)\] )?\[LEVEL: ([A-Za-z]+)\] ?(.*)$`)
	ansiEscape    = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	progressLine  = regexp.MustCompile(`^Progress: [0-9.]+% \| ETA: `)
)

// pythonLine parses a console line of the Python SDK's logger: its step
// ("" for none), level and text; ok is false for any other line, and for
// a level synapse-go does not know.
func pythonLine(line string) (step string, level synapse.Level, msg string, ok bool) {
	m := pythonConsole.FindStringSubmatch(ansiEscape.ReplaceAllString(line, ""))
	if m == nil || level.UnmarshalText([]byte(m[2])) != nil {
		return "", 0, "", false
	}
	msg = m[3]
	if c := pythonMessage.FindStringSubmatch(msg); c != nil {
		msg = c[1]
	}
	return m[1], level, msg, true
}

// pythonMessage matches the JobLogger's line of a message ("message
// {'content': 'text'}", a Python dict's repr) to show the text alone.
var pythonMessage = regexp.MustCompile(`^message \{'content': ['"](.*)['"]\}$`)

// note passes on a message of category Category (f.mu is held).
func (f *follower) note(msg string) {
	f.logger.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelInfo, Category: Category, JobID: f.job.id, Message: msg})
}

// poll reads the job about once a second until ctx ends, and closes ended
// when it has ended.
func (f *follower) poll(ctx context.Context, ended chan<- struct{}) {
	bo := retry.New(pollFirst, pollMax, 2)
	closed := false
	for {
		if retry.Sleep(ctx, bo.Next()) != nil {
			return
		}
		bj, err := f.job.client.Job(ctx, f.job.id)
		if err != nil {
			continue // the console stream reports a backend that is gone
		}
		f.observe(bj, false)
		if bj.Ended() && !closed {
			close(ended)
			closed = true
		}
	}
}

// observe delivers what a read of the job says: the queue note, and, for a
// console log without events, the records as events. The records are
// held back until holdBack after a poll first saw one, so the binary's
// own events (which reach the console log a little after the records
// reach the job) decide first whether the console carries them; final
// (the console log is complete) delivers them at once.
func (f *follower) observe(bj *backend.Job, final bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := bj.Meta.Queue; q != nil && bj.Status == backend.StatusPending {
		note := fmt.Sprintf("job %s is waiting for a slot on its agent: position %d", bj.ID, q.Position)
		if q.Reason != "" {
			note += " (" + q.Reason + ")"
		}
		if note != f.queue {
			f.queue = note
			f.note(note)
		}
	}
	if f.sawEvents {
		return
	}
	if f.records0.IsZero() && (len(bj.ProgressRecord) > 0 || len(bj.MetricsRecord) > 0) {
		f.records0 = time.Now()
	}
	if final || !f.records0.IsZero() && time.Since(f.records0) >= holdBack {
		f.records(bj)
	}
}

// records delivers a job's progress_record and metrics_record as events:
// the plan (steps with an order and a proportion) once, then each step
// whose percent changed, the current step last, then each category whose
// metrics changed (f.mu is held).
func (f *follower) records(bj *backend.Job) {
	now := time.Now()
	if len(bj.ProgressRecord) > 0 {
		var r synapse.ProgressRecord
		if json.Unmarshal(bj.ProgressRecord, &r) == nil {
			f.progress(r, now)
		}
	}
	m := metricsOf(bj.MetricsRecord)
	for _, cat := range slices.Sorted(maps.Keys(m)) {
		b, _ := json.Marshal(m[cat])
		if f.metrics[cat] == string(b) {
			continue
		}
		f.metrics[cat] = string(b)
		f.logger.Handle(synapse.Event{Type: synapse.EventMetrics, Time: now, Level: synapse.LevelInfo, Category: cat, JobID: bj.ID, Values: m[cat]})
	}
}

func (f *follower) progress(r synapse.ProgressRecord, now time.Time) {
	type step struct {
		name string
		synapse.StepProgress
	}
	var steps []step
	for name, s := range r.Steps {
		steps = append(steps, step{name, s})
	}
	order := func(s step) int {
		if s.Order == nil {
			return math.MaxInt
		}
		return *s.Order
	}
	slices.SortFunc(steps, func(a, b step) int {
		if a.name == r.Current.Step || b.name == r.Current.Step {
			return cmpBool(a.name == r.Current.Step, b.name == r.Current.Step)
		}
		return cmp.Or(cmp.Compare(order(a), order(b)), strings.Compare(a.name, b.name))
	})
	if !f.planSent {
		var plan []synapse.StepInfo
		for _, s := range steps {
			if s.Order != nil && s.Proportion > 0 {
				plan = append(plan, synapse.StepInfo{Name: s.name, Order: *s.Order, Proportion: s.Proportion})
			}
		}
		if len(plan) > 0 {
			slices.SortFunc(plan, func(a, b synapse.StepInfo) int { return cmp.Compare(a.Order, b.Order) })
			f.planSent = true
			f.logger.Handle(synapse.Event{Type: synapse.EventSteps, Time: now, Level: synapse.LevelInfo, JobID: f.job.id, Steps: plan})
		}
	}
	emit := func(category string, percent float64, remaining *float64, failed bool) {
		key := category
		if failed {
			key += "\x00failed"
		}
		if last, ok := f.steps[key]; ok && last == percent {
			return
		}
		f.steps[key] = percent
		e := synapse.Event{Type: synapse.EventProgress, Time: now, Level: synapse.LevelInfo, JobID: f.job.id, Category: category, ETA: -1, Failed: failed, Percent: percent}
		if !failed {
			e.Current, e.Total = int(math.Round(percent)), 100
		}
		if remaining != nil {
			e.ETA = time.Duration(*remaining * float64(time.Second))
		}
		f.logger.Handle(e)
	}
	if r.Percent != nil {
		emit("", *r.Percent, r.TimeRemaining, false)
	}
	for _, s := range steps {
		emit(s.name, s.Percent, s.TimeRemaining, s.Status == "failed")
	}
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
