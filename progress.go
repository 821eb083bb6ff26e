package synapse

import (
	"encoding/json"
	"math"
	"sync"
	"time"
)

// ProgressRecord is the progress of one run in the shape the Synapse
// backend stores in a job's progress_record field (PATCH /jobs/{id}/):
//
//	{"record": {"steps": {STEP: {"proportion", "percent", "time_remaining", "order"}}},
//	 "current_progress": {"overall", "step", "percent", "time_remaining", "order", "time_elapsed"}}
//
// Build one with a ProgressTracker; Context.Progress returns the run's.
type ProgressRecord struct {
	// Steps holds every category that reported progress, and every step of
	// the plan (EventSteps) even before it starts.
	Steps map[string]StepProgress
	// Percent and TimeRemaining are those of progress reported without a
	// category (record fields "percent" and "time_remaining"); nil when
	// there was none.
	Percent       *float64
	TimeRemaining *float64
	// Current is where the run is now.
	Current CurrentProgress
}

// StepProgress is one step (category) of a ProgressRecord.
type StepProgress struct {
	// Proportion is the step's share of the whole run, in percent: from the
	// plan, else 0 (the step does not move Overall).
	Proportion float64 `json:"proportion"`
	// Percent is the step's last reported percent (0–100); a failed step
	// keeps the percent it reached (the Python SDK's JobLogger sets 0).
	Percent float64 `json:"percent"`
	// TimeRemaining is the step's estimated time left in seconds, nil
	// while unknown.
	TimeRemaining *float64 `json:"time_remaining"`
	// Order is the step's 0-based position in the plan; nil for a
	// category the plan does not name.
	Order *int `json:"order,omitempty"`
	// Status is "failed" once SetProgressFailed marked the step, else "".
	Status string `json:"status,omitempty"`
}

// CurrentProgress is the current_progress part of a ProgressRecord.
type CurrentProgress struct {
	// Overall is the progress of the whole run in percent (0–100, two
	// decimals). It never decreases. With a plan, it is the sum of each
	// planned step's proportion times its percent (a step that has not
	// reported counts 0; a category outside the plan, nothing); without
	// one, it is the highest percent any category has reached. (The Python
	// SDK's JobLogger counts every step before the current one whole, even
	// one that failed; synapse-go does not.)
	Overall float64 `json:"overall"`
	// Step is the category that reported progress last ("" for none or for
	// progress without a category).
	Step string `json:"step,omitempty"`
	// Percent and TimeRemaining (seconds, nil while unknown) are Step's.
	Percent       float64  `json:"percent"`
	TimeRemaining *float64 `json:"time_remaining"`
	// Order is Step's position in the plan, nil when it has none.
	Order *int `json:"order,omitempty"`
	// TimeElapsed is the run's duration in seconds, set when it ended
	// (ProgressTracker.Finish); nil before.
	TimeElapsed *float64 `json:"time_elapsed,omitempty"`
}

type progressRecordJSON struct {
	Record struct {
		Steps         map[string]StepProgress `json:"steps"`
		Percent       *float64                `json:"percent,omitempty"`
		TimeRemaining *float64                `json:"time_remaining,omitempty"`
	} `json:"record"`
	Current CurrentProgress `json:"current_progress"`
}

// MarshalJSON encodes the record in the backend's shape.
func (r ProgressRecord) MarshalJSON() ([]byte, error) {
	var j progressRecordJSON
	j.Record.Steps = r.Steps
	if j.Record.Steps == nil {
		j.Record.Steps = map[string]StepProgress{}
	}
	j.Record.Percent, j.Record.TimeRemaining = r.Percent, r.TimeRemaining
	j.Current = r.Current
	return json.Marshal(j)
}

// UnmarshalJSON decodes the backend's shape.
func (r *ProgressRecord) UnmarshalJSON(b []byte) error {
	var j progressRecordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = ProgressRecord{Steps: j.Record.Steps, Percent: j.Record.Percent, TimeRemaining: j.Record.TimeRemaining, Current: j.Current}
	return nil
}

// ProgressTracker builds the ProgressRecord of one run from its events: it
// is a Logger, so put it beside the one that shows the events
// (MultiLogger). It reads EventSteps (the first plan wins) and
// EventProgress, and ignores the rest; the events of one run only. Every
// mode builds the same record from the same action: a run in a plugin
// binary or on a cluster sends the caller every event the tracker needs.
// It is safe for concurrent use.
type ProgressTracker struct {
	mu       sync.Mutex
	plan     map[string]StepInfo // nil until a plan arrives
	order    []StepInfo          // the plan, in order
	steps    map[string]*StepProgress
	current  string
	reported bool // some progress was reported
	overall  float64
	percent  *float64 // progress without a category
	remain   *float64
	start    time.Time // the first event's time
	elapsed  *float64
}

// NewProgressTracker returns a tracker with an empty record.
func NewProgressTracker() *ProgressTracker { return &ProgressTracker{} }

// Handle updates the record with e.
func (t *ProgressTracker) Handle(e Event) {
	if e.Type != EventProgress && e.Type != EventSteps {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.start.IsZero() {
		t.start = e.Time
	}
	if e.Type == EventSteps {
		t.setPlan(e.Steps)
		return
	}
	t.progress(e)
}

func (t *ProgressTracker) setPlan(steps []StepInfo) {
	if t.plan != nil {
		return
	}
	t.plan = make(map[string]StepInfo, len(steps))
	t.order = steps
	if t.steps == nil {
		t.steps = make(map[string]*StepProgress, len(steps))
	}
	for _, s := range steps {
		t.plan[s.Name] = s
		sp := t.steps[s.Name]
		if sp == nil {
			sp = &StepProgress{}
			t.steps[s.Name] = sp
		}
		sp.Proportion = s.Proportion
		sp.Order = new(s.Order)
	}
}

func (t *ProgressTracker) progress(e Event) {
	var remain *float64
	if e.ETA >= 0 && !e.Failed {
		remain = new(math.Round(e.ETA.Seconds()*100) / 100)
	}
	// A failed category keeps the percent it reached (the event's, else
	// the one reported before).
	percent := e.Percent
	reached := func(before *float64) float64 {
		if e.Failed && percent == 0 && before != nil {
			return *before
		}
		return percent
	}
	t.reported = true
	t.current = e.Category
	if e.Category == "" {
		percent = reached(t.percent)
		t.percent, t.remain = new(percent), remain
		t.overall = max(t.overall, min(percent, 100))
		return
	}
	if t.steps == nil {
		t.steps = map[string]*StepProgress{}
	}
	sp := t.steps[e.Category]
	if sp == nil {
		sp = &StepProgress{}
		t.steps[e.Category] = sp
	}
	percent = reached(&sp.Percent)
	sp.Percent, sp.TimeRemaining = percent, remain
	if e.Failed {
		sp.Status = "failed"
	}
	if t.plan == nil {
		t.overall = max(t.overall, min(percent, 100))
		return
	}
	var overall float64
	for _, s := range t.order { // in plan order, so every tracker sums alike
		overall += s.Proportion * t.steps[s.Name].Percent / 100
	}
	t.overall = max(t.overall, min(math.Round(overall*100)/100, 100))
}

// Finish records that the run ended after elapsed (current_progress
// time_elapsed, in seconds).
func (t *ProgressTracker) Finish(elapsed time.Duration) {
	t.mu.Lock()
	t.elapsed = new(math.Round(elapsed.Seconds()*100) / 100)
	t.mu.Unlock()
}

// Record returns a copy of the record so far.
func (t *ProgressTracker) Record() ProgressRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := ProgressRecord{Steps: make(map[string]StepProgress, len(t.steps))}
	for name, sp := range t.steps {
		r.Steps[name] = *sp
	}
	r.Percent, r.TimeRemaining = t.percent, t.remain
	r.Current = CurrentProgress{Overall: math.Round(t.overall*100) / 100, TimeElapsed: t.elapsed}
	if !t.reported {
		return r
	}
	r.Current.Step = t.current
	if t.current == "" {
		if t.percent != nil {
			r.Current.Percent = *t.percent
		}
		r.Current.TimeRemaining = t.remain
		return r
	}
	sp := t.steps[t.current]
	r.Current.Percent, r.Current.TimeRemaining, r.Current.Order = sp.Percent, sp.TimeRemaining, sp.Order
	return r
}
