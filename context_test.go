package synapse

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a minimal Logger for the package's own tests.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Handle(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// fakeClock returns a clock reading start plus the sum of the steps given to advance.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

func newTestRun(logger Logger) (*Context, *fakeClock) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newRun(context.Background(), 1, "train", "job-1", NewEnv(nil), logger)
	c.run.now = clock.Now
	return c, clock
}

func TestSetProgressPercentAndETA(t *testing.T) {
	rec := &recorder{}
	c, clock := newTestRun(rec)
	c.SetProgress(0, 3, "train")
	clock.advance(2 * time.Second)
	c.SetProgress(1, 3, "train") // 2s per unit, 2 units left
	clock.advance(4 * time.Second)
	c.SetProgress(3, 3, "train")
	clock.advance(10 * time.Second)
	c.SetProgress(0, 4, "train") // restart: the clock restarts too
	clock.advance(time.Second)
	c.SetProgress(1, 4, "train")

	want := []struct {
		percent float64
		eta     time.Duration
	}{
		{0, -1}, {33.33, 4 * time.Second}, {100, 0}, {0, -1}, {25, 3 * time.Second},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("%d events, want %d", len(rec.events), len(want))
	}
	for i, w := range want {
		e := rec.events[i]
		if e.Type != EventProgress || e.Category != "train" || e.Action != "train" || e.JobID != "job-1" {
			t.Errorf("event %d = %+v", i, e)
		}
		if e.Percent != w.percent || e.ETA != w.eta {
			t.Errorf("event %d: percent %v ETA %v, want %v %v", i, e.Percent, e.ETA, w.percent, w.eta)
		}
	}
}

func TestProgressETAPerCategory(t *testing.T) {
	rec := &recorder{}
	c, clock := newTestRun(rec)
	c.SetProgress(0, 10, "download")
	clock.advance(5 * time.Second)
	c.SetProgress(0, 10, "train") // starts now
	clock.advance(time.Second)
	c.SetProgress(5, 10, "download") // 6s elapsed for 5 units
	c.SetProgress(1, 10, "train")    // 1s elapsed for 1 unit
	if got := rec.events[2].ETA; got != 6*time.Second {
		t.Errorf("download ETA = %v, want 6s", got)
	}
	if got := rec.events[3].ETA; got != 9*time.Second {
		t.Errorf("train ETA = %v, want 9s", got)
	}
}

func TestMisuseWarnsOnceAndNeverPanics(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	for range 3 {
		c.SetProgress(1, 0, "x")
		c.SetProgress(-1, 10, "x")
		c.SetProgress(11, 10, "x")
		c.SetMetrics(map[string]any{"a": 1}, "")
	}
	var got []string
	for _, e := range rec.events {
		if e.Type != EventMessage || e.Level != LevelWarning {
			t.Errorf("unexpected event %+v", e)
		}
		got = append(got, e.Message)
	}
	want := []string{
		`ignored progress in category "x": total must be > 0 (got 0) (reported once per run)`,
		`ignored progress in category "x": current must be between 0 and 10 (got -1) (reported once per run)`,
		`ignored metrics: a category is required, as in SetMetrics(values, "training") (reported once per run)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMetricsMergePerCategory(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	c.SetMetrics(map[string]any{"loss": 0.5, "acc": 0.1}, "training")
	c.SetMetrics(map[string]any{"loss": 0.2}, "training")
	c.SetMetrics(map[string]any{"map": 0.7}, "validation")
	wantValues := []map[string]any{
		{"loss": 0.5, "acc": 0.1},
		{"loss": 0.2, "acc": 0.1},
		{"map": 0.7},
	}
	for i, w := range wantValues {
		if !reflect.DeepEqual(rec.events[i].Values, w) {
			t.Errorf("event %d values = %v, want %v", i, rec.events[i].Values, w)
		}
	}
	// Events hold snapshots: later merges do not change earlier events.
	if rec.events[0].Values["loss"] != 0.5 {
		t.Error("an earlier metrics event changed after a later merge")
	}
	if got := c.Metrics("training"); !reflect.DeepEqual(got, wantValues[1]) {
		t.Errorf("Metrics(training) = %v", got)
	}
}

func TestWithCategory(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	step := c.WithCategory("convert")
	step.Log("converted", map[string]any{"n": 1})
	step.LogMessage("halfway", LevelInfo)
	step.SetProgress(1, 2)
	step.SetProgress(1, 2, "other")
	step.SetMetrics(map[string]any{"files": 3}, "")
	c.Log("plain", nil)
	wantCats := []string{"convert", "convert", "convert", "other", "convert", ""}
	for i, w := range wantCats {
		if rec.events[i].Category != w {
			t.Errorf("event %d category = %q, want %q", i, rec.events[i].Category, w)
		}
	}
	if step.Category() != "convert" || c.Category() != "" || step.JobID() != "job-1" {
		t.Error("WithCategory changed the parent or lost the run")
	}
}

func TestSlogRecords(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	log := c.Slog()
	log.Debug("debugging")
	log.Info("epoch done", "epoch", 2, slog.Group("opt", "lr", 0.1))
	log.Warn("slow disk")
	log.Error("failed", "err", "boom")
	log.With("run", 7).WithGroup("g").With("a", 1).Info("nested", "b", 2)
	c.WithCategory("train").Slog().Info("categorised")

	want := []Event{
		{Type: EventMessage, Level: LevelDebug, Message: "debugging"},
		{Type: EventLog, Level: LevelInfo, Event: "epoch done", Data: map[string]any{"epoch": int64(2), "opt": map[string]any{"lr": 0.1}}},
		{Type: EventMessage, Level: LevelWarning, Message: "slow disk"},
		{Type: EventLog, Level: LevelError, Event: "failed", Data: map[string]any{"err": "boom"}},
		{Type: EventLog, Level: LevelInfo, Event: "nested", Data: map[string]any{"run": int64(7), "g": map[string]any{"a": int64(1), "b": int64(2)}}},
		{Type: EventMessage, Level: LevelInfo, Message: "categorised", Category: "train"},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("%d events, want %d", len(rec.events), len(want))
	}
	for i, w := range want {
		e := rec.events[i]
		if e.Type != w.Type || e.Level != w.Level || e.Message != w.Message || e.Event != w.Event || e.Category != w.Category || !reflect.DeepEqual(e.Data, w.Data) {
			t.Errorf("event %d = %+v\nwant %+v", i, e, w)
		}
	}
}

func TestLevelText(t *testing.T) {
	for _, l := range []Level{LevelDebug, LevelInfo, LevelSuccess, LevelWarning, LevelDanger, LevelError, LevelCritical} {
		b, _ := l.MarshalText()
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Errorf("%v: round trip gave %v, %v", l, back, err)
		}
	}
	var l Level
	if err := l.UnmarshalText([]byte("loud")); err == nil || !strings.Contains(err.Error(), `unknown level "loud"`) {
		t.Errorf("UnmarshalText(loud) = %v", err)
	}
	for in, want := range map[string]Level{"WARN": LevelWarning, "danger": LevelDanger, "Success": LevelSuccess, "CRITICAL": LevelCritical, "fatal": LevelCritical, "": LevelInfo} {
		if err := l.UnmarshalText([]byte(in)); err != nil || l != want {
			t.Errorf("UnmarshalText(%q) = %v, %v", in, l, err)
		}
	}
	if Level(9).String() != "level(9)" {
		t.Errorf("String of unknown level = %q", Level(9).String())
	}
}
