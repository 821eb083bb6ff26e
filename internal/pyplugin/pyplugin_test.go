package pyplugin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/config"
)

func TestEntrypoint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plugin.train:TrainAction", "plugin.train.TrainAction"},
		{"plugin.train.TrainAction", "plugin.train.TrainAction"},
		{"a:B", "a.B"},
		{"train", "train"},
	} {
		if got := Entrypoint(tc.in); got != tc.want {
			t.Errorf("Entrypoint(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name        string
		files       []string
		entrypoints []string
		want        bool
	}{
		{"python entrypoint", nil, []string{"plugin.train:TrainAction"}, true},
		{"dotted entrypoint", nil, []string{"plugin.train.TrainAction"}, true},
		{"requirements only", []string{"requirements.txt"}, []string{"train"}, true},
		{"py file", []string{"main.py"}, []string{"train"}, true},
		{"config only, Go names", nil, []string{"train"}, false},
		{"go files", []string{"main.go"}, []string{"plugin.train:TrainAction"}, false},
		{"go.mod", []string{"go.mod", "requirements.txt"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := &config.Config{Dir: dir}
			for _, ep := range tc.entrypoints {
				cfg.Actions = append(cfg.Actions, config.Action{Name: "a", Entrypoint: ep})
			}
			if got := Is(cfg); got != tc.want {
				t.Errorf("Is = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	base := []string{"PATH=/bin", "SYNAPSE_ACTION_PARAMS=stale", "SYNAPSE_JOB_ID=old", "SEED=os", "HOME=/h"}
	got := Environ(base, map[string]string{"SEED": "flag"}, map[string]string{"SYNAPSE_ACTION_ENTRYPOINT": "m.C"})
	slices.Sort(got)
	want := []string{"HOME=/h", "PATH=/bin", "SEED=flag", "SYNAPSE_ACTION_ENTRYPOINT=m.C"}
	if !slices.Equal(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}

func TestParamsJSON(t *testing.T) {
	for _, tc := range []struct {
		in      any
		want    string
		wantErr bool
	}{
		{nil, "{}", false},
		{[]byte("  "), "{}", false},
		{[]byte(` {"a":1} `), `{"a":1}`, false},
		{map[string]int{"a": 1}, `{"a":1}`, false},
		{[]byte("[1]"), "", true},
		{[]byte("{bad"), "", true},
	} {
		got, err := paramsJSON(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && string(got) != tc.want) {
			t.Errorf("paramsJSON(%v) = %s, %v", tc.in, got, err)
		}
	}
}

func TestRequirementLines(t *testing.T) {
	got, err := RequirementLines("# deps\nnumpy>=2  # arrays\n\n  pandas==2.2\r\n#x\ntorch; python_version >= '3.12'\n")
	want := []string{"numpy>=2", "pandas==2.2", "torch; python_version >= '3.12'"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("RequirementLines = %q, %v, want %q", got, err, want)
	}
	for _, tt := range []struct {
		text string
		line int
	}{
		{"numpy\n-r extra.txt\n", 2},
		{"# x\n\n--index-url https://pypi.org/simple\nsix\n", 3},
	} {
		_, err := RequirementLines(tt.text)
		var re *RequirementsError
		if !errors.As(err, &re) || re.Line != tt.line || re.ExitCode() != 2 || !strings.Contains(err.Error(), "pip options are not taken on Ray") {
			t.Errorf("RequirementLines(%q) = %v, want a RequirementsError at line %d", tt.text, err, tt.line)
		}
	}
}

func TestLocalCacheDir(t *testing.T) {
	t.Setenv(VenvDirEnv, "/srv/venvs")
	if got := LocalCacheDir("/p"); got != "/srv/venvs" {
		t.Errorf("with %s: %q", VenvDirEnv, got)
	}
	t.Setenv(VenvDirEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/home/u/.cache")
	if got := LocalCacheDir("/p"); got != "/home/u/.cache/synapse-go/venvs" {
		t.Errorf("default: %q, want the user cache directory's, never the plugin directory", got)
	}
}
