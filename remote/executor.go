package remote

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// Executor runs a plugin's actions through a Synapse backend: each run is
// a job of the plugin's published release (POST /plugins/{code}/run/) on
// one of the backend's agents. Params are validated on this machine first
// when the plugin directory is at hand, with the plugin's own rules, so
// bad params are never sent; the backend checks them again. A Python
// plugin's params are not validated here (that needs its virtual
// environment and the Python SDK): only its action name is checked
// against config.yaml, and the backend's worker (pydantic) rejects bad
// params, failing the job. It is safe for concurrent use.
type Executor struct {
	p      *plugin.Plugin // nil when the plugin directory is not at hand
	local  bool           // p is the plugin the backend runs: validate with it
	python bool           // p is a Python plugin: its params are checked by the backend's worker
	code   string
	opts   Options
	lang   string
	cfg    synapse.ExecutorConfig
	client *backend.Client

	mu    sync.Mutex
	agent int // resolved agent ID; 0 until resolved
}

var _ synapse.Submitter = (*Executor)(nil)

// NewExecutor returns the remote-mode executor of p (nil when only the
// plugin's code, opts.Plugin, is known) on the backend of opts.
//
// The action's environment is what the backend gives its jobs
// (config.yaml env of the release, SYNAPSE_HOST, a job token,
// SYNAPSE_JOB_ID, SYNAPSE_LANGUAGE), and the job's ID is the backend's
// job UUID: the run request carries neither an environment nor an ID, so
// WithEnv values (other than the language, WithLanguage) and WithJobID are
// refused rather than dropped. WithLogger receives each run's events.
//
// Errors (usage errors, exit code 2, before anything is sent): an
// *OptionError for no host, no token, no plugin code, a negative agent ID,
// WithEnv values or WithJobID; a *backend.HostError for a host that is not
// an http(s) URL.
func NewExecutor(p *plugin.Plugin, opts Options, o ...synapse.Option) (*Executor, error) {
	cfg := synapse.NewExecutorConfig(o...)
	e := &Executor{p: p, opts: opts, cfg: cfg, code: opts.Plugin, lang: opts.Language}
	if p != nil {
		if e.code == "" {
			e.code = p.Code()
		}
		// A directory of another plugin cannot check the params of this one.
		e.local = e.code == p.Code()
		e.python = pyplugin.Is(p.Config())
	}
	if e.code == "" {
		return nil, &OptionError{Field: "Plugin", Err: errors.New("remote mode needs a plugin code: pass one (-p CODE) or run in a plugin directory")}
	}
	if opts.Agent < 0 {
		return nil, &OptionError{Field: "Agent", Err: fmt.Errorf("want an agent ID from `synapse agent list` (got %d)", opts.Agent)}
	}
	if cfg.JobID != "" {
		return nil, &OptionError{Field: "WithJobID", Err: fmt.Errorf("the backend names its jobs (a UUID); a job ID (%q) cannot be given in remote mode", cfg.JobID)}
	}
	if cfg.Env != nil {
		var extra []string
		for _, k := range cfg.Env.Keys() {
			if k != synapse.LanguageEnv {
				extra = append(extra, k)
			}
		}
		if len(extra) > 0 {
			return nil, &OptionError{Field: "WithEnv", Err: fmt.Errorf("the backend sets a remote job's environment (config.yaml env of the release); %s cannot be passed: put them in config.yaml env and publish", strings.Join(extra, ", "))}
		}
		if e.lang == "" {
			e.lang = cfg.Env.GetString(synapse.LanguageEnv, "")
		}
	}
	c, err := opts.client()
	if err != nil {
		return nil, err
	}
	e.client = c
	return e, nil
}

// Plugin returns the code of the plugin the executor runs.
func (e *Executor) Plugin() string { return e.code }

// stopGrace bounds how long Run waits for a cancelled job to stop.
const stopGrace = time.Minute

// Run submits action, follows its events to the executor's logger and
// returns its result. Run owns the job: cancelling ctx stops it (POST
// /v2/jobs/{id}/stop/: the agent sends the plugin SIGTERM, which cancels
// the action's Context) and returns an *ExecutionError matching ctx's
// error. Use Submit for a job that outlives the call.
func (e *Executor) Run(ctx context.Context, action string, params any) (any, error) {
	j, err := e.SubmitJob(ctx, action, params)
	if err != nil {
		return nil, err
	}
	err = j.Follow(ctx, e.cfg.Logger)
	if ctx.Err() != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
		defer cancel()
		stopped, serr := j.stop(stopCtx)
		switch {
		case serr != nil:
			return nil, &synapse.ExecutionError{Action: action, JobID: j.id, Err: fmt.Errorf("%w; stop job %s: %w", ctx.Err(), j.id, serr)}
		case !stopped:
			return nil, &synapse.ExecutionError{Action: action, JobID: j.id, Err: fmt.Errorf("%w: job %s had already ended (see its result: synapse plugin job get %s)", ctx.Err(), j.id, j.id)}
		}
		return nil, &synapse.ExecutionError{Action: action, JobID: j.id, Err: fmt.Errorf("%w: job %s was stopped", ctx.Err(), j.id)}
	}
	if err != nil {
		return nil, err
	}
	return j.Result(ctx)
}

// Submit is SubmitJob returning the synapse.Job interface.
func (e *Executor) Submit(ctx context.Context, action string, params any) (synapse.Job, error) {
	j, err := e.SubmitJob(ctx, action, params)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// SubmitJob validates params (on this machine when the plugin directory is
// at hand), resolves the agent, asks the backend to run action and returns
// the job at once (PENDING or RUNNING). Cancelling ctx after it returned
// leaves the job running.
//
// Errors: *synapse.ActionNotFoundError and *synapse.ValidationError (from
// the plugin directory, or from the backend's 400 answer; nothing ran);
// an *OptionError about the agent; the backend's errors as
// internal/backend types (*backend.HTTPError: 401, 403, 404 for a plugin
// or release that is not published; *backend.UnreachableError; and
// *backend.UncertainError when the run's answer was lost: the job may
// exist, so it is never sent again).
func (e *Executor) SubmitJob(ctx context.Context, action string, params any) (*Job, error) {
	name := action
	if e.local {
		entry, err := e.p.Entrypoint(action)
		if err != nil {
			return nil, err
		}
		name = configAction(e.p, action, entry)
	}
	raw, err := plugin.ParamsJSON(action, params)
	if err != nil {
		return nil, err
	}
	if e.local && !e.python {
		// Bad params fail here, before anything is sent.
		if err := e.p.Validate(ctx, action, raw); err != nil {
			return nil, err
		}
	}
	agent, err := e.resolveAgent(ctx)
	if err != nil {
		return nil, err
	}
	bj, err := e.client.Run(ctx, e.code, backend.RunRequest{Agent: agent, Action: name, Params: raw,
		Debug: e.opts.Debug, Version: e.opts.Release, Language: e.lang})
	if err != nil {
		return nil, runError(action, err)
	}
	return newJob(e.client, bj, action), nil
}

// configAction is the config.yaml action the backend knows action by: the
// action itself, or the action whose entrypoint it names.
func configAction(p *plugin.Plugin, action, entry string) string {
	if _, ok := p.Config().Action(action); ok || len(p.Config().Actions) == 0 {
		return action
	}
	for _, a := range p.Config().Actions {
		if a.Entrypoint == entry {
			return a.Name
		}
	}
	return action
}

// resolveAgent returns Options.Agent, else the backend's only agent (GET
// /agents/, once).
func (e *Executor) resolveAgent(ctx context.Context) (int, error) {
	if e.opts.Agent > 0 {
		return int(e.opts.Agent), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.agent > 0 {
		return e.agent, nil
	}
	agents, err := e.client.Agents(ctx)
	if err != nil {
		return 0, err
	}
	switch len(agents) {
	case 0:
		return 0, &OptionError{Field: "Agent", Err: fmt.Errorf("the backend at %s has no agents to run jobs on", e.client.Host())}
	case 1:
		e.agent = agents[0].ID
		return e.agent, nil
	}
	list := make([]string, len(agents))
	for i, a := range agents {
		desc := strconv.Itoa(a.ID) + " " + a.Name
		var notes []string
		if a.Kind != "" {
			notes = append(notes, a.Kind)
		}
		if a.Status != "" {
			notes = append(notes, a.Status)
		}
		if len(notes) > 0 {
			desc += " (" + strings.Join(notes, ", ") + ")"
		}
		list[i] = desc
	}
	return 0, &OptionError{Field: "Agent", Err: fmt.Errorf("the backend at %s has %d agents; choose one (--agent ID, or synapse agent select): %s", e.client.Host(), len(agents), strings.Join(list, "; "))}
}

// notAnAction reads the action list of synapse server's "not an action"
// answer: `action: "x" is not an action of CODE VERSION (actions: a, b, c)`
// (older servers: `(actions: [a b c])`).
var notAnAction = regexp.MustCompile(`is not an action of .*\(actions: \[?([^\])]*)\]?\)`)

// runError turns the backend's refusal of a run into the typed errors of
// every mode: field errors of the params into a *synapse.ValidationError,
// an unknown action into a *synapse.ActionNotFoundError (both keep the
// *backend.HTTPError: the first as Err, the second in the answer's text
// only). Other errors are returned as they are.
func runError(action string, err error) error {
	var he *backend.HTTPError
	if !errors.As(err, &he) || he.Status != 400 {
		return err
	}
	m := notAnAction.FindStringSubmatch(he.Detail)
	switch {
	case m != nil || strings.EqualFold(he.Code, "INVALID_ACTION"):
		var available []string
		if m != nil {
			available = strings.Fields(strings.ReplaceAll(m[1], ",", " "))
		}
		slices.Sort(available)
		return synapse.NotFound(action, available)
	case len(he.Fields) > 0 && (he.Code == "" || strings.EqualFold(he.Code, "VALIDATION_ERROR")):
		ve := &synapse.ValidationError{Action: action, Err: err}
		for _, f := range he.Fields {
			ve.Fields = append(ve.Fields, synapse.FieldError{Field: f.Field, Message: f.Message})
		}
		return ve
	}
	return err
}
