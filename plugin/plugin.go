package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/params"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// Plugin is a plugin directory, loaded once: its config.yaml and, once
// built, its binary for this machine. Every executor of a plugin directory
// (local child process, Ray job, Ray task) takes one, so a command reads
// config.yaml once and builds at most once. It is safe for concurrent use.
type Plugin struct {
	cfg *config.Config

	mu      sync.Mutex
	hostBin string
}

// Load reads the plugin at path: a plugin directory or its config.yaml.
// Errors name the file and line (exit code 2).
func Load(path string) (*Plugin, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return FromConfig(cfg), nil
}

// FromConfig returns the plugin of a config already read (for the
// packages of this module, which read config.yaml with internal/config).
func FromConfig(cfg *config.Config) *Plugin { return &Plugin{cfg: cfg} }

// Config returns the parsed config.yaml (for the packages of this module).
func (p *Plugin) Config() *config.Config { return p.cfg }

// Code returns the plugin's code (config.yaml `code`).
func (p *Plugin) Code() string { return p.cfg.Code }

// Dir returns the plugin directory.
func (p *Plugin) Dir() string { return p.cfg.Dir }

// Path returns the path of config.yaml.
func (p *Plugin) Path() string { return p.cfg.Path }

// Actions returns the names of the actions config.yaml lists, in file
// order (empty when it lists none: then every action of the binary runs).
func (p *Plugin) Actions() []string { return p.cfg.ActionNames() }

// Env returns config.yaml `env` as an Env.
func (p *Plugin) Env() *synapse.Env { return synapse.NewEnv(p.cfg.Env) }

// Entrypoint maps an action name to the name of the binary action that
// runs it (config.yaml `actions.NAME.entrypoint`). An entrypoint that
// config.yaml maps some action to is accepted as itself. Without `actions`
// in config.yaml every name passes through. Unknown names are an
// *synapse.ActionNotFoundError.
func (p *Plugin) Entrypoint(action string) (string, error) {
	if len(p.cfg.Actions) == 0 {
		return action, nil
	}
	if ca, ok := p.cfg.Action(action); ok {
		return ca.Entrypoint, nil
	}
	for _, a := range p.cfg.Actions {
		if a.Entrypoint == action {
			return action, nil
		}
	}
	return "", synapse.NotFound(action, p.cfg.ActionNames())
}

// Binary returns the plugin binary built for this machine (from the build
// cache when the plugin is unchanged), building it on the first call.
func (p *Plugin) Binary(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hostBin != "" {
		return p.hostBin, nil
	}
	res, err := build.Build(ctx, build.Options{Dir: p.cfg.Dir})
	if err != nil {
		return "", err
	}
	p.hostBin = res.Binary
	return p.hostBin, nil
}

// Validate checks params for action with the plugin's own rules (the
// binary's `validate` command), so the messages are exactly those of a
// run, without running anything. It returns nil, a
// *synapse.ValidationError or a *synapse.ActionNotFoundError. params is
// any form Executor.Run takes.
func (p *Plugin) Validate(ctx context.Context, action string, params any) error {
	entry, err := p.Entrypoint(action)
	if err != nil {
		return err
	}
	raw, err := ParamsJSON(action, params)
	if err != nil {
		return err
	}
	cancelled := func() error {
		return &synapse.ExecutionError{Action: action, Err: ctx.Err()}
	}
	if ctx.Err() != nil {
		return cancelled()
	}
	bin, err := p.Binary(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return cancelled()
		}
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "validate", entry)
	cmd.Dir = p.cfg.Dir
	cmd.Stdin = bytes.NewReader(raw)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if err == nil {
		return nil
	}
	var w protocol.Error
	if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &w); jerr == nil && w.Kind != "" {
		return worker.Rename(worker.FromError(&w), entry, action)
	}
	if ctx.Err() != nil {
		return cancelled()
	}
	if msg := strings.TrimSpace(errOut.String()); msg != "" {
		return fmt.Errorf("validate params with %s: %w\n%s", bin, err, msg)
	}
	return fmt.Errorf("validate params with %s: %w", bin, err)
}

// ParamsJSON returns params in any form Executor.Run takes as JSON ("{}"
// for nil), or a *synapse.ValidationError when they cannot be encoded: the
// params every executor of a plugin directory sends.
func ParamsJSON(action string, v any) (json.RawMessage, error) {
	raw, err := params.JSON(v)
	if err != nil {
		return nil, &synapse.ValidationError{Action: action, Fields: []synapse.FieldError{{Message: "params cannot be encoded as JSON: " + err.Error()}}}
	}
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	return raw, nil
}
