package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// Runner runs jobs on one agent: *ProcessAgent.
type Runner interface {
	// Start starts job of release rel with the process environment env;
	// the runner records the outcome in the store when the job ends.
	Start(ctx context.Context, job store.Job, rel store.Release, env []string) error
	// Stop stops a running job and returns once it has ended (STOPPED).
	Stop(ctx context.Context, jobID string) error
}

// dispatcher starts jobs on their agents, at most max at once per agent;
// the others wait in order, PENDING with meta.queue {position, reason}.
type dispatcher struct {
	api     *API
	mu      sync.Mutex
	running map[string]int      // agent → jobs running
	queue   map[string][]string // agent → job IDs waiting, in order
	agentOf map[string]string   // job → agent, while running
}

// slots is the concurrency of each agent (API.MaxJobs, default 4).
func (d *dispatcher) slots() int {
	if d.api.MaxJobs > 0 {
		return d.api.MaxJobs
	}
	return 4
}

// submit starts the job now or queues it.
func (d *dispatcher) submit(ctx context.Context, job store.Job) error {
	d.mu.Lock()
	if d.running == nil {
		d.running, d.queue, d.agentOf = map[string]int{}, map[string][]string{}, map[string]string{}
	}
	if d.running[job.Agent] < d.slots() && len(d.queue[job.Agent]) == 0 {
		d.running[job.Agent]++
		d.agentOf[job.ID] = job.Agent
		d.mu.Unlock()
		return d.start(ctx, job)
	}
	d.queue[job.Agent] = append(d.queue[job.Agent], job.ID)
	waiting := slices.Clone(d.queue[job.Agent])
	d.mu.Unlock()
	d.markQueue(ctx, waiting)
	return nil
}

// markQueue records the queue positions (1 is next).
func (d *dispatcher) markQueue(ctx context.Context, waiting []string) {
	for i, id := range waiting {
		meta, _ := json.Marshal(map[string]any{"queue": map[string]any{"position": i + 1, "reason": "slots_full"}})
		_, _ = d.api.Store.UpdateJob(ctx, id, store.JobUpdate{Meta: meta})
	}
}

// done frees the job's slot and starts the next waiting job of its agent.
func (d *dispatcher) done(jobID string) {
	ctx := context.Background()
	d.mu.Lock()
	agent, ok := d.agentOf[jobID]
	if !ok {
		d.mu.Unlock()
		return
	}
	delete(d.agentOf, jobID)
	d.running[agent]--
	var next string
	for len(d.queue[agent]) > 0 && next == "" {
		next, d.queue[agent] = d.queue[agent][0], d.queue[agent][1:]
		if j, err := d.api.Store.GetJob(ctx, next); err != nil || store.Terminal(j.Status) {
			next = "" // stopped while waiting
		}
	}
	var waiting []string
	if next != "" {
		d.running[agent]++
		d.agentOf[next] = agent
		waiting = slices.Clone(d.queue[agent])
	}
	d.mu.Unlock()
	if next == "" {
		return
	}
	d.markQueue(ctx, waiting)
	j, err := d.api.Store.UpdateJob(ctx, next, store.JobUpdate{Meta: json.RawMessage(`{}`)})
	if err == nil {
		err = d.start(ctx, j)
	}
	if err != nil {
		d.failed(ctx, next, err)
	}
}

// unqueue removes a waiting job; it reports whether the job was waiting.
func (d *dispatcher) unqueue(jobID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for agent, q := range d.queue {
		if i := slices.Index(q, jobID); i >= 0 {
			d.queue[agent] = slices.Delete(q, i, i+1)
			return true
		}
	}
	return false
}

// start hands the job to its agent with a new job token.
func (d *dispatcher) start(ctx context.Context, job store.Job) error {
	a := d.api
	runner := a.Runners[job.Agent]
	rel, err := a.Store.GetRelease(ctx, job.ReleaseID)
	if err != nil {
		return err
	}
	token, _, err := a.Store.CreateToken(ctx, "job "+job.ID, store.TokenJob, job.ID)
	if err != nil {
		return err
	}
	var cfg struct {
		Env map[string]any `json:"env"`
	}
	_ = json.Unmarshal(rel.Config, &cfg)
	env := map[string]string{}
	for k, v := range cfg.Env {
		env[k] = fmt.Sprint(v)
	}
	var meta struct {
		Language string `json:"language"`
	}
	_ = json.Unmarshal(job.Meta, &meta)
	if err := runner.Start(ctx, job, rel, jobEnv(a.Host, token, job, env, meta.Language)); err != nil {
		return err
	}
	return nil
}

// failed records that a job could not be started.
func (d *dispatcher) failed(ctx context.Context, jobID string, err error) {
	b, _ := json.Marshal(map[string]any{"error": err.Error()})
	meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "start", "message": err.Error()}})
	_, _ = d.api.Store.UpdateJob(ctx, jobID, store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta})
	_ = d.api.Store.RevokeToken(ctx, jobID)
	d.done(jobID)
}

// runRequest is the body of POST /plugins/{id}/run/, as the Python SDK's
// run_plugin sends it.
type runRequest struct {
	Agent     json.RawMessage `json:"agent"`
	Action    string          `json:"action"`
	Params    json.RawMessage `json:"params"`
	Debug     bool            `json:"debug"`
	Version   string          `json:"version"`
	Language  string          `json:"language"`
	JobID     json.RawMessage `json:"job_id"`
	StorageID json.RawMessage `json:"storage_id"`
}

// run is POST /plugins/{id|code}/run/: it checks the request and the
// params (with the release's own binary, when it has one this machine can
// run), creates the job and hands it to the agent; the answer is the job.
func (a *API) run(w http.ResponseWriter, r *http.Request) error {
	var req runRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "read body: " + err.Error() + " (fields: agent, action, params, debug, version, language, job_id, storage_id)"}
	}
	p, err := a.findPlugin(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	agent, err := a.agentOf(req.Agent)
	if err != nil {
		return err
	}
	rel, err := a.Store.FindRelease(r.Context(), p.ID, req.Version, req.Debug || req.Version != "")
	if errors.Is(err, store.ErrNotFound) {
		what := "no release"
		if req.Version != "" {
			what = "no release " + req.Version
		}
		return &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("plugin %s has %s: publish it first", p.Code, what)}
	}
	if err != nil {
		return err
	}
	var cfg struct {
		Actions map[string]struct {
			Entrypoint string `json:"entrypoint"`
		} `json:"actions"`
	}
	_ = json.Unmarshal(rel.Config, &cfg)
	action, known := cfg.Actions[req.Action]
	if !known {
		names := make([]string, 0, len(cfg.Actions))
		for n := range cfg.Actions {
			names = append(names, n)
		}
		slices.Sort(names)
		return &apiError{http.StatusBadRequest, "INVALID_ACTION", fmt.Sprintf("action: %q is not an action of %s %s (actions: %v)", req.Action, p.Code, rel.Version, names)}
	}
	entry := action.Entrypoint
	if entry == "" {
		entry = req.Action
	}
	params := req.Params
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("{}")
	}
	if verr := a.validate(r.Context(), rel, entry, params); verr != nil {
		return verr
	}
	meta, _ := json.Marshal(map[string]any{"language": req.Language})
	job, err := a.Store.CreateJob(r.Context(), store.Job{ReleaseID: rel.ID, Agent: agent.Name, Action: entry, Params: params, Meta: meta})
	if err != nil {
		return err
	}
	if err := a.jobs.submit(context.WithoutCancel(r.Context()), job); err != nil {
		a.jobs.failed(context.WithoutCancel(r.Context()), job.ID, err)
	}
	out, err := a.Store.GetJob(r.Context(), job.ID)
	if err != nil {
		return err
	}
	m, err := a.jobJSON(r, out)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

// agentOf finds the agent a run names by ID (the Python SDK sends an int)
// or name; with a single agent, none need be named.
func (a *API) agentOf(raw json.RawMessage) (Agent, error) {
	var key string
	if len(raw) > 0 && string(raw) != "null" {
		var n int
		if json.Unmarshal(raw, &n) == nil {
			key = strconv.Itoa(n)
		} else if json.Unmarshal(raw, &key) != nil {
			return Agent{}, &apiError{http.StatusBadRequest, "INVALID_BODY", "agent: want an agent ID or name"}
		}
	}
	for _, ag := range a.Agents {
		if key == strconv.Itoa(ag.ID) || key == ag.Name || key == "" && len(a.Agents) == 1 {
			if _, ok := a.Runners[ag.Name]; ok {
				return ag, nil
			}
		}
	}
	return Agent{}, &apiError{http.StatusBadRequest, "INVALID_AGENT", fmt.Sprintf("agent: no agent %q here (GET /agents/ lists them)", key)}
}

// validate checks params with the release binary's validate command when
// the release has one this machine runs; field errors are a 400.
func (a *API) validate(ctx context.Context, rel store.Release, entry string, params json.RawMessage) error {
	if a.Releases == nil || rel.SHA256 == "" {
		return nil
	}
	dir, err := a.Releases.Unpacked(rel)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(dir, worker.BinaryName), "validate", entry)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(params)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err == nil {
		return nil
	}
	var pe protocol.Error
	if json.Unmarshal(bytes.TrimSpace(out.Bytes()), &pe) != nil || pe.Kind == "" {
		return nil // not a binary of this machine (another arch), or not a Go plugin: the agent checks
	}
	details := make([]map[string]string, len(pe.Fields))
	for i, f := range pe.Fields {
		details[i] = map[string]string{"field": f.Field, "message": f.Message}
	}
	return &validationError{message: pe.Message, details: details}
}

// validationError is a 400 with field errors.
type validationError struct {
	message string
	details []map[string]string
}

func (e *validationError) Error() string { return e.message }

// stop is POST /v2/jobs/{id}/stop/: the only call that stops a run. 409
// when the job has already ended.
func (a *API) stop(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return store.ErrNotFound
	}
	j, err := a.Store.GetJob(r.Context(), id)
	if err != nil {
		return err
	}
	if store.Terminal(j.Status) {
		return &apiError{http.StatusConflict, "INVALID_STATE", fmt.Sprintf("job %s has already ended (%s)", id, j.Status)}
	}
	if a.jobs.unqueue(id) {
		if _, err := a.Store.UpdateJob(r.Context(), id, store.JobUpdate{Status: store.StatusStopped}); err != nil {
			return err
		}
	} else if runner := a.Runners[j.Agent]; runner != nil {
		if err := runner.Stop(r.Context(), id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if j, err = a.Store.GetJob(r.Context(), id); err != nil {
		return err
	}
	if !store.Terminal(j.Status) { // not running here (the server restarted): record the stop
		if j, err = a.Store.UpdateJob(r.Context(), id, store.JobUpdate{Status: store.StatusStopped}); err != nil {
			return err
		}
		_ = a.Store.RevokeToken(r.Context(), id)
	}
	m, err := a.jobJSON(r, j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": m, "meta": map[string]string{"request_id": uuid.NewString()}})
	return nil
}
