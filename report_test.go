package synapse

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func TestMessageHelpersLevels(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	calls := []struct {
		f    func(string, ...any)
		want Level
	}{
		{c.Debugf, LevelDebug}, {c.Infof, LevelInfo}, {c.Successf, LevelSuccess}, {c.Warningf, LevelWarning},
		{c.Dangerf, LevelDanger}, {c.Errorf, LevelError}, {c.Criticalf, LevelCritical},
	}
	for i, call := range calls {
		call.f("n=%d", i)
	}
	for i, call := range calls {
		e := rec.events[i]
		if e.Type != EventMessage || e.Level != call.want || e.Message != "n="+string(rune('0'+i)) {
			t.Errorf("event %d = %v %v %q, want message at %v", i, e.Type, e.Level, e.Message, call.want)
		}
	}
	c.LogAt(LevelCritical, "disk", map[string]any{"free": 0})
	if e := rec.events[len(rec.events)-1]; e.Type != EventLog || e.Level != LevelCritical || e.Event != "disk" {
		t.Errorf("LogAt event = %+v", e)
	}
}

func TestSlogLevels(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 4} {
		c.Slog().Log(t.Context(), l, "m")
	}
	var got []Level
	for _, e := range rec.events {
		got = append(got, e.Level)
	}
	if want := []Level{LevelDebug, LevelInfo, LevelWarning, LevelError, LevelCritical}; !reflect.DeepEqual(got, want) {
		t.Errorf("levels = %v, want %v", got, want)
	}
}

func TestLogFile(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "cm.png")
	if err := os.WriteFile(png, pngBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	txt := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(txt, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     File
		wantType string
		wantName string
		wantErr  error // matched with errors.Is
	}{
		{"path, type from the extension", File{Path: png}, "image/png", "cm.png", nil},
		{"bytes, type sniffed", File{Data: pngBytes}, "image/png", "(bytes)", nil},
		{"bytes, JPEG sniffed", File{Data: []byte("\xff\xd8\xff\xe0"), Name: "a.jpg"}, "image/jpeg", "a.jpg", nil},
		{"bytes, unknown", File{Data: []byte("hello")}, "application/octet-stream", "(bytes)", nil},
		{"explicit type wins", File{Path: png, ContentType: "image/x-custom"}, "image/x-custom", "cm.png", nil},
		{"exactly the limit", File{Data: make([]byte, MaxFileSize)}, "application/octet-stream", "(bytes)", nil},
		{"path over the limit", File{Path: big}, "", "", ErrFileTooLarge},
		{"bytes over the limit", File{Data: make([]byte, MaxFileSize+1)}, "", "", ErrFileTooLarge},
		{"missing path", File{Path: filepath.Join(dir, "nope.png")}, "", "", fs.ErrNotExist},
		{"text by extension", File{Path: txt}, "text/plain", "a.txt", nil},
		{"content type parameters dropped", File{Data: []byte("x"), ContentType: "Text/Plain; charset=utf-8"}, "text/plain", "(bytes)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			c, _ := newTestRun(rec)
			err := c.LogFile(LevelInfo, "attach", map[string]any{"k": 1}, tt.file)
			if tt.wantErr != nil {
				var fe *FileError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &fe) {
					t.Fatalf("error = %v, want a *FileError matching %v", err, tt.wantErr)
				}
				if len(rec.events) != 0 {
					t.Errorf("an event was reported despite the error")
				}
				if errors.Is(err, ErrFileTooLarge) && (!strings.Contains(err.Error(), "2097153 bytes is over the limit of 2097152 bytes") || !strings.Contains(err.Error(), "MaxFileSize")) {
					t.Errorf("message %q does not name the limit", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e := rec.events[0]
			ct, data, err := DecodeDataURI(e.File)
			if err != nil || ct != tt.wantType || e.FileName != tt.wantName {
				t.Fatalf("file = %s %q (%v), name %q; want %s %q", ct, e.File[:min(len(e.File), 40)], err, e.FileName, tt.wantType, tt.wantName)
			}
			want := tt.file.Data
			if want == nil {
				want, _ = os.ReadFile(tt.file.Path)
			}
			if !bytes.Equal(data, want) {
				t.Errorf("decoded %d bytes, want the file's %d", len(data), len(want))
			}
		})
	}
}

// fifo makes a named pipe in dir: opening it for reading would block.
func fifo(t *testing.T, dir string) string {
	path := filepath.Join(dir, "pipe.png")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDecodeDataURIErrors(t *testing.T) {
	for _, in := range []string{"", "data:image/png,abc", "http://x", "data:image/png;base64,%%%"} {
		if _, _, err := DecodeDataURI(in); err == nil {
			t.Errorf("DecodeDataURI(%q) = nil error", in)
		}
	}
}

func TestLogMetricSeries(t *testing.T) {
	rec := &recorder{}
	c, clock := newTestRun(rec)
	extra := map[string]any{"epoch": 1}
	c.LogMetric("train", "loss", 0.9, extra)
	extra["epoch"] = 99 // the caller's map is copied
	clock.advance(time.Second)
	c.LogMetric("train", "loss", 0.5, map[string]any{"epoch": 2})
	c.LogMetric("train", "acc", 0.7, nil)
	c.WithCategory("val").LogMetric("", "loss", 1.1, nil)

	loss := c.Series("train", "loss")
	if len(loss) != 2 || loss[0].Value != 0.9 || loss[1].Value != 0.5 || loss[0].Extra["epoch"] != 1 || !loss[1].Time.After(loss[0].Time) {
		t.Errorf("train/loss = %+v", loss)
	}
	if acc := c.Series("train", "acc"); len(acc) != 1 || acc[0].Extra != nil {
		t.Errorf("train/acc = %+v", acc)
	}
	if val := c.Series("val", "loss"); len(val) != 1 {
		t.Errorf("val/loss (category from the Context) = %+v", val)
	}
	loss[0].Value = -1
	if c.Series("train", "loss")[0].Value != 0.9 {
		t.Error("Series returned the context's own slice")
	}
	if c.Metrics("train") != nil {
		t.Error("LogMetric changed the SetMetrics snapshot")
	}
	var n int
	for _, e := range rec.events {
		if e.Type == EventMetric {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d metric events, want one per point (4)", n)
	}
}

func TestMetricJSONFastPathMatchesEncoder(t *testing.T) {
	values := []float64{0, 1, -1, 0.25, 1e-7, -1e-7, 1e21, 123456789.125, 1e-6, 5e-324, math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		values = append(values, r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)))
	}
	for _, v := range values {
		for _, e := range []Event{
			{Type: EventMetric, Time: t0, Category: "train", Key: "loss", Value: v},
			{Type: EventMetric, Time: t0.In(time.FixedZone("KST", 9*3600)), Action: "a", JobID: "j", Key: "k", Value: v, Level: LevelDebug},
		} {
			fast, ok := appendMetric(nil, &e)
			if !ok {
				t.Fatalf("fast path refused %+v", e)
			}
			slow, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if string(fast) != string(slow)+"\n" {
				t.Fatalf("value %v:\nfast %s\nslow %s", v, fast, slow)
			}
			var back Event
			if err := json.Unmarshal(fast, &back); err != nil {
				t.Fatal(err)
			}
			if back.Value != v && !(math.IsNaN(back.Value) && math.IsNaN(v)) {
				t.Errorf("round trip of %v gave %v", v, back.Value)
			}
		}
	}
	// Extra metrics: flat maps of numbers, strings and booleans take the
	// fast path; anything else the encoder's. Both write the same line.
	nine := map[string]any{}
	for i := range 9 {
		nine[string(rune('a'+i))] = i
	}
	for _, data := range []map[string]any{
		{"epoch": 3},
		{"b": 1.5, "a": "x", "c": true, "d": int64(-7), "e": 1e-9},
		{"nan": math.NaN()},
		{"nested": map[string]any{"x": 1}},
		{"q\"uote": 1},
		{"s": "ü"},
		{"n": json.Number("12")},
		nine,
	} {
		e := Event{Type: EventMetric, Time: t0, Category: "train", Key: "loss", Value: 0.5, Data: data}
		var fast, slow bytes.Buffer
		NewJSONLogger(&fast).Handle(e)
		(&jsonLogger{w: &slow}).slowHandle(e)
		if fast.String() != slow.String() {
			t.Errorf("data %v:\nlogger  %s\nencoder %s", data, fast.String(), slow.String())
		}
	}
	// Strings that need escaping take the encoder's path, and still decode.
	var buf bytes.Buffer
	l := NewJSONLogger(&buf)
	l.Handle(Event{Type: EventMetric, Time: t0, Category: "a\"b", Key: "ü<", Value: 1})
	var back Event
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Category != "a\"b" || back.Key != "ü<" || back.Value != 1 {
		t.Errorf("escaped metric = %+v, %v (%s)", back, err, buf.Bytes())
	}
}

func TestReportingMisuseWarns(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	c.LogMetric("", "loss", 1, nil)
	c.LogMetric("train", "", 1, nil)
	c.LogLocalized(nil, LevelInfo)
	c.LogAt(Level(42), "e", nil)
	c.LogMessage("low", Level(-9))
	var warnings []string
	for _, e := range rec.events {
		switch e.Type {
		case EventMessage:
			if e.Level == LevelWarning {
				warnings = append(warnings, e.Message)
			}
		case EventMetric:
			t.Errorf("a metric point without a category or key was reported: %+v", e)
		}
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "both are required") || !strings.Contains(warnings[1], "empty localized message") {
		t.Errorf("warnings = %q", warnings)
	}
	if got := []Level{rec.events[len(rec.events)-2].Level, rec.events[len(rec.events)-1].Level}; got[0] != LevelCritical || got[1] != LevelDebug {
		t.Errorf("out-of-range levels reported as %v, want critical and debug", got)
	}
}

func TestConsoleMetricThrottle(t *testing.T) {
	var buf bytes.Buffer
	c, clock := newTestRun(NewConsoleLogger(&buf))
	for i := range 10 { // 10 points in 0.9s: one line
		c.LogMetric("train", "loss", float64(i), nil)
		clock.advance(100 * time.Millisecond)
	}
	c.LogMetric("train", "acc", 0.5, nil) // another series: its own line
	c.LogMetric("train", "loss", 10, nil) // 1s after the first line
	want := "INFO: [train] Metric: loss=0\nINFO: [train] Metric: acc=0.5\nINFO: [train] Metric: loss=10\n"
	if buf.String() != want {
		t.Errorf("console:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestLogVisualization(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	if err := c.LogVisualization("val", "pred", 3, File{Data: pngBytes, Name: "p.png"}, map[string]any{"iou": 0.8}); err != nil {
		t.Fatal(err)
	}
	e := rec.events[0]
	if e.Type != EventVisualization || e.Category != "val" || e.Data["group"] != "pred" || e.Data["index"] != 3 || e.Data["iou"] != 0.8 || e.FileName != "p.png" {
		t.Errorf("event = %+v", e)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake.png")
	if err := os.WriteFile(fake, []byte("text, not a PNG"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		category string
		file     File
		want     string
	}{
		{"text bytes", "val", File{Data: []byte("not an image")}, "not a PNG, JPEG, GIF or WebP image"},
		{"text named .png", "val", File{Path: fake}, "not a PNG, JPEG, GIF or WebP image"},
		{"explicit non-image type", "val", File{Data: pngBytes, ContentType: "text/plain"}, "content type text/plain is not an image"},
		{"bad content type", "val", File{Data: pngBytes, ContentType: "a,b;base64"}, `content type "a,b;base64" is not a MIME type`},
		{"no category", "", File{Data: pngBytes}, "a category is required"},
		{"a pipe", "val", File{Path: fifo(t, dir)}, "not a regular file"},
		{"a device", "val", File{Path: "/dev/zero"}, "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.LogVisualization(tt.category, "pred", 4, tt.file, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if len(rec.events) != 1 {
		t.Error("a rejected image was reported")
	}
	if err := c.LogVisualization("val", "pred", 5, File{Data: pngBytes, ContentType: "image/svg+xml"}, map[string]any{"group": "x"}); err != nil {
		t.Errorf("explicit image type: %v", err)
	}
	if e := rec.events[len(rec.events)-2]; e.Type != EventMessage || e.Level != LevelWarning || !strings.Contains(e.Message, `meta key "group" is replaced`) {
		t.Errorf("no warning for a clashing meta key: %+v", e)
	}
}

func TestLocalized(t *testing.T) {
	m := Localized{"en": "Done", "ko": "완료", "de": "Fertig", "pt": "Feito", "pt-BR": "Pronto"}
	for lang, want := range map[string]string{"ko": "완료", "fr": "Done", "en": "Done", "pt-BR": "Pronto", "pt-PT": "Feito", "pt_AO": "Feito", "de-CH": "Fertig", "en-GB": "Done", "KO": "완료", "PT-br": "Pronto"} {
		if got := m.In(lang); got != want {
			t.Errorf("In(%q) = %q, want %q", lang, got, want)
		}
	}
	if got := (Localized{"ko": "완료", "de": "Fertig"}).In("fr"); got != "Fertig" {
		t.Errorf("no en: In = %q, want the first language alphabetically (de)", got)
	}
	if (Localized{}).In("en") != "" {
		t.Error("empty Localized gave text")
	}

	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"default", nil, "Done"},
		{"env", []Option{WithEnv(NewEnv(map[string]any{LanguageEnv: "ko"}))}, "완료"},
		{"option beats env", []Option{WithEnv(NewEnv(map[string]any{LanguageEnv: "ko"})), WithLanguage("de")}, "Fertig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			opts := append([]Option{WithLogger(rec), WithEnv(NewEnv(nil))}, tt.opts...)
			a := NewAction("hi", func(ctx *Context, _ struct{}) (string, error) {
				ctx.LogLocalized(m, LevelSuccess)
				if env := ctx.Env().GetString(LanguageEnv, "en"); env != ctx.Language() {
					t.Errorf("env SYNAPSE_LANGUAGE = %q, Language() = %q; want them equal as in other modes", env, ctx.Language())
				}
				return ctx.Language(), nil
			})
			if _, err := NewLocalExecutor(opts...).Execute(t.Context(), a, nil); err != nil {
				t.Fatal(err)
			}
			if e := rec.events[0]; e.Message != tt.want || e.Level != LevelSuccess {
				t.Errorf("message = %q at %v, want %q", e.Message, e.Level, tt.want)
			}
		})
	}
	if cfg := NewExecutorConfig(WithLanguage("ko"), WithLogger(DiscardLogger)); cfg.Env.GetString(LanguageEnv, "") != "ko" {
		t.Errorf("NewExecutorConfig does not pass the language to other modes: env %v", cfg.Env.Map())
	}
}

func TestSetProgressFailed(t *testing.T) {
	var buf bytes.Buffer
	c, _ := newTestRun(NewConsoleLogger(&buf))
	c.SetProgress(1, 2, "upload")
	c.WithCategory("upload").SetProgressFailed()
	if !strings.HasSuffix(buf.String(), "ERROR: [upload] Progress: failed\n") {
		t.Errorf("console:\n%s", buf.String())
	}
	rec := c.Progress()
	if st := rec.Steps["upload"]; st.Status != "failed" || st.Percent != 50 || rec.Current.Overall != 50 || rec.Current.Percent != 50 {
		t.Errorf("record = %+v (step %+v), want upload failed at the 50%% it reached and overall kept at 50", rec, st)
	}
}

// TestProgressFailedKeepsPercent: a failed step keeps the percent it
// reached in the record (the step's and current_progress's), or takes
// the failed event's when it has one (remote mode rebuilds it so).
func TestProgressFailedKeepsPercent(t *testing.T) {
	ev := func(cat string, pct float64) Event {
		return Event{Type: EventProgress, Category: cat, Current: int(pct), Total: 100, Percent: pct, ETA: 2 * time.Second}
	}
	failed := func(cat string, pct float64) Event {
		return Event{Type: EventProgress, Category: cat, Failed: true, Percent: pct, ETA: -1}
	}
	plan := Event{Type: EventSteps, Steps: []StepInfo{{"download", 0, 20}, {"train", 1, 80}}}
	tests := []struct {
		name    string
		events  []Event
		step    string
		percent float64
	}{
		{"keeps its percent", []Event{plan, ev("download", 100), ev("train", 33.33), failed("train", 0)}, "train", 33.33},
		{"takes the event's percent", []Event{plan, ev("train", 10), failed("train", 40)}, "train", 40},
		{"never reported: 0", []Event{plan, failed("train", 0)}, "train", 0},
		{"no category", []Event{ev("", 30), failed("", 0)}, "", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := NewProgressTracker()
			for _, e := range tt.events {
				pt.Handle(e)
			}
			r := pt.Record()
			if r.Current.Step != tt.step || r.Current.Percent != tt.percent {
				t.Errorf("current = %+v, want step %q at %v%%", r.Current, tt.step, tt.percent)
			}
			if tt.step != "" {
				if st := r.Steps[tt.step]; st.Status != "failed" || st.Percent != tt.percent || st.TimeRemaining != nil {
					t.Errorf("step %s = %+v, want failed at %v%%", tt.step, st, tt.percent)
				}
			} else if r.Percent == nil || *r.Percent != tt.percent {
				t.Errorf("percent = %v, want %v", r.Percent, tt.percent)
			}
		})
	}
}

func TestLogTrialsData(t *testing.T) {
	rec := &recorder{}
	c, _ := newTestRun(rec)
	in := Trials{
		Trials:          map[string]map[string]any{"t1": {"lr": 0.1, "loss": 0.3}},
		Hyperparameters: []string{"lr"}, Metrics: []string{"loss"}, BestTrial: "t1",
	}
	c.LogTrials(in)
	b, _ := json.Marshal(rec.events[0].Data)
	var back Trials
	if err := json.Unmarshal(b, &back); err != nil || back.BestTrial != "t1" || back.Trials["t1"]["lr"] != 0.1 || back.Base == nil {
		t.Errorf("trials data %s → %+v, %v", b, back, err)
	}
}

func TestProgressRecord(t *testing.T) {
	ev := func(cat string, pct float64) Event {
		return Event{Type: EventProgress, Category: cat, Current: int(pct), Total: 100, Percent: pct, ETA: 2 * time.Second}
	}
	plan := Event{Type: EventSteps, Steps: []StepInfo{{"download", 0, 20}, {"train", 1, 70}, {"upload", 2, 10}}}
	tests := []struct {
		name    string
		events  []Event
		overall float64
		step    string
		order   *int
	}{
		{"nothing yet", nil, 0, "", nil},
		{"plan only", []Event{plan}, 0, "", nil},
		{"weighted", []Event{plan, ev("download", 100), ev("train", 50)}, 55, "train", new(1)},
		{"never decreases", []Event{plan, ev("download", 100), ev("train", 50), ev("train", 10)}, 55, "train", new(1)},
		{"unplanned category weighs nothing", []Event{plan, ev("download", 50), ev("extra", 100)}, 10, "extra", nil},
		{"a step counts by its percent, not whole", []Event{plan, ev("download", 100), ev("train", 50), {Type: EventProgress, Category: "train", Failed: true, ETA: -1}, ev("upload", 100)}, 65, "upload", new(2)}, // 20 + 35 (failed at 50%) + 10
		{"no plan: follows the category", []Event{ev("", 30), ev("", 60)}, 60, "", nil},
		{"no plan: never decreases across categories", []Event{ev("a", 80), ev("b", 10)}, 80, "b", nil},
		{"second plan ignored", []Event{plan, {Type: EventSteps, Steps: []StepInfo{{"x", 0, 100}}}, ev("download", 100)}, 20, "download", new(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := NewProgressTracker()
			for _, e := range tt.events {
				pt.Handle(e)
			}
			r := pt.Record()
			if r.Current.Overall != tt.overall || r.Current.Step != tt.step || !reflect.DeepEqual(r.Current.Order, tt.order) {
				t.Errorf("current = %+v (order %v), want overall %v step %q order %v", r.Current, r.Current.Order, tt.overall, tt.step, tt.order)
			}
		})
	}

	pt := NewProgressTracker()
	pt.Handle(plan)
	pt.Handle(ev("download", 100))
	pt.Finish(1500 * time.Millisecond)
	b, err := json.Marshal(pt.Record())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"record":{"steps":{"download":{"proportion":20,"percent":100,"time_remaining":2,"order":0},` +
		`"train":{"proportion":70,"percent":0,"time_remaining":null,"order":1},"upload":{"proportion":10,"percent":0,"time_remaining":null,"order":2}}},` +
		`"current_progress":{"overall":20,"step":"download","percent":100,"time_remaining":2,"order":0,"time_elapsed":1.5}}`
	if string(b) != want {
		t.Errorf("JSON:\n%s\nwant\n%s", b, want)
	}
	var back ProgressRecord
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, pt.Record()) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

// TestThrottledRecordMatches: the record rebuilt from a throttled stream
// (what job and task mode callers see) equals the one from every event.
func TestThrottledRecordMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		full, thin := NewProgressTracker(), NewProgressTracker()
		th := ThrottleProgress(thin)
		cats := []string{"download", "train", "upload"}
		plan := Event{Type: EventSteps, Steps: []StepInfo{{"download", 0, 20}, {"train", 1, 70}, {"upload", 2, 10}}}
		full.Handle(plan)
		th.Handle(plan)
		for _, cat := range cats[:1+r.IntN(3)] {
			total := 1 + r.IntN(1000)
			for cur := 0; cur <= total; cur += 1 + r.IntN(7) {
				e := Event{Type: EventProgress, Category: cat, Current: cur, Total: total, Percent: math.Round(float64(cur)/float64(total)*10000) / 100, ETA: -1}
				full.Handle(e)
				th.Handle(e)
			}
		}
		th.Flush()
		if a, b := full.Record(), thin.Record(); !reflect.DeepEqual(a, b) {
			t.Fatalf("trial %d: throttled record differs:\n%+v\n%+v", trial, a.Current, b.Current)
		}
	}
}
