package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/pipeline"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

type plDownloadParams struct {
	Source string `json:"source" validate:"required"`
	Seed   int64  `json:"seed"`
}

type plDownloadResult struct {
	DatasetPath string `json:"dataset_path"`
	Count       int    `json:"count"`
}

type plConvertParams struct {
	DatasetPath string `json:"dataset_path" validate:"required"`
	Format      string `json:"format" default:"yolo"`
}

type plConvertResult struct {
	ConvertedPath string `json:"converted_path"`
	Count         int    `json:"count"`
}

type plTrainParams struct {
	ConvertedPath string `json:"converted_path" validate:"required"`
	DatasetPath   string `json:"dataset_path"`
	Count         int    `json:"count"`
	Epochs        int    `json:"epochs" default:"1"`
	Seed          int64  `json:"seed"`
}

type plTrainResult struct {
	ModelPath string `json:"model_path"`
	Epochs    int    `json:"epochs"`
}

// plFixture holds the actions of the test pipeline download → convert →
// train and records what they received.
type plFixture struct {
	mu          sync.Mutex
	calls       []string
	got         map[string]any // action → params received
	dirs        map[string]pipeline.Dirs
	jobIDs      []string
	failConvert error

	download, convert, train synapse.Action
}

func newPLFixture() *plFixture {
	f := &plFixture{got: map[string]any{}, dirs: map[string]pipeline.Dirs{}}
	record := func(ctx *synapse.Context, name string, p any) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, name)
		f.got[name] = p
		f.jobIDs = append(f.jobIDs, ctx.JobID())
		if d, ok := pipeline.WorkDir(ctx); ok {
			f.dirs[name] = d
		}
	}
	f.download = synapse.NewAction("download", func(ctx *synapse.Context, p plDownloadParams) (plDownloadResult, error) {
		record(ctx, "download", p)
		if p.Source == "empty" {
			return plDownloadResult{}, nil
		}
		return plDownloadResult{DatasetPath: "/data/" + p.Source, Count: 10}, nil
	})
	f.convert = synapse.NewAction("convert", func(ctx *synapse.Context, p plConvertParams) (plConvertResult, error) {
		record(ctx, "convert", p)
		if f.failConvert != nil {
			return plConvertResult{}, f.failConvert
		}
		return plConvertResult{ConvertedPath: p.DatasetPath + "." + p.Format, Count: 8}, nil
	})
	f.train = synapse.NewAction("train", func(ctx *synapse.Context, p plTrainParams) (plTrainResult, error) {
		record(ctx, "train", p)
		ctx.SetProgress(1, 1, "train")
		return plTrainResult{ModelPath: p.ConvertedPath + ".model", Epochs: p.Epochs}, nil
	})
	return f
}

func (f *plFixture) all() []synapse.Action { return []synapse.Action{f.download, f.convert, f.train} }

func (f *plFixture) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
	f.got = map[string]any{}
}

// plMapAction returns a map, so its result fields cannot be known.
var plMapAction = synapse.NewAction("fetch", func(*synapse.Context, struct{}) (map[string]any, error) {
	return map[string]any{"dataset_path": "/fetched"}, nil
})

func newTestPipeline(t *testing.T, actions []synapse.Action, opts ...pipeline.Option) (*pipeline.Pipeline, string) {
	t.Helper()
	dir := t.TempDir()
	p, err := pipeline.New("ml", actions, append([]pipeline.Option{pipeline.WithWorkDir(dir)}, opts...)...)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	return p, dir
}

func plOpts(rec *plugintest.Recorder) []synapse.Option {
	return []synapse.Option{synapse.WithLogger(rec), synapse.WithEnv(synapse.NewEnv(nil))}
}

// bigSeed is above 2^53: it survives only if numbers are not turned into float64.
const bigSeed = int64(9007199254740993)

func TestPipelineParamsFlow(t *testing.T) {
	f := newPLFixture()
	p, dir := newTestPipeline(t, f.all())
	initial := map[string]any{"source": "cats", "epochs": 3, "seed": bigSeed, "count": 100}
	run, err := p.Run(t.Context(), initial, plOpts(plugintest.NewRecorder())...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []string{"download", "convert", "train"}; !slices.Equal(f.calls, want) {
		t.Errorf("calls = %v, want %v", f.calls, want)
	}
	wantGot := map[string]any{
		// Only the declared fields: download would reject epochs and count.
		"download": plDownloadParams{Source: "cats", Seed: bigSeed},
		"convert":  plConvertParams{DatasetPath: "/data/cats", Format: "yolo"},
		// dataset_path comes from download (two actions back); count from
		// convert, which overrode download's and the initial one.
		"train": plTrainParams{ConvertedPath: "/data/cats.yolo", DatasetPath: "/data/cats", Count: 8, Epochs: 3, Seed: bigSeed},
	}
	if !reflect.DeepEqual(f.got, wantGot) {
		t.Errorf("params received:\n got %+v\nwant %+v", f.got, wantGot)
	}
	if want := (plTrainResult{ModelPath: "/data/cats.yolo.model", Epochs: 3}); run.Result != want {
		t.Errorf("Result = %#v, want the last action's typed result %#v", run.Result, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(run.ID) {
		t.Errorf("run ID %q is not 12 hex digits", run.ID)
	}
	if want := filepath.Join(dir, "ml", run.ID); run.WorkDir != want {
		t.Errorf("WorkDir = %q, want %q", run.WorkDir, want)
	}
}

func TestPipelineInitialParamsForms(t *testing.T) {
	tests := []struct {
		name    string
		params  any
		wantErr bool
	}{
		{"map", map[string]any{"source": "cats"}, false},
		{"struct", plDownloadParams{Source: "cats"}, false},
		{"pointer to struct", &plDownloadParams{Source: "cats"}, false},
		{"JSON string", `{"source":"cats"}`, false},
		{"raw JSON", json.RawMessage(`{"source":"cats"}`), false},
		{"bytes", []byte(`{"source":"cats"}`), false},
		{"not an object", `["cats"]`, true},
		{"invalid JSON", `{"source":`, true},
		{"nil lacks the required source", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPLFixture()
			p, _ := newTestPipeline(t, f.all())
			_, err := p.Run(t.Context(), tt.params, plOpts(plugintest.NewRecorder())...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Run error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				var ve *synapse.ValidationError
				// The pipeline's params are the pipeline's (not JSON, not an
				// object); a missing one is the action's that needs it.
				if !errors.As(err, &ve) || (ve.Action != "ml" && ve.Action != "download") {
					t.Errorf("error = %v, want a ValidationError of the pipeline or of download", err)
				}
				if len(f.calls) != 0 {
					t.Errorf("actions ran: %v", f.calls)
				}
				return
			}
			if got := f.got["train"].(plTrainParams).ConvertedPath; got != "/data/cats.yolo" {
				t.Errorf("train got converted_path %q", got)
			}
		})
	}
}

func TestNewPipelineChecksAdjacentActions(t *testing.T) {
	f := newPLFixture()
	needsDataset := synapse.NewAction("inspect", func(*synapse.Context, struct {
		DatasetPath string `json:"dataset_path" validate:"required"`
	}) (int, error) {
		return 0, nil
	})
	noParams := synapse.NewAction("report", func(*synapse.Context, struct{}) (string, error) { return "", nil })
	tests := []struct {
		name    string
		actions []synapse.Action
		want    string // "" for no problem
	}{
		{"covered", f.all(), ""},
		{"covered by an earlier action", []synapse.Action{f.download, f.convert, needsDataset}, ""},
		{"gap", []synapse.Action{f.download, f.train}, `action "train" requires "converted_path", which the result of action "download" does not have: it must be given in the initial params`},
		{"gap two actions in", []synapse.Action{f.download, needsDataset, f.train}, `action "train" requires "converted_path", which neither the result of action "inspect" nor of an earlier action has`},
		{"unknown result fields", []synapse.Action{plMapAction, f.convert}, `cannot check that "dataset_path", required by action "convert", will be provided: the result fields of action "fetch" (result type map[string]interface {}) are not known`},
		{"unknown result fields, nothing required", []synapse.Action{plMapAction, noParams}, ""},
		{"single action", []synapse.Action{f.train}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Without Strict: a warning.
			p, err := pipeline.New("ml", tt.actions, pipeline.WithWorkDir(t.TempDir()))
			if err != nil {
				t.Fatalf("NewPipeline without Strict: %v", err)
			}
			w := p.Warnings()
			if tt.want == "" && len(w) != 0 {
				t.Errorf("warnings = %q, want none", w)
			}
			if tt.want != "" && (len(w) != 1 || !strings.Contains(w[0], tt.want)) {
				t.Errorf("warnings = %q, want one containing %q", w, tt.want)
			}
			// With Strict: an error.
			_, err = pipeline.New("ml", tt.actions, pipeline.Strict(), pipeline.WithWorkDir(t.TempDir()))
			if tt.want == "" && err != nil {
				t.Errorf("NewPipeline with Strict: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("NewPipeline with Strict error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPipelineWarningsAreReportedWhenRunning(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, []synapse.Action{f.download, f.train})
	rec := plugintest.NewRecorder()
	if _, err := p.Run(t.Context(), map[string]any{"source": "cats", "converted_path": "/given"}, plOpts(rec)...); err != nil {
		t.Fatalf("Run: %v", err)
	}
	msgs := rec.Messages(synapse.LevelWarning)
	if len(msgs) != 1 || !strings.Contains(msgs[0], `action "train" requires "converted_path"`) {
		t.Errorf("warnings = %q, want the pipeline's", msgs)
	}
	if got := f.got["train"].(plTrainParams).ConvertedPath; got != "/given" {
		t.Errorf("train got converted_path %q, want the initial one", got)
	}
}

func TestNewPipelineErrors(t *testing.T) {
	f := newPLFixture()
	tests := []struct {
		name    string
		pname   string
		actions []synapse.Action
		want    string
	}{
		{"no actions", "ml", nil, "at least one action"},
		{"nil action", "ml", []synapse.Action{f.download, nil}, "action 1 is nil"},
		{"empty name", "", f.all(), "name is empty"},
		{"name with separator", "a/b", f.all(), "path separator"},
		{"dot-dot name", "..", f.all(), "not a valid file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pipeline.New(tt.pname, tt.actions)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewPipeline error = %v, want one containing %q", err, tt.want)
			}
			if p != nil {
				t.Error("NewPipeline returned a pipeline with an error")
			}
		})
	}
}

func TestPipelineCheck(t *testing.T) {
	f := newPLFixture()
	tests := []struct {
		name    string
		actions []synapse.Action
		initial map[string]any
		want    []string
	}{
		{"first action's params missing", f.all(), nil, []string{"download.source"}},
		{"complete", f.all(), map[string]any{"source": "x"}, nil},
		{"gap after an action", []synapse.Action{f.download, f.train}, map[string]any{"source": "x"}, []string{"train.converted_path"}},
		{"everything missing", []synapse.Action{f.download, f.train}, map[string]any{}, []string{"download.source", "train.converted_path"}},
		{"gap filled by the initial params", []synapse.Action{f.download, f.train}, map[string]any{"source": "x", "converted_path": "y"}, nil},
		{"after an unknown result nothing is reported", []synapse.Action{plMapAction, f.convert}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPipeline(t, tt.actions)
			if got := p.Check(tt.initial); !slices.Equal(got, tt.want) {
				t.Errorf("Check(%v) = %q, want %q", tt.initial, got, tt.want)
			}
		})
	}
}

func TestPipelineRunRejectsParamsBeforeRunning(t *testing.T) {
	tests := []struct {
		name       string
		actions    func(f *plFixture) []synapse.Action
		params     map[string]any
		wantAction string
		wantIndex  int
		wantField  string
		wantMsg    string
	}{
		{
			name:       "required param no action provides",
			actions:    func(f *plFixture) []synapse.Action { return []synapse.Action{f.download, f.train} },
			params:     map[string]any{"source": "x"},
			wantAction: "train", wantIndex: 1, wantField: "converted_path",
			wantMsg: "required: not in the pipeline's params nor in the result of an earlier action",
		},
		{
			name:       "unknown initial param",
			actions:    func(f *plFixture) []synapse.Action { return f.all() },
			params:     map[string]any{"source": "x", "epoch": 3},
			wantAction: "", wantIndex: -1, wantField: "epoch",
			wantMsg: `unknown field: no action of the pipeline takes it (did you mean "epochs"?`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPLFixture()
			p, _ := newTestPipeline(t, tt.actions(f))
			run, err := p.Run(t.Context(), tt.params, plOpts(plugintest.NewRecorder())...)
			var pe *pipeline.Error
			if !errors.As(err, &pe) || pe.Action != tt.wantAction || pe.Index != tt.wantIndex {
				t.Fatalf("error = %#v, want a PipelineError for action %q", err, tt.wantAction)
			}
			var ve *synapse.ValidationError
			wantVE := tt.wantAction
			if wantVE == "" {
				wantVE = "ml" // a pipeline-level problem names the pipeline
			}
			if !errors.As(err, &ve) || ve.Action != wantVE || len(ve.Fields) != 1 || ve.Fields[0].Field != tt.wantField || !strings.Contains(ve.Fields[0].Message, tt.wantMsg) {
				t.Errorf("validation error = %+v, want field %q: %q", ve, tt.wantField, tt.wantMsg)
			}
			if len(f.calls) != 0 {
				t.Errorf("actions ran: %v", f.calls)
			}
			if run == nil || run.ID != "" || run.WorkDir != "" || pe.RunID != "" {
				t.Fatalf("run = %+v (error run ID %q), want a run without ID: it never started", run, pe.RunID)
			}
			if strings.Contains(err.Error(), "(run ") {
				t.Errorf("error %q names a run", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(p.WorkDir(), "ml")); len(entries) != 0 {
				t.Errorf("a rejected run left files: %v", entries)
			}
		})
	}
}

func TestPipelineFailureMidway(t *testing.T) {
	errBoom := errors.New("converter crashed")
	tests := []struct {
		name      string
		source    string
		fail      error
		wantTyped func(error) bool
		wantIs    error
	}{
		{"action error", "cats", errBoom, func(err error) bool {
			var xe *synapse.ExecutionError
			return errors.As(err, &xe) && xe.Action == "convert"
		}, errBoom},
		{"action panic", "cats", nil, nil, nil}, // replaced below
		{"invalid params from the previous result", "empty", nil, func(err error) bool {
			var ve *synapse.ValidationError
			return errors.As(err, &ve) && ve.Action == "convert" && ve.Fields[0].Field == "dataset_path"
		}, synapse.ErrValidation},
	}
	tests[1].wantTyped = func(err error) bool {
		var xe *synapse.ExecutionError
		return errors.As(err, &xe) && xe.Panicked()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPLFixture()
			f.failConvert = tt.fail
			actions := f.all()
			if tt.name == "action panic" {
				actions[1] = synapse.NewAction("convert", func(*synapse.Context, plConvertParams) (plConvertResult, error) {
					panic("converter panicked")
				})
			}
			p, _ := newTestPipeline(t, actions)
			run, err := p.Run(t.Context(), map[string]any{"source": tt.source}, plOpts(plugintest.NewRecorder())...)
			var pe *pipeline.Error
			if !errors.As(err, &pe) || pe.Action != "convert" || pe.Index != 1 || pe.Pipeline != "ml" || pe.RunID != run.ID {
				t.Fatalf("error = %#v, want a PipelineError for convert", err)
			}
			if !strings.Contains(err.Error(), `pipeline "ml" (run `+run.ID+`): action "convert" failed: `) {
				t.Errorf("message = %q", err)
			}
			if !tt.wantTyped(err) {
				t.Errorf("error %v does not keep the action's typed error", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
			if slices.Contains(f.calls, "train") {
				t.Errorf("train ran after convert failed: %v", f.calls)
			}
			if run.Result != nil {
				t.Errorf("Result = %v, want nil", run.Result)
			}
			cps, _ := filepath.Glob(filepath.Join(run.WorkDir, "checkpoints", "*.json"))
			if len(cps) != 1 || filepath.Base(cps[0]) != "000-download.json" {
				t.Errorf("checkpoints = %v, want only download's", cps)
			}
		})
	}
}

func TestPipelineResumeAfterFailure(t *testing.T) {
	f := newPLFixture()
	f.failConvert = errors.New("out of disk")
	p, _ := newTestPipeline(t, f.all())
	initial := map[string]any{"source": "cats", "epochs": 5, "seed": bigSeed}
	first, err := p.Run(t.Context(), initial, plOpts(plugintest.NewRecorder())...)
	if err == nil {
		t.Fatal("first run succeeded")
	}
	if want := []string{"download", "convert"}; !slices.Equal(f.calls, want) {
		t.Fatalf("first run calls = %v, want %v", f.calls, want)
	}

	f.failConvert = nil
	f.resetCalls()
	rec := plugintest.NewRecorder()
	run, err := p.Resume(t.Context(), first.ID, plOpts(rec)...)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if want := []string{"convert", "train"}; !slices.Equal(f.calls, want) {
		t.Errorf("resumed calls = %v, want %v (download must not run again)", f.calls, want)
	}
	if run.ID != first.ID || run.WorkDir != first.WorkDir {
		t.Errorf("resumed run %+v, want ID and WorkDir of %+v", run, first)
	}
	// The restored params: download's result and the initial params, exactly.
	want := plTrainParams{ConvertedPath: "/data/cats.yolo", DatasetPath: "/data/cats", Count: 8, Epochs: 5, Seed: bigSeed}
	if got := f.got["train"]; got != want {
		t.Errorf("train got %+v, want %+v", got, want)
	}
	if want := (plTrainResult{ModelPath: "/data/cats.yolo.model", Epochs: 5}); run.Result != want {
		t.Errorf("Result = %#v, want %#v", run.Result, want)
	}
	var currents []int
	for _, e := range rec.Progress(pipeline.Category) {
		currents = append(currents, e.Current)
	}
	if want := []int{1, 2, 3}; !slices.Equal(currents, want) {
		t.Errorf("pipeline progress on resume = %v, want %v", currents, want)
	}
	if msgs := rec.Messages(synapse.LevelInfo); len(msgs) != 1 || !strings.Contains(msgs[0], "1 of 3 actions already completed") {
		t.Errorf("messages = %q, want the resume notice", msgs)
	}

	// Resuming a completed run runs nothing and returns the last result.
	f.resetCalls()
	again, err := p.Resume(t.Context(), first.ID, plOpts(plugintest.NewRecorder())...)
	if err != nil {
		t.Fatalf("Resume of a completed run: %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("resuming a completed run ran %v", f.calls)
	}
	if m, ok := again.Result.(map[string]any); !ok || m["model_path"] != "/data/cats.yolo.model" {
		t.Errorf("Result of a completed run = %#v, want the checkpointed result", again.Result)
	}
}

func TestPipelineResumeAfterFirstActionFailed(t *testing.T) {
	errFirst := errors.New("no network")
	fail := true
	var got []plDownloadParams
	download := synapse.NewAction("download", func(_ *synapse.Context, p plDownloadParams) (plDownloadResult, error) {
		got = append(got, p)
		if fail {
			return plDownloadResult{}, errFirst
		}
		return plDownloadResult{DatasetPath: "/d"}, nil
	})
	p, _ := newTestPipeline(t, []synapse.Action{download})
	first, err := p.Run(t.Context(), map[string]any{"source": "cats", "seed": 7}, plOpts(plugintest.NewRecorder())...)
	if !errors.Is(err, errFirst) {
		t.Fatalf("first run error = %v", err)
	}
	fail = false
	run, err := p.Resume(t.Context(), first.ID, plOpts(plugintest.NewRecorder())...)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if want := []plDownloadParams{{"cats", 7}, {"cats", 7}}; !slices.Equal(got, want) {
		t.Errorf("download got %v, want the initial params both times", got)
	}
	if run.Result != (plDownloadResult{DatasetPath: "/d"}) {
		t.Errorf("Result = %#v", run.Result)
	}
}

func TestPipelineResumeErrors(t *testing.T) {
	f := newPLFixture()
	p, dir := newTestPipeline(t, f.all())
	f.failConvert = errors.New("x")
	first, _ := p.Run(t.Context(), map[string]any{"source": "cats"}, plOpts(plugintest.NewRecorder())...)
	other, err := pipeline.New("ml", []synapse.Action{f.download, f.train}, pipeline.WithWorkDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		p     *pipeline.Pipeline
		runID string
		want  string
	}{
		{"unknown run", p, "0123456789ab", `pipeline "ml" has no run "0123456789ab" in ` + filepath.Join(dir, "ml")},
		{"run ID with a separator", p, "../ml", "must not contain a path separator"},
		{"empty run ID", p, "", "run ID is empty"},
		{"different actions", other, first.ID, "the run was made with actions [download, convert, train], but the pipeline has [download, train]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.resetCalls()
			run, err := tt.p.Resume(t.Context(), tt.runID, plOpts(plugintest.NewRecorder())...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resume error = %v, want one containing %q", err, tt.want)
			}
			var pe *pipeline.Error
			if !errors.As(err, &pe) || pe.Index != -1 || pe.Action != "" {
				t.Errorf("error = %#v, want a PipelineError outside any action", err)
			}
			if run == nil || run.ID != tt.runID {
				t.Errorf("run = %+v, want one with ID %q", run, tt.runID)
			}
			if len(f.calls) != 0 {
				t.Errorf("actions ran: %v", f.calls)
			}
		})
	}
}

func TestPipelineCheckpoints(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, f.all())
	run, err := p.Run(t.Context(), map[string]any{"source": "cats", "epochs": 2}, plOpts(plugintest.NewRecorder())...)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(run.WorkDir, "checkpoints", "*"))
	var base []string
	for _, n := range names {
		base = append(base, filepath.Base(n))
	}
	if want := []string{"000-download.json", "001-convert.json", "002-train.json"}; !slices.Equal(base, want) {
		t.Errorf("checkpoint files = %v, want %v (and no temporary files)", base, want)
	}
	data, err := os.ReadFile(filepath.Join(run.WorkDir, "checkpoints", "001-convert.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cp struct {
		Pipeline    string         `json:"pipeline"`
		RunID       string         `json:"run_id"`
		Action      string         `json:"action"`
		Index       int            `json:"index"`
		Params      map[string]any `json:"params"`
		Accumulated map[string]any `json:"accumulated"`
		Result      map[string]any `json:"result"`
	}
	if err := json.Unmarshal(data, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Pipeline != "ml" || cp.RunID != run.ID || cp.Action != "convert" || cp.Index != 1 {
		t.Errorf("checkpoint header = %+v", cp)
	}
	if want := map[string]any{"dataset_path": "/data/cats"}; !reflect.DeepEqual(cp.Params, want) {
		t.Errorf("params = %v, want %v", cp.Params, want)
	}
	if want := map[string]any{"converted_path": "/data/cats.yolo", "count": 8.0}; !reflect.DeepEqual(cp.Result, want) {
		t.Errorf("result = %v, want %v", cp.Result, want)
	}
	wantAcc := map[string]any{"source": "cats", "epochs": 2.0, "dataset_path": "/data/cats", "converted_path": "/data/cats.yolo", "count": 8.0}
	if !reflect.DeepEqual(cp.Accumulated, wantAcc) {
		t.Errorf("accumulated = %v, want %v", cp.Accumulated, wantAcc)
	}
}

func TestPipelineWorkDirInContext(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, f.all())
	run, err := p.Run(t.Context(), map[string]any{"source": "cats"}, plOpts(plugintest.NewRecorder())...)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := f.dirs["convert"]
	if !ok {
		t.Fatal("convert saw no work dir")
	}
	want := pipeline.Dirs{
		Root:        run.WorkDir,
		Datasets:    filepath.Join(run.WorkDir, "datasets"),
		Models:      filepath.Join(run.WorkDir, "models"),
		Artifacts:   filepath.Join(run.WorkDir, "artifacts"),
		Logs:        filepath.Join(run.WorkDir, "logs"),
		Checkpoints: filepath.Join(run.WorkDir, "checkpoints"),
	}
	if d != want {
		t.Errorf("dirs = %+v, want %+v", d, want)
	}
	for _, dir := range []string{d.Datasets, d.Models, d.Artifacts, d.Logs, d.Checkpoints} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("%s is not a directory: %v", dir, err)
		}
	}
	if f.dirs["download"] != d || f.dirs["train"] != d {
		t.Errorf("actions saw different dirs: %+v", f.dirs)
	}

	// Outside a pipeline there is none.
	var outside bool
	a := synapse.NewAction("solo", func(ctx *synapse.Context, _ struct{}) (int, error) {
		_, outside = pipeline.WorkDir(ctx)
		return 0, nil
	})
	plugintest.Run(t, a, nil)
	if outside {
		t.Error("WorkDir reported a pipeline outside one")
	}
}

func TestPipelineProgress(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, f.all())
	rec := plugintest.NewRecorder()
	if _, err := p.Run(t.Context(), map[string]any{"source": "cats"}, plOpts(rec)...); err != nil {
		t.Fatal(err)
	}
	type ev struct {
		action         string
		current, total int
		percent        float64
	}
	var got []ev
	for _, e := range rec.Progress(pipeline.Category) {
		got = append(got, ev{e.Action, e.Current, e.Total, e.Percent})
	}
	want := []ev{{"ml", 0, 3, 0}, {"ml", 1, 3, 33.33}, {"ml", 2, 3, 66.67}, {"ml", 3, 3, 100}}
	if !slices.Equal(got, want) {
		t.Errorf("pipeline progress = %v, want %v", got, want)
	}
	if pct, ok := rec.LastPercent("train"); !ok || pct != 100 || rec.Progress("train")[0].Action != "train" {
		t.Errorf("train's own progress: %v %v", pct, ok)
	}
	// The pipeline's progress comes before each action's own events.
	var order []string
	for _, e := range rec.Events() {
		if e.Type == synapse.EventProgress {
			order = append(order, e.Category)
		}
	}
	if want := []string{"pipeline", "pipeline", "pipeline", "train", "pipeline"}; !slices.Equal(order, want) {
		t.Errorf("progress categories in order = %v, want %v", order, want)
	}
}

func TestPipelineExecutorOptionsReachActions(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, f.all())
	_, err := p.Run(t.Context(), map[string]any{"source": "cats"}, synapse.WithJobID("job-7"), synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"job-7", "job-7", "job-7"}; !slices.Equal(f.jobIDs, want) {
		t.Errorf("job IDs seen = %v, want %v", f.jobIDs, want)
	}
}

func TestPipelineUntypedActionGetsAllParams(t *testing.T) {
	f := newPLFixture()
	var got map[string]any
	untyped := synapse.NewAction("dump", func(_ *synapse.Context, p map[string]any) (int, error) {
		got = p
		return 0, nil
	})
	p, _ := newTestPipeline(t, []synapse.Action{f.download, untyped})
	// With an untyped action, unknown initial params are not rejected.
	if _, err := p.Run(t.Context(), map[string]any{"source": "cats", "extra": true}, plOpts(plugintest.NewRecorder())...); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"source", "extra", "dataset_path", "count"} {
		if _, ok := got[k]; !ok {
			t.Errorf("untyped action did not get %q: %v", k, got)
		}
	}
}

func TestPipelineCancelled(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, f.all())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := p.Run(ctx, map[string]any{"source": "cats"}, plOpts(plugintest.NewRecorder())...)
	var pe *pipeline.Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &pe) || pe.Action != "download" {
		t.Errorf("error = %v, want context.Canceled at download", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("actions ran: %v", f.calls)
	}
}

func TestPipelineDefaultWorkDir(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache)
	t.Setenv("LocalAppData", cache)
	p, err := pipeline.New("ml", newPLFixture().all())
	if err != nil {
		t.Fatal(err)
	}
	base, _ := os.UserCacheDir()
	if want := filepath.Join(base, "synapse-go", "pipelines"); p.WorkDir() != want {
		t.Errorf("WorkDir() = %q, want %q", p.WorkDir(), want)
	}
}

func TestPipelineRunsGetDistinctIDs(t *testing.T) {
	f := newPLFixture()
	p, _ := newTestPipeline(t, f.all())
	a, err1 := p.Run(t.Context(), map[string]any{"source": "a"}, plOpts(plugintest.NewRecorder())...)
	b, err2 := p.Run(t.Context(), map[string]any{"source": "b"}, plOpts(plugintest.NewRecorder())...)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if a.ID == b.ID || a.WorkDir == b.WorkDir {
		t.Errorf("two runs share ID %q / dir %q", a.ID, a.WorkDir)
	}
	if p.Name() != "ml" || len(p.Actions()) != 3 {
		t.Errorf("Name %q, %d actions", p.Name(), len(p.Actions()))
	}
}

// marshalingResult has its own MarshalJSON: its fields cannot be known.
type marshalingResult struct{ DatasetPath string }

func (m marshalingResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"dataset_path": m.DatasetPath})
}

func TestPipelineResultTypes(t *testing.T) {
	f := newPLFixture()
	// Each source action is followed by convert, which requires dataset_path.
	tests := []struct {
		name   string
		source synapse.Action
		want   string // the warning; "" for none
	}{
		{"pointer to struct", synapse.NewAction("src", func(*synapse.Context, struct{}) (*plDownloadResult, error) {
			return &plDownloadResult{DatasetPath: "/p"}, nil
		}), ""},
		{"scalar has no fields", synapse.NewAction("src", func(*synapse.Context, struct{}) (int, error) { return 1, nil }),
			`action "convert" requires "dataset_path", which the result of action "src" does not have`},
		{"own MarshalJSON", synapse.NewAction("src", func(*synapse.Context, struct{}) (marshalingResult, error) {
			return marshalingResult{DatasetPath: "/m"}, nil
		}), `the result fields of action "src" (result type pipeline_test.marshalingResult) are not known`},
		{"interface", synapse.NewAction("src", func(*synapse.Context, struct{}) (any, error) {
			return map[string]any{"dataset_path": "/i"}, nil
		}), `(result type interface {}) are not known`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPipeline(t, []synapse.Action{tt.source, f.convert})
			w := p.Warnings()
			if tt.want == "" && len(w) != 0 || tt.want != "" && (len(w) != 1 || !strings.Contains(w[0], tt.want)) {
				t.Errorf("warnings = %q, want %q", w, tt.want)
			}
		})
	}
	// A result with its own MarshalJSON flows through its JSON form.
	f.resetCalls()
	p, _ := newTestPipeline(t, []synapse.Action{tests[2].source, f.convert})
	if _, err := p.Run(t.Context(), nil, plOpts(plugintest.NewRecorder())...); err != nil {
		t.Fatal(err)
	}
	if got := f.got["convert"].(plConvertParams).DatasetPath; got != "/m" {
		t.Errorf("convert got dataset_path %q, want /m", got)
	}
}

func TestPipelineResultNotJSON(t *testing.T) {
	bad := synapse.NewAction("bad", func(*synapse.Context, struct{}) (chan int, error) { return make(chan int), nil })
	p, _ := newTestPipeline(t, []synapse.Action{bad})
	run, err := p.Run(t.Context(), nil, plOpts(plugintest.NewRecorder())...)
	var pe *pipeline.Error
	if !errors.As(err, &pe) || pe.Action != "bad" || !strings.Contains(err.Error(), "encode result of action \"bad\" as JSON") {
		t.Errorf("error = %v, want a PipelineError for the unencodable result", err)
	}
	if run.Result != nil {
		t.Errorf("Result = %v, want nil", run.Result)
	}
}

func TestPipelineResumeRejectsForeignCheckpoint(t *testing.T) {
	f := newPLFixture()
	f.failConvert = errors.New("x")
	p, _ := newTestPipeline(t, f.all())
	run, _ := p.Run(t.Context(), map[string]any{"source": "cats"}, plOpts(plugintest.NewRecorder())...)
	path := filepath.Join(run.WorkDir, "checkpoints", "000-download.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), `"action": "download"`, `"action": "upload"`, 1)
	if tampered == string(data) {
		t.Fatal("checkpoint has no action field to tamper with")
	}
	if err := os.WriteFile(path, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	f.resetCalls()
	_, err = p.Resume(t.Context(), run.ID, plOpts(plugintest.NewRecorder())...)
	if err == nil || !strings.Contains(err.Error(), `is for action "upload" at index 0, which the pipeline does not have`) {
		t.Errorf("Resume error = %v", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("actions ran: %v", f.calls)
	}
}

// Params types for TestPipelineCheckZeroValueRules: which params a run
// must be given, beyond validate:"required".
type (
	zvMin struct {
		Epochs int `json:"epochs" validate:"min=1"`
	}
	zvDefault struct {
		Epochs int `json:"epochs" default:"3" validate:"min=1"`
	}
	zvRequired struct {
		Name string `json:"name" validate:"required"`
	}
	zvString struct {
		Name string `json:"name" validate:"min=1"`
	}
	zvOptional struct {
		Epochs int    `json:"epochs" validate:"omitempty,min=1"`
		Note   string `json:"note"`
		Seed   int    `json:"seed" validate:"gte=0"`
	}
	zvOpt struct {
		LR float64 `json:"lr" validate:"gt=0"`
	}
	zvOptDefault struct {
		LR float64 `json:"lr" default:"0.1" validate:"gt=0"`
	}
	zvNested struct {
		Optimizer zvOpt `json:"optimizer"`
	}
	zvNestedOK struct {
		Optimizer zvOptDefault `json:"optimizer"`
		Extra     *zvOpt       `json:"extra" validate:"omitempty"`
		Layers    []zvOpt      `json:"layers" validate:"dive"`
	}
	zvItems struct {
		Layers []int `json:"layers" validate:"min=1"`
	}
	ZvEmbedded struct {
		Epochs int `json:"epochs" validate:"min=1"`
	}
	zvEmbedding struct {
		ZvEmbedded
		Name string `json:"name"`
	}
	zvOrder struct {
		Zeta  int    `json:"zeta" validate:"min=1"`
		Mid   string `json:"mid"`
		Alpha string `json:"alpha" validate:"required"`
	}
	// zvCross has rules that other params can satisfy.
	zvCross struct {
		Model  string `json:"model" validate:"required_without=Preset"`
		Preset string `json:"preset"`
		Min    int    `json:"min"`
		Max    int    `json:"max" validate:"gtfield=Min"`
	}
	zvValidate struct {
		Mode string `json:"mode" default:"copy"`
		Path string `json:"path"`
	}
	zvPanicky struct {
		Opt *zvOptDefault `json:"opt"`
	}
)

// Validate requires path only in copy mode, the default.
func (p *zvValidate) Validate() error {
	if p.Mode == "copy" && p.Path == "" {
		return synapse.FieldError{Field: "path", Message: "required in copy mode"}
	}
	return nil
}

// Validate dereferences opt: it panics on params without it.
func (p *zvPanicky) Validate() error {
	if p.Opt.LR > 10 {
		return synapse.FieldError{Field: "opt.lr", Message: "too large"}
	}
	return nil
}

// zvAction is an action named name with params P that does nothing.
func zvAction[P any](name string) synapse.Action {
	return synapse.NewAction(name, func(*synapse.Context, P) (struct{}, error) { return struct{}{}, nil })
}

func TestPipelineCheckZeroValueRules(t *testing.T) {
	type epochsResult struct {
		Epochs int `json:"epochs"`
	}
	givesEpochs := synapse.NewAction("prep", func(*synapse.Context, struct{}) (epochsResult, error) {
		return epochsResult{Epochs: 5}, nil
	})
	givesOther := synapse.NewAction("prep", func(*synapse.Context, struct{}) (plConvertResult, error) {
		return plConvertResult{}, nil
	})
	tests := []struct {
		name    string
		actions []synapse.Action
		initial map[string]any
		want    []string
		warning string // New's warning; "" for none
	}{
		{"min=1 int without default", []synapse.Action{zvAction[zvMin]("fit")}, nil, []string{"fit.epochs"}, ""},
		{"min=1 int given", []synapse.Action{zvAction[zvMin]("fit")}, map[string]any{"epochs": 2}, nil, ""},
		{"min=1 int with default", []synapse.Action{zvAction[zvDefault]("fit")}, nil, nil, ""},
		{"validate required", []synapse.Action{zvAction[zvRequired]("fit")}, nil, []string{"fit.name"}, ""},
		{"min=1 string (length)", []synapse.Action{zvAction[zvString]("fit")}, nil, []string{"fit.name"}, ""},
		{"optional fields", []synapse.Action{zvAction[zvOptional]("fit")}, nil, nil, ""},
		{"nested rule counts for its top-level field", []synapse.Action{zvAction[zvNested]("fit")}, nil, []string{"fit.optimizer"}, ""},
		{"nested fields satisfied by defaults, nil pointer, empty slice", []synapse.Action{zvAction[zvNestedOK]("fit")}, nil, nil, ""},
		{"slice needing items", []synapse.Action{zvAction[zvItems]("fit")}, nil, []string{"fit.layers"}, ""},
		{"promoted field of an embedded struct", []synapse.Action{zvAction[zvEmbedding]("fit")}, nil, []string{"fit.epochs"}, ""},
		{"params' field order", []synapse.Action{zvAction[zvOrder]("fit")}, nil, []string{"fit.zeta", "fit.alpha"}, ""},
		{"cross-field rules satisfied by other params", []synapse.Action{zvAction[zvCross]("fit")}, map[string]any{"preset": "small", "min": -1}, nil, ""},
		{"Validate method not considered", []synapse.Action{zvAction[zvValidate]("fit")}, map[string]any{"mode": "move"}, nil, ""},
		{"Validate method that panics on empty params", []synapse.Action{zvAction[zvPanicky]("fit")}, map[string]any{"opt": map[string]any{"lr": 1}}, nil, ""},
		{"provided by an earlier result", []synapse.Action{givesEpochs, zvAction[zvMin]("fit")}, nil, nil, ""},
		{"not provided by the earlier result", []synapse.Action{givesOther, zvAction[zvMin]("fit")}, nil, []string{"fit.epochs"},
			`action "fit" requires "epochs", which the result of action "prep" does not have`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestPipeline(t, tt.actions)
			if got := p.Check(tt.initial); !slices.Equal(got, tt.want) {
				t.Errorf("Check(%v) = %q, want %q", tt.initial, got, tt.want)
			}
			if w := p.Warnings(); tt.warning == "" && len(w) != 0 || tt.warning != "" && (len(w) != 1 || !strings.Contains(w[0], tt.warning)) {
				t.Errorf("warnings = %q, want %q", w, tt.warning)
			}
			// Run agrees with Check: it succeeds when nothing is missing,
			// and otherwise rejects the run before it starts, naming the
			// missing params.
			_, err := p.Run(t.Context(), tt.initial, plOpts(plugintest.NewRecorder())...)
			if tt.want == nil {
				if err != nil {
					t.Errorf("Run: %v, want success since Check reports nothing", err)
				}
				return
			}
			var pe *pipeline.Error
			var ve *synapse.ValidationError
			if !errors.As(err, &pe) || pe.RunID != "" || pe.Action != "fit" || !errors.As(err, &ve) {
				t.Fatalf("Run error = %v, want the run rejected before it started, for action fit", err)
			}
			var fields []string
			for _, fe := range ve.Fields {
				fields = append(fields, "fit."+fe.Field)
				if fe.Message != "required: not in the pipeline's params nor in the result of an earlier action" {
					t.Errorf("field %q: message %q", fe.Field, fe.Message)
				}
			}
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(fields, want) {
				t.Errorf("Run rejected fields %q, want %q", fields, want)
			}
		})
	}
}
