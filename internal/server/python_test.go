package server

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestPythonAction(t *testing.T) {
	cfg := json.RawMessage(`{"requires":{"sdk":">=2026.1.0"},"actions":{"train":{"entrypoint":"plugin.train:TrainAction"},"go":{}}}`)
	for _, tc := range []struct {
		action, entry, sdk string
		wantErr            bool
	}{
		{"plugin.train:TrainAction", "plugin.train.TrainAction", ">=2026.1.0", false}, // what a job records
		{"train", "plugin.train.TrainAction", ">=2026.1.0", false},
		{"go", "", "", true},
		{"missing", "", "", true},
	} {
		entry, sdk, err := pythonAction(cfg, tc.action)
		if (err != nil) != tc.wantErr || entry != tc.entry || sdk != tc.sdk {
			t.Errorf("pythonAction(%q) = %q, %q, %v", tc.action, entry, sdk, err)
		}
	}
}

func TestZipRequirements(t *testing.T) {
	z := zipOf(t, map[string]string{"requirements.txt": "# deps\nnumpy>=2  # arrays\n\n  pandas\n#x\n", "plugin/a.py": ""})
	if got, want := zipRequirements(z), []string{"numpy>=2", "pandas"}; !slices.Equal(got, want) {
		t.Errorf("zipRequirements = %q, want %q", got, want)
	}
	if got := zipRequirements(zipOf(t, map[string]string{"plugin/a.py": ""})); got != nil {
		t.Errorf("no requirements.txt: %q", got)
	}
}

func TestSetEnv(t *testing.T) {
	got := setEnv([]string{"A=1", "B=2", "AB=3"}, "A", "9")
	if want := []string{"B=2", "AB=3", "A=9"}; !slices.Equal(got, want) {
		t.Errorf("setEnv = %q, want %q", got, want)
	}
}
