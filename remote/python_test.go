package remote

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// pythonPlugin writes a Python plugin (config.yaml, Python code, no Go)
// with files a release leaves out, and loads it.
func pythonPlugin(t *testing.T) *plugin.Plugin {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"config.yaml": `name: Py
code: py
version: 0.1.0
category: custom
requires:
  sdk: '>=2026.1.0'
actions:
  train:
    entrypoint: plugin.train:TrainAction
    method: job
`,
		"requirements.txt":                     "",
		"plugin/__init__.py":                   "",
		"plugin/train.py":                      "class TrainAction: pass\n",
		"plugin/__pycache__/train.cpython.pyc": "cache",
		".venv/bin/python":                     "venv",
		"build/out":                            "build",
		"run.log":                              "log",
		".env":                                 "SECRET=1",
		".synapse/venvs/x":                     "cli venv",
		"secret.txt":                           "no",
		".synapseignore":                       "secret.txt\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := plugin.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPublishPython packs a Python plugin as the Python SDK's publish
// does (no binary, its default excludes) and publishes it to a real
// synapse server, which takes it as a Python release.
func TestPublishPython(t *testing.T) {
	p := pythonPlugin(t)
	ctx := t.Context()
	pkg, err := Pack(ctx, p, "arm64") // arch is not used: nothing is built
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range pkg.Files {
		names = append(names, f.Name)
	}
	want := []string{".synapseignore", "config.yaml", "plugin/__init__.py", "plugin/train.py", "requirements.txt"}
	if !slices.Equal(names, want) || !pkg.Python || pkg.Arch != "" || pkg.Plugin != "py" || pkg.Version != "0.1.0" {
		t.Errorf("package = %s@%s python=%t arch=%q, files %q; want files %q", pkg.Plugin, pkg.Version, pkg.Python, pkg.Arch, names, want)
	}
	zr, err := zip.NewReader(bytes.NewReader(pkg.Data), int64(len(pkg.Data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() && !slices.Contains(want, f.Name) {
			t.Errorf("the zip holds %q", f.Name)
		}
	}
	if !strings.Contains(string(pkg.Config), `"entrypoint":"plugin.train:TrainAction"`) {
		t.Errorf("config = %s", pkg.Config)
	}

	b := serve(t)
	rel, err := Publish(ctx, p, PublishOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if rel.ID == 0 || rel.Plugin != "py" || rel.Version != "0.1.0" || rel.Size != pkg.Size || !rel.Package.Python {
		t.Errorf("release = %+v", rel)
	}
	if _, err := Publish(ctx, p, PublishOptions{Backend: b}); !errors.Is(err, ErrVersionExists) {
		t.Errorf("second publish: %v, want ErrVersionExists", err)
	}
}

// TestPythonUnknownAction checks that remote mode refuses an action a
// Python plugin's config.yaml does not list before anything is sent, and
// sends anything else unvalidated (a Python plugin's params model needs its
// environment): the backend answers, here 404 as nothing is published.
func TestPythonUnknownAction(t *testing.T) {
	p := pythonPlugin(t)
	b := serve(t)
	e, err := NewExecutor(p, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.SubmitJob(t.Context(), "trian", nil)
	var nf *synapse.ActionNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("unknown action: %v, want an ActionNotFoundError", err)
	}
	_, err = e.SubmitJob(t.Context(), "train", map[string]any{"epochs": -1})
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("run of a plugin not published: %v, want the backend's 404", err)
	}
}

func TestPythonLine(t *testing.T) {
	tests := []struct {
		line, step, msg string
		level           synapse.Level
		ok              bool
	}{
		{"[LEVEL: INFO] message {'content': 'starting the report'}", "", "starting the report", synapse.LevelInfo, true},
		{`[LEVEL: INFO] message {'content': "it's here"}`, "", "it's here", synapse.LevelInfo, true},
		{"[STEP: train] [LEVEL: WARNING] epoch_done {'epoch': 1}", "train", "epoch_done {'epoch': 1}", synapse.LevelWarning, true},
		{"\x1b[1m\x1b[91m[LEVEL: DANGER]\x1b[0m\x1b[91m disk low\x1b[0m", "", "disk low", synapse.LevelDanger, true},
		{"[STEP: report] [LEVEL: INFO] Progress: 50.0% | ETA: 1.0s", "report", "Progress: 50.0% | ETA: 1.0s", synapse.LevelInfo, true},
		{"[LEVEL: LOUD] what", "", "", 0, false},
		{"INFO: synapse-sdk version: 2026.2.17", "", "", 0, false},
		{"printed by the action", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			step, level, msg, ok := pythonLine(tt.line)
			if step != tt.step || level != tt.level || msg != tt.msg || ok != tt.ok {
				t.Errorf("pythonLine = %q, %v, %q, %t; want %q, %v, %q, %t", step, level, msg, ok, tt.step, tt.level, tt.msg, tt.ok)
			}
		})
	}
}

func TestParamsRejected(t *testing.T) {
	const pydantic = "2 validation errors for ReportParams\nsteps\n  Input should be greater than or equal to 1 [type=greater_than_equal, input_value=0, input_type=int]\n    For further information visit https://errors.pydantic.dev/2.14/v/greater_than_equal\nmodel.name\n  Field required [type=missing, input_value={}, input_type=dict]"
	dispatch := []string{"  File \".../synapse_sdk/plugins/action.py\", line 327, in dispatch", "    validated_params = params_model.model_validate(params, context={'client': ctx.client})"}
	tests := []struct {
		name string
		text string
		tail []string
		want []synapse.FieldError // nil: not a params rejection
	}{
		{"params model", pydantic, dispatch, []synapse.FieldError{{Field: "steps", Message: "Input should be greater than or equal to 1"}, {Field: "model.name", Message: "Field required"}}},
		{"raised by the action", pydantic, []string{"  File \"plugin/train.py\", line 3, in execute"}, nil},
		{"another error", "RuntimeError: asked to fail", dispatch, nil},
		{"no text", "", dispatch, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause := errors.New("job failed")
			ve := paramsRejected("report", tt.text, tt.tail, cause)
			if tt.want == nil {
				if ve != nil {
					t.Errorf("paramsRejected = %v, want nil", ve)
				}
				return
			}
			if ve == nil || !slices.Equal(ve.Fields, tt.want) || !errors.Is(ve, cause) || ve.Action != "report" {
				t.Errorf("paramsRejected = %#v, want fields %v", ve, tt.want)
			}
		})
	}
}
