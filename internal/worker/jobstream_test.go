package worker

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
)

func TestJobStreamParsing(t *testing.T) {
	var events []synapse.Event
	var raw []string
	s := NewJobStream(func(e synapse.Event) { events = append(events, e) }, func(l string) { raw = append(raw, l) })
	log := strings.Join([]string{
		"2026-11-27 INFO job_manager.py:581 -- Runtime env is setting up.",
		`{"type":"progress","time":"2026-11-27T00:00:00Z","level":"info","category":"c","current":1,"total":2,"percent":50}`,
		`{"type":"log","time":"2026-11-27T00:00:00Z","level":"info","event":"e","data":{"k":1}}`,
		`{"type":"unknown","x":1}`,
		`{"type":"metric","time":"2026-11-27T00:00:00Z","level":"info","category":"train","key":"loss","value":0.5}`,
		`{"type":"steps","time":"2026-11-27T00:00:00Z","level":"info","steps":[{"name":"a","order":0,"proportion":100}]}`,
		ResultStart, `{"early":true}`, ResultEnd, // printed by the action itself: not the result
		"plain stderr line",
		ResultStart, `{"final":`, `1}`, ResultEnd,
		"Running entrypoint for job x: chmod ...",
	}, "\n")
	// Feed it in awkward chunks: the stream must not depend on chunk edges.
	for i := 0; i < len(log); i += 7 {
		s.Write(log[i:min(i+7, len(log))])
	}
	s.Close()
	if len(events) != 4 || events[0].Type != synapse.EventProgress || events[0].Percent != 50 || events[1].Data["k"] == nil ||
		events[2].Type != synapse.EventMetric || events[2].Value != 0.5 || events[3].Type != synapse.EventSteps || len(events[3].Steps) != 1 {
		t.Errorf("events = %+v", events)
	}
	wantRaw := []string{"2026-11-27 INFO job_manager.py:581 -- Runtime env is setting up.", `{"type":"unknown","x":1}`, "plain stderr line", "Running entrypoint for job x: chmod ..."}
	if strings.Join(raw, "|") != strings.Join(wantRaw, "|") {
		t.Errorf("raw lines = %q", raw)
	}
	if v, err := UnwrapResult(s.Result); err != nil || v.(map[string]any)["final"] == nil {
		t.Errorf("result = %s (%v): the last marker pair must win", s.Result, err)
	}
	if v, _ := UnwrapResult([]byte(`{"result":[1,2]}`)); len(v.([]any)) != 2 {
		t.Errorf("wrapped result not unwrapped: %v", v)
	}
}

func TestNeedsWrap(t *testing.T) {
	for in, wrap := range map[string]bool{`{"a":1}`: false, `{"result":"ok","b":1}`: false, `{"result":"ok"}`: true, `42`: true, `"s"`: true, `[1]`: true, `null`: true} {
		if got := NeedsWrap([]byte(in)); got != wrap {
			t.Errorf("NeedsWrap(%s) = %v, want %v", in, got, wrap)
		}
	}
}

// TestCheckResult: a result read from a job's log may be recorded only if
// it is JSON of at most MaxResult bytes; a result cut into lines (the
// process agent cuts lines every 8 MiB) is neither.
func TestCheckResult(t *testing.T) {
	big := `{"data":"` + strings.Repeat("a", MaxResult) + `"}`
	cut := ParseJobLog(ResultStart + "\n" + big[:MaxResult] + "\n" + big[MaxResult:] + "\n" + ResultEnd + "\n").Result
	tests := []struct {
		name    string
		raw     string
		size    int
		invalid bool
		ok      bool
	}{
		{"object", `{"ok":true}`, 0, false, true},
		{"scalar", `42`, 0, false, true},
		{"exactly the limit", `"` + strings.Repeat("a", MaxResult-2) + `"`, 0, false, true},
		{"over the limit", big, len(big), false, false},
		{"cut into lines", string(cut), len(cut), false, false},
		{"not JSON", `{"data": [1, 2`, 14, true, false},
		{"a newline in a string", "{\"a\":\"x\ny\"}", 11, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckResult(json.RawMessage(tt.raw))
			if tt.ok {
				if err != nil {
					t.Errorf("CheckResult = %v, want nil", err)
				}
				return
			}
			var re *ResultError
			if !errors.Is(err, ErrResult) || !errors.As(err, &re) || re.Size != tt.size || re.Invalid != tt.invalid {
				t.Fatalf("CheckResult = %#v, want size %d invalid %v", err, tt.size, tt.invalid)
			}
			want := "over the 8 MiB a result may be"
			if tt.invalid {
				want = "the result the plugin printed is not valid JSON"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		})
	}
}
