package main

import (
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
	"go.yaml.in/yaml/v3"
)

// The benchmark compares like with like only while these actions do what
// the Python plugin's do (../python-plugin/plugin/actions.py).
func TestActions(t *testing.T) {
	tests := []struct {
		name   string
		action synapse.Action
		params map[string]any
		want   map[string]any
		events int
	}{
		{"noop", noop, nil, map[string]any{"ok": true}, 0},
		{"events, default 1,000", events, nil, map[string]any{"events": float64(1000)}, 1000},
		{"events, 3", events, map[string]any{"n": 3}, map[string]any{"events": float64(3)}, 3},
		{"events, none", events, map[string]any{"n": 0}, map[string]any{"events": float64(0)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := plugintest.Run(t, tt.action, tt.params)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			var got map[string]any
			if err := res.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result %v, want %v", got, tt.want)
			}
			logs := res.Logs("event")
			if len(logs) != tt.events || len(res.Events()) != tt.events {
				t.Fatalf("%d event logs of %d events, want %d and nothing else", len(logs), len(res.Events()), tt.events)
			}
			for i, e := range logs {
				if e.Data["i"] != i {
					t.Fatalf("event %d: data %v, want i=%d", i, e.Data, i)
				}
			}
		})
	}
}

func TestEventsRejectsNegative(t *testing.T) {
	res := plugintest.Run(t, events, map[string]any{"n": -1})
	var verr *synapse.ValidationError
	if !errors.As(res.Err, &verr) {
		t.Fatalf("error %v, want a validation error", res.Err)
	}
}

// Both plugins list the same actions.
func TestSameActionsAsThePythonPlugin(t *testing.T) {
	actions := func(path string) []string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Actions map[string]any `yaml:"actions"`
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return slices.Sorted(maps.Keys(cfg.Actions))
	}
	ours, theirs := actions("config.yaml"), actions("../python-plugin/config.yaml")
	if !slices.Equal(ours, theirs) || !slices.Equal(ours, []string{"events", "noop"}) {
		t.Errorf("actions: go-plugin %v, python-plugin %v; want both [events noop]", ours, theirs)
	}
}
