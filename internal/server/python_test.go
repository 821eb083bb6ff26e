package server

import (
	"encoding/json"
	"slices"
	"strings"
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
	if got, err := zipRequirements(z); err != nil || !slices.Equal(got, []string{"numpy>=2", "pandas"}) {
		t.Errorf("zipRequirements = %q, %v", got, err)
	}
	if got, err := zipRequirements(zipOf(t, map[string]string{"plugin/a.py": ""})); got != nil || err != nil {
		t.Errorf("no requirements.txt: %q, %v", got, err)
	}
	_, err := zipRequirements(zipOf(t, map[string]string{"requirements.txt": "numpy\n-r extra.txt\n"}))
	if err == nil || !strings.Contains(err.Error(), `requirements.txt:2: "-r extra.txt": pip options are not taken on Ray`) {
		t.Errorf("a pip option: %v", err)
	}
}

func TestSetEnv(t *testing.T) {
	got := setEnv([]string{"A=1", "B=2", "AB=3"}, "A", "9")
	if want := []string{"B=2", "AB=3", "A=9"}; !slices.Equal(got, want) {
		t.Errorf("setEnv = %q, want %q", got, want)
	}
}

func TestPythonEntrypoint(t *testing.T) {
	for e, want := range map[string]bool{
		"plugin.train:TrainAction": true,
		"plugin.train.TrainAction": true,
		"mypkg.sub.deep:Deep_1":    true,
		"train":                    false,
		"OkAction":                 false,
		".synapse.venvs.py3.12.1-sdk2026.2.17-ab.site-packages.synapse_sdk.plugins.testing.sample_actions.TrainAction": false,
		"mypkg.acts:OkAction:extra": false,
		"mypkg.acts:":               false,
	} {
		if got := pythonEntrypoint(e); got != want {
			t.Errorf("pythonEntrypoint(%q) = %v, want %v", e, got, want)
		}
	}
}
