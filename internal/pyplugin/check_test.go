package pyplugin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/config"
)

func TestCheckEntrypoint(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"plugin/__init__.py":       "",
		"plugin/train.py":          "from synapse_sdk.plugins import BaseAction\n\nclass TrainAction(BaseAction):\n    pass\n\nclass Helper:\n    pass\n",
		"plugin/infer/__init__.py": "from .impl import InferAction\n",
		"tool.py":                  "class Tool:\n    pass\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		entrypoint string
		want       string // "" = accepted
	}{
		{"plugin.train:TrainAction", ""},
		{"plugin.train.TrainAction", ""},
		{"plugin.infer:InferAction", ""},    // a package importing it
		{"tool:Tool", ""},                   // a top-level module
		{"installed_pkg.actions:Train", ""}, // not in the plugin: perhaps from requirements.txt
		{"plugin.train:TrainActoin", "module plugin.train (plugin/train.py) has no class TrainActoin; did you mean TrainAction?"},
		{"plugin.train:Zzz", "has no class Zzz; it defines TrainAction, Helper"},
		{"plugin.trian:TrainAction", "module plugin.trian is not in the plugin: neither plugin/trian.py nor plugin/trian/__init__.py exists"},
		{"OkAction", `"OkAction" names no module; a Python plugin's entrypoint is module.Class or module:Class`},
		{"plugin.train:TrainAction:extra", "has more than one ':'"},
		{"plugin.train:Train-Action", `"Train-Action" is not a Python name`},
		{"plugin..train:TrainAction", `"" is not a Python name`},
	}
	for _, tt := range tests {
		t.Run(tt.entrypoint, func(t *testing.T) {
			yaml := "name: P\ncode: p\nversion: 0.1.0\nactions:\n  train:\n    entrypoint: " + tt.entrypoint + "\n"
			cfg, err := config.Parse("config.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Path, cfg.Dir = filepath.Join(dir, "config.yaml"), dir
			err = CheckEntrypoint(cfg, "train")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Field != "actions.train.entrypoint" || ce.Line != 5 || ce.ExitCode() != 2 {
				t.Fatalf("err = %#v, want a config error at actions.train.entrypoint, line 5", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "config.yaml:5: actions.train.entrypoint: ") {
				t.Fatalf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
