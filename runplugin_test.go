package synapse_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

type greetParams struct {
	Name string `json:"name" default:"world" validate:"min=2"`
}

var greet = synapse.NewAction("greet", func(ctx *synapse.Context, p greetParams) (string, error) {
	ctx.LogMessage("greeting "+p.Name, synapse.LevelInfo)
	return ctx.Env().GetString("GREETING", "hello") + " " + p.Name, nil
})

func init() { synapse.Register("greeter", greet) }

func TestRunPluginRegistered(t *testing.T) {
	rec := plugintest.NewRecorder()
	t.Setenv("GREETING", "hi") // the OS layer
	got, err := synapse.RunPlugin(context.Background(), "greeter", "greet", map[string]any{"name": "ann"}, synapse.WithLogger(rec))
	if err != nil || got != "hi ann" {
		t.Fatalf("RunPlugin = %v, %v", got, err)
	}
	if msgs := rec.Messages(); len(msgs) != 1 || msgs[0] != "greeting ann" {
		t.Errorf("messages = %v", msgs)
	}
	// An explicit env is layered over the OS environment.
	got, _ = synapse.RunPlugin(context.Background(), "greeter", "greet", nil,
		synapse.WithLogger(rec), synapse.WithEnv(synapse.NewEnv(map[string]any{"GREETING": "hey"})))
	if got != "hey world" {
		t.Errorf("with env: %v", got)
	}
	_, err = synapse.RunPlugin(context.Background(), "greeter", "great", nil, synapse.WithLogger(rec))
	var nf *synapse.ActionNotFoundError
	if !errors.As(err, &nf) || nf.Suggestion != "greet" {
		t.Errorf("unknown action: %v", err)
	}
}

func TestRunPluginExplicitAction(t *testing.T) {
	got, err := synapse.RunPlugin(context.Background(), "anything", "greet", `{"name": "bo"}`,
		synapse.WithAction(greet), synapse.WithLogger(synapse.DiscardLogger))
	if err != nil || got != "hello bo" {
		t.Fatalf("RunPlugin = %v, %v", got, err)
	}
	_, err = synapse.RunPlugin(context.Background(), "anything", "other", nil, synapse.WithAction(greet), synapse.WithLogger(synapse.DiscardLogger))
	if err == nil || !strings.Contains(err.Error(), `WithAction gives action "greet" but "other" was asked for`) {
		t.Errorf("mismatch: %v", err)
	}
}

func TestRunPluginUnresolvable(t *testing.T) {
	_, err := synapse.RunPlugin(context.Background(), "no-such-plugin", "x", nil)
	if err == nil || !strings.Contains(err.Error(), `run plugin "no-such-plugin": not a registered plugin code (registered: greeter`) {
		t.Errorf("error = %v", err)
	}
	_, err = synapse.RunPlugin(context.Background(), "greeter", "greet", nil, synapse.WithMode(synapse.ModeRemote))
	if !errors.Is(err, synapse.ErrModeUnavailable) {
		t.Errorf("remote mode: %v", err)
	}
	// Modes whose package is not linked into the program say which import
	// they need (this test binary links neither ray nor plugin).
	for mode, pkg := range map[synapse.Mode]string{synapse.ModeJob: "synapse-go/ray", synapse.ModeTask: "synapse-go/ray", synapse.ModeRemote: "synapse-go/remote"} {
		_, err = synapse.RunPlugin(context.Background(), "greeter", "greet", nil, synapse.WithMode(mode))
		if !errors.Is(err, synapse.ErrModeUnavailable) || !strings.Contains(err.Error(), pkg) {
			t.Errorf("%s mode: %v", mode, err)
		}
	}
	_, err = synapse.RunPlugin(context.Background(), "./some/dir", "x", nil)
	if !errors.Is(err, synapse.ErrModeUnavailable) || !strings.Contains(err.Error(), "synapse-go/plugin") {
		t.Errorf("a directory without package plugin: %v", err)
	}
	// Options that cannot apply are errors, not ignored.
	_, err = synapse.RunPlugin(context.Background(), "greeter", "greet", nil, synapse.WithModeOptions(struct{}{}))
	if err == nil || !strings.Contains(err.Error(), "an in-process run takes no mode options") {
		t.Errorf("mode options for a registered code: %v", err)
	}
	_, err = synapse.RunPlugin(context.Background(), "label", "greet", nil, synapse.WithAction(nil))
	if err == nil || !strings.Contains(err.Error(), "nil action") {
		t.Errorf("WithAction(nil): %v", err)
	}
	// WithAction is in-process only.
	_, err = synapse.RunPlugin(context.Background(), "label", "greet", nil, synapse.WithAction(greet), synapse.WithMode(synapse.ModeJob))
	if err == nil || !strings.Contains(err.Error(), "WithAction runs in-process in local mode") {
		t.Errorf("WithAction in job mode: %v", err)
	}
}

func TestRegisterMode(t *testing.T) {
	var got synapse.ExecutorConfig
	synapse.RegisterMode("test-mode", func(plugin string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
		got = cfg
		set, err := synapse.NewActionSet([]synapse.Action{greet}, synapse.WithLogger(cfg.Logger), synapse.WithEnv(cfg.Env))
		return set, err
	})
	env := synapse.NewEnv(map[string]any{"GREETING": "yo"})
	res, err := synapse.RunPlugin(context.Background(), "dir", "greet", map[string]any{"name": "bo"},
		synapse.WithMode("test-mode"), synapse.WithModeOptions(42), synapse.WithEnv(env), synapse.WithJobID("j"), synapse.WithLogger(synapse.DiscardLogger))
	if err != nil || res != "yo bo" {
		t.Fatalf("RunPlugin = %v, %v", res, err)
	}
	if got.Options != 42 || got.JobID != "j" || got.Env != env || got.Logger == nil {
		t.Errorf("the opener got %+v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a mode twice did not panic")
		}
	}()
	synapse.RegisterMode("test-mode", func(string, synapse.ExecutorConfig) (synapse.Executor, error) { return nil, nil })
}
