package synapse

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)

// formatEvents is one event of every kind and shape the console prints.
var formatEvents = []Event{
	{Type: EventLog, Level: LevelInfo, Category: "train", Event: "epoch_complete", Data: map[string]any{"loss": 0.1, "epoch": 0}},
	{Type: EventLog, Level: LevelInfo, Event: "no_data"},
	{Type: EventLog, Level: LevelDebug, Event: "html", Data: map[string]any{"q": "a<b & c>d", "nested": map[string]any{"z": 1, "a": []any{1, "x"}}}},
	{Type: EventLog, Level: LevelWarning, Event: "nan", Data: map[string]any{"loss": math.NaN(), "inf": math.Inf(1)}},
	{Type: EventMessage, Level: LevelSuccess, Message: "Training completed"},
	{Type: EventMessage, Level: LevelError, Category: "upload", Message: "Upload failed"},
	{Type: EventMessage, Level: LevelDebug, Message: "debug detail"},
	{Type: EventMessage, Level: LevelWarning, Message: "disk almost full"},
	{Type: EventProgress, Category: "train", Current: 0, Total: 3, Percent: 0, ETA: -1},
	{Type: EventProgress, Category: "train", Current: 1, Total: 3, Percent: 33.33, ETA: 1234 * time.Millisecond},
	{Type: EventProgress, Category: "train", Current: 2, Total: 4, Percent: 50, ETA: 95 * time.Second},
	{Type: EventProgress, Category: "train", Current: 7, Total: 8, Percent: 87.5, ETA: 3725 * time.Second},
	{Type: EventProgress, Current: 3, Total: 3, Percent: 100, ETA: 0},
	{Type: EventMetrics, Category: "training", Values: map[string]any{"final_loss": 0.05}},
	{Type: EventMetrics, Category: "training", Values: map[string]any{"final_loss": 0.05, "accuracy": 0.93, "epochs": 10}},
	{Type: EventMessage, Level: LevelDanger, Message: "GPU memory at 98%"},
	{Type: EventMessage, Level: LevelCritical, Category: "upload", Message: "storage lost"},
	{Type: EventLog, Level: LevelWarning, Category: "eval", Event: "confusion", Data: map[string]any{"n": 2}, File: "data:image/png;base64,iVBORw0KGgo=", FileName: "cm.png"},
	{Type: EventMetric, Category: "train", Key: "loss", Value: 0.25},
	{Type: EventMetric, Category: "val", Key: "acc", Value: 1e-7, Data: map[string]any{"epoch": 3}},
	{Type: EventMetric, Category: "val", Key: "loss", Value: math.NaN()},
	{Type: EventVisualization, Category: "val", Data: map[string]any{"group": "predictions", "index": 0, "threshold": 0.5}, File: "data:image/jpeg;base64,/9j/", FileName: "pred-0.jpg"},
	{Type: EventTrials, Data: map[string]any{
		"trials":          map[string]any{"t1": map[string]any{"lr": 0.01, "loss": 0.4, "status": "done"}, "t2": map[string]any{"lr": 0.1, "loss": 0.2}},
		"base":            []any{"status"},
		"hyperparameters": []any{"lr"},
		"metrics":         []any{"loss"},
		"best_trial":      "t2",
	}},
	{Type: EventSteps, Steps: []StepInfo{{Name: "download", Order: 0, Proportion: 20}, {Name: "train", Order: 1, Proportion: 80}}},
	{Type: EventProgress, Level: LevelError, Category: "train", Failed: true, ETA: -1},
}

func TestConsoleFormatsGolden(t *testing.T) {
	var buf bytes.Buffer
	l := NewConsoleLogger(&buf)
	for i, e := range formatEvents {
		e.Time = t0
		e.run = uint64(i) // distinct runs: no throttling between these lines
		l.Handle(e)
	}
	golden(t, "console.golden", buf.Bytes())
}

func TestConsoleSpecExamples(t *testing.T) {
	// The exact lines of the contract, independent of the golden file.
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Type: EventLog, Category: "train", Event: "epoch_complete", Data: map[string]any{"epoch": 0, "loss": 0.1}}, `INFO: [train] epoch_complete {"epoch":0,"loss":0.1}`},
		{Event{Type: EventMessage, Level: LevelSuccess, Message: "Training completed"}, `SUCCESS: Training completed`},
		{Event{Type: EventProgress, Category: "train", Current: 1, Total: 2, Percent: 50, ETA: 1200 * time.Millisecond}, `INFO: [train] Progress: 50.0% | ETA: 1.2s`},
		{Event{Type: EventProgress, Current: 1, Total: 3, Percent: 33.33, ETA: -1}, `INFO: Progress: 33.33%`},
		{Event{Type: EventMetrics, Category: "training", Values: map[string]any{"final_loss": 0.05}}, `INFO: [training] Metrics: {"final_loss":0.05}`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		NewConsoleLogger(&buf).Handle(tt.e)
		if got := strings.TrimSuffix(buf.String(), "\n"); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestFormatPercentAndETA(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 50: "50.0", 33.333: "33.33", 12.5: "12.5", 100: "100.0", 66.666: "66.67"} {
		if got := formatPercent(in); got != want {
			t.Errorf("formatPercent(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[time.Duration]string{
		0: "0.0s", 1234 * time.Millisecond: "1.2s", 59 * time.Second: "59.0s",
		61 * time.Second: "1m01s", 3599 * time.Second: "59m59s", 3725 * time.Second: "1h02m05s",
	} {
		if got := formatETA(in); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestConsoleThrottle drives the logger through a real run's Context.
func TestConsoleThrottle(t *testing.T) {
	var buf bytes.Buffer
	c, clock := newTestRun(NewConsoleLogger(&buf))
	const total = 1000
	for i := 0; i <= total; i++ {
		clock.advance(time.Millisecond)
		c.SetProgress(i, total, "train")
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 101 {
		t.Fatalf("%d progress lines for 0..100%%, want 101:\n%s", len(lines), buf.String())
	}
	if lines[0] != "INFO: [train] Progress: 0.0%" || lines[100] != "INFO: [train] Progress: 100.0% | ETA: 0.0s" {
		t.Errorf("first and last lines: %q, %q", lines[0], lines[100])
	}
	if lines[50] != "INFO: [train] Progress: 50.0% | ETA: 0.5s" {
		t.Errorf("halfway line: %q", lines[50])
	}

	// A category change prints even when the percent stays; 0% always prints.
	buf.Reset()
	c.SetProgress(10, 100, "a")
	c.SetProgress(10, 100, "a") // same whole percent, same category: skipped
	c.SetProgress(10, 100, "b")
	c.SetProgress(10, 100, "a") // category changed back: printed
	c.SetProgress(0, 100, "a")
	c.SetProgress(0, 100, "a") // 0% always prints
	if n := strings.Count(buf.String(), "\n"); n != 5 {
		t.Errorf("%d lines, want 5:\n%s", n, buf.String())
	}
}

func TestConsoleThrottleIsPerRun(t *testing.T) {
	var buf bytes.Buffer
	l := NewConsoleLogger(&buf)
	a := newRun(t.Context(), 101, "a", "", NewEnv(nil), l)
	b := newRun(t.Context(), 102, "b", "", NewEnv(nil), l)
	a.SetProgress(5, 10, "x")
	b.SetProgress(5, 10, "x") // another run at the same percent: printed
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, buf.String())
	}
}

func TestJSONLoggerSchema(t *testing.T) {
	var buf bytes.Buffer
	l := NewJSONLogger(&buf)
	for i, e := range formatEvents {
		e.Time = t0
		e.Action, e.JobID = "train", "job-1"
		e.run = uint64(i)
		l.Handle(e)
	}
	golden(t, "events.golden.jsonl", buf.Bytes())

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(formatEvents) {
		t.Fatalf("%d lines for %d events", len(lines), len(formatEvents))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		for _, k := range []string{"type", "time", "level", "action", "job_id"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
		_, hasCurrent := m["current"]
		if isProgress := m["type"] == "progress"; isProgress != hasCurrent {
			t.Errorf("line %d: progress fields on the wrong event type: %s", i, line)
		}
		var back Event
		if err := json.Unmarshal([]byte(line), &back); err != nil {
			t.Fatalf("line %d does not decode as an Event: %v", i, err)
		}
		want := formatEvents[i]
		if back.Type != want.Type || back.Level != want.Level || back.Category != want.Category ||
			back.Current != want.Current || back.Total != want.Total || back.Percent != want.Percent ||
			!back.Time.Equal(t0) || back.JobID != "job-1" {
			t.Errorf("line %d round trip: %+v", i, back)
		}
		if want.Type == EventProgress && want.ETA < 0 && back.ETA != -1 {
			t.Errorf("line %d: ETA %v, want unknown (-1)", i, back.ETA)
		}
		if want.Type == EventProgress && want.ETA >= 0 && back.ETA.Round(time.Millisecond) != want.ETA {
			t.Errorf("line %d: ETA %v, want %v", i, back.ETA, want.ETA)
		}
	}
	if !strings.Contains(lines[2], `"q":"a<b & c>d"`) {
		t.Errorf("HTML characters escaped: %s", lines[2])
	}
	if !strings.Contains(lines[3], `"loss":"NaN"`) {
		t.Errorf("NaN not sent as a string: %s", lines[3])
	}
	if strings.Contains(lines[8], "eta_seconds") || !strings.Contains(lines[9], `"eta_seconds":1.234`) {
		t.Errorf("eta_seconds must be absent while unknown and present after:\n%s\n%s", lines[8], lines[9])
	}
}

func TestEventUnmarshalKeepsLargeIntegers(t *testing.T) {
	var e Event
	if err := json.Unmarshal([]byte(`{"type":"log","time":"2026-01-02T03:04:05Z","level":"info","event":"ids","data":{"id":9007199254740993}}`), &e); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"id":9007199254740993`) {
		t.Errorf("large integer changed: %s", out)
	}
	if err := json.Unmarshal([]byte(`{"type":"log","level":"loud"}`), &e); err == nil {
		t.Error("an unknown level was accepted")
	}
}

func TestTrialsTableOrderAndCells(t *testing.T) {
	var buf bytes.Buffer
	NewConsoleLogger(&buf).Handle(Event{Type: EventTrials, Time: t0, Data: map[string]any{
		"trials": map[string]any{
			"trial-10": map[string]any{"loss": 0.1},
			"trial-2":  map[string]any{"loss": 0.2, "note": "a\tb\nc"},
			"trial-1":  map[string]any{"loss": 0.3},
		},
		"metrics": []any{"loss", "note"}, "best_trial": "trial-10",
	}})
	want := "INFO: Trials: 3 (best: trial-10)\n" +
		"  trial     loss  note\n" +
		"  trial-1   0.3   -\n" +
		"  trial-2   0.2   a b c\n" +
		"* trial-10  0.1   -\n"
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestNaturalCompare(t *testing.T) {
	in := []string{"t10", "t2", "t1", "a", "t02", "t", "b1x", "b1"}
	slices.SortFunc(in, naturalCompare)
	if want := []string{"a", "b1", "b1x", "t", "t1", "t02", "t2", "t10"}; !slices.Equal(in, want) {
		t.Errorf("sorted = %v, want %v", in, want)
	}
}
