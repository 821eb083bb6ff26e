package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// Runner runs jobs on one agent: *ProcessAgent or *RayAgent.
type Runner interface {
	// Start starts job of release rel with the process environment env;
	// the runner records the outcome in the store when the job ends.
	Start(ctx context.Context, job store.Job, rel store.Release, env []string) error
	// Stop stops a running job and returns once it has ended (STOPPED).
	Stop(ctx context.Context, jobID string) error
	// Attach resumes a job that a previous server started on this agent
	// (RUNNING or PENDING in the store): the runner follows it from where
	// its console log stops and records its outcome, as after Start. A run
	// that has ended already is settled before Attach returns (the job is
	// terminal then). A job the agent has no trace of is ErrNotStarted.
	Attach(ctx context.Context, job store.Job) error
	// Close stops following the agent's jobs, leaving them running to be
	// re-attached by the next server, and returns once the runner writes
	// nothing more to the store.
	Close()
}

// ErrNotStarted is Runner.Attach's error for a job its agent never
// started (it was still waiting for a slot when the server stopped).
var ErrNotStarted = errors.New("the agent never started the job")

// dispatcher starts jobs on their agents, at most max at once per agent;
// the others wait in order, PENDING; their meta.queue {position, reason}
// is computed when a job is read (API.jobJSON), never stored.
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
	d.mu.Unlock()
	return nil
}

// position is the job's place in its agent's queue (1 is next), or 0
// when it is not waiting.
func (d *dispatcher) position(jobID, agent string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Index(d.queue[agent], jobID) + 1
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
	if next != "" {
		d.running[agent]++
		d.agentOf[next] = agent
	}
	d.mu.Unlock()
	if next == "" {
		return
	}
	j, err := d.api.Store.GetJob(ctx, next)
	if err == nil {
		err = d.start(ctx, j)
	}
	if err != nil {
		d.failed(ctx, next, err)
	}
}

// holds reports whether an agent of this server runs the job (it has its
// slot: started, or re-attached, and not yet settled).
func (d *dispatcher) holds(jobID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.agentOf[jobID]
	return ok
}

// release frees the job's slot without starting the next job (Recover,
// before anything waits); a job without a slot is left alone.
func (d *dispatcher) release(jobID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if agent, ok := d.agentOf[jobID]; ok {
		delete(d.agentOf, jobID)
		d.running[agent]--
	}
}

// adopt gives a re-attached job its agent's slot (even past the limit:
// it runs already).
func (d *dispatcher) adopt(jobID, agent string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		d.running, d.queue, d.agentOf = map[string]int{}, map[string][]string{}, map[string]string{}
	}
	d.running[agent]++
	d.agentOf[jobID] = agent
}

// Recovered counts what Recover did.
type Recovered struct {
	Attached int // jobs re-attached by their agents, running on
	Settled  int // jobs whose run had ended while no server watched: now ended with its outcome
	Queued   int // jobs never started, handed to their agents again
	Failed   int // jobs that could not be resumed, now FAILED
	// Stopped counts the Failed jobs of a process agent the server has no
	// more whose process still ran: it was stopped (stopOrphan).
	Stopped int
}

// orphanGrace is how long stopOrphan waits between SIGTERM and SIGKILL.
const orphanGrace = 5 * time.Second

// stopOrphan stops the process of a job whose process agent is not
// configured any more (ProcessRunDir/AGENT/JOB.pid names a live process
// whose environment names the job, as Attach checks): SIGTERM to its
// group, SIGKILL after orphanGrace. The rest of its output goes to the
// console log and its files are removed. It returns the PID (0: no
// process) and whether the process has ended.
func (a *API) stopOrphan(ctx context.Context, j store.Job) (pid int, stopped bool) {
	if a.ProcessRunDir == "" || !validAgentName(j.Agent) {
		return 0, false
	}
	pa := &ProcessAgent{RunDir: filepath.Join(a.ProcessRunDir, j.Agent)}
	if _, err := os.Stat(pa.file(j.ID, ".log")); err != nil {
		return 0, false // never ran on a process agent here
	}
	if b, err := os.ReadFile(pa.file(j.ID, ".pid")); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid > 0 && ownProcess(pid, j.ID) {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		for deadline, killed := time.Now().Add(orphanGrace), false; ownProcess(pid, j.ID); time.Sleep(20 * time.Millisecond) {
			if !killed && time.Now().After(deadline) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				killed, deadline = true, time.Now().Add(orphanGrace)
			} else if killed && time.Now().After(deadline) {
				return pid, false // left as it is, files included
			}
		}
		stopped = true
	} else {
		pid = 0
	}
	if f, err := os.Open(pa.file(j.ID, ".log")); err == nil {
		if _, err := f.Seek(j.ConsoleOffset, io.SeekStart); err == nil {
			if rest, err := io.ReadAll(io.LimitReader(f, 64<<20)); err == nil && len(rest) > 0 {
				var lines []string
				c := lineCutter{off: j.ConsoleOffset}
				c.write(rest, func(l string, _ int64) { lines = append(lines, l) })
				c.rest(func(l string, _ int64) { lines = append(lines, l) })
				_, _ = a.Store.AppendConsole(ctx, j.ID, lines)
			}
		}
		f.Close()
	}
	removeJobFiles(pa.RunDir, j.ID)
	return pid, stopped
}

// Recover settles the jobs a previous server left RUNNING or PENDING,
// oldest first: each is re-attached by its agent (Runner.Attach) and keeps
// its slot, unless its run had ended (settled then by Attach, from its
// output or Ray's state); a PENDING job its agent never started goes to its agent again
// (waiting for a slot, meta.queue); a job whose agent is not configured
// any more, or that its agent cannot resume, becomes FAILED with the
// reason in meta.error (error_type "server_restart"), its tokens revoked.
// Call it once, before serving.
func (a *API) Recover(ctx context.Context) (Recovered, error) {
	a.jobs.api = a
	var jobs []store.Job
	for _, status := range []string{store.StatusRunning, store.StatusPending} {
		for after := ""; ; {
			page, next, err := a.Store.ListJobs(ctx, store.JobFilter{Status: status, After: after})
			if err != nil {
				return Recovered{}, fmt.Errorf("recover jobs: %w", err)
			}
			jobs = append(jobs, page...)
			if next == "" {
				break
			}
			after = next
		}
	}
	slices.SortStableFunc(jobs, func(x, y store.Job) int { return x.CreatedAt.Compare(y.CreatedAt) })
	var out Recovered
	fail := func(j store.Job, msg string) {
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "server_restart", "message": msg}})
		res, _ := json.Marshal(map[string]string{"error": msg})
		_, _ = a.Store.UpdateJob(ctx, j.ID, store.JobUpdate{Status: store.StatusFailed, Result: res, Meta: meta})
		_ = a.Store.RevokeToken(ctx, j.ID)
		_ = a.Store.CloseConsole(ctx, j.ID)
		out.Failed++
	}
	var again []store.Job
	for _, j := range jobs {
		runner := a.Runners[j.Agent]
		if runner == nil {
			msg := fmt.Sprintf("the server restarted without the job's agent %q", j.Agent)
			switch pid, stopped := a.stopOrphan(ctx, j); {
			case stopped:
				msg += fmt.Sprintf("; its process (PID %d) was stopped", pid)
				out.Stopped++
			case pid > 0:
				msg += fmt.Sprintf("; its process (PID %d) could not be stopped and runs on: stop it with kill -KILL -%d", pid, pid)
			}
			fail(j, msg)
			continue
		}
		// The slot first: a run that ends as soon as it is attached frees
		// it (JobDone), which must not come before.
		a.jobs.adopt(j.ID, j.Agent)
		err := runner.Attach(ctx, j)
		if now, gerr := a.Store.GetJob(ctx, j.ID); err != nil || gerr == nil && store.Terminal(now.Status) {
			a.jobs.release(j.ID)
			if err == nil {
				out.Settled++
				continue
			}
		}
		switch {
		case err == nil:
			out.Attached++
		case errors.Is(err, ErrNotStarted) && j.Status == store.StatusPending:
			again = append(again, j)
		case errors.Is(err, ErrNotStarted):
			fail(j, "the server stopped while the job ran, and its agent has no trace of it")
		default:
			fail(j, "the server restarted and could not resume the job: "+err.Error())
		}
	}
	for _, j := range again {
		_ = a.Store.RevokeToken(ctx, j.ID)
		if err := a.jobs.submit(ctx, j); err != nil {
			a.jobs.failed(ctx, j.ID, err)
			out.Failed++
			continue
		}
		out.Queued++
	}
	return out, nil
}

// withoutQueue is meta without its queue position (its other keys, such
// as language, kept).
func withoutQueue(meta json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(meta, &m) != nil || m == nil {
		return json.RawMessage(`{}`)
	}
	delete(m, "queue")
	b, _ := json.Marshal(m)
	return b
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
	if m := withoutQueue(job.Meta); !bytes.Equal(m, job.Meta) {
		j, err := a.Store.UpdateJob(ctx, job.ID, store.JobUpdate{Meta: json.RawMessage(`{"queue":null}`)}) // merged: removes queue
		if err != nil {
			return err
		}
		job = j
	}
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

// failed records that a job could not be started; no agent will write to
// its console log, so it is closed (its followers get complete at once).
func (d *dispatcher) failed(ctx context.Context, jobID string, err error) {
	b, _ := json.Marshal(map[string]any{"error": err.Error()})
	meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "start", "message": err.Error()}})
	_, _ = d.api.Store.UpdateJob(ctx, jobID, store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta})
	_ = d.api.Store.RevokeToken(ctx, jobID)
	_ = d.api.Store.CloseConsole(ctx, jobID)
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
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "" && mt != "application/json" {
		return &apiError{http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", fmt.Sprintf("the body must be a JSON object {%s} sent with Content-Type: application/json (got %s)", runFields, mt)}
	}
	raw, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	var req runRequest
	if err := decodeJSON(raw, &req, true, runFields); err != nil {
		if ae, ok := err.(*apiError); ok && strings.Contains(ae.message, "not valid JSON") {
			ae.message = strings.Replace(ae.message, " (fields: "+runFields+")", "", 1) + ": the body must be a JSON object {" + runFields + "} sent with Content-Type: application/json"
		}
		return err
	}
	if len(req.Params) > 0 && string(req.Params) != "null" && !isObject(req.Params) {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("params: want a JSON object of the action's params by name, got %s", jsonKind(req.Params))}
	}
	if req.Language != "" && !validLanguage(req.Language) {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("language: want a language tag such as en, ko or pt-BR (got %q)", req.Language)}
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
		if req.Version != "" {
			return &notFoundError{fmt.Sprintf("version: plugin %s has no release %q (GET /plugin_releases/?plugin=%s lists its releases)", p.Code, req.Version, p.Code)}
		}
		what := "no release"
		if !req.Debug {
			what = "no published (non-debug) release; run with debug: true to run a debug release"
		}
		return &notFoundError{fmt.Sprintf("plugin %s has %s: publish it first (GET /plugin_releases/?plugin=%s lists its releases)", p.Code, what, p.Code)}
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
		if req.Action == "" {
			return &apiError{http.StatusBadRequest, "INVALID_ACTION", fmt.Sprintf("action: required: the action to run, one of %s (release %s %s)", strings.Join(names, ", "), p.Code, rel.Version)}
		}
		return &apiError{http.StatusBadRequest, "INVALID_ACTION", fmt.Sprintf("action: %q is not an action of %s %s (actions: %s)", req.Action, p.Code, rel.Version, strings.Join(names, ", "))}
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
	names := make([]string, len(a.Agents))
	for i, ag := range a.Agents {
		names[i] = fmt.Sprintf("%d %s", ag.ID, ag.Name)
	}
	list := strings.Join(names, ", ")
	if key == "" && len(a.Agents) > 1 {
		return Agent{}, &apiError{http.StatusBadRequest, "INVALID_AGENT", fmt.Sprintf("agent: required: this server has %d agents; name one by ID or name (agents: %s)", len(a.Agents), list)}
	}
	return Agent{}, &apiError{http.StatusBadRequest, "INVALID_AGENT", fmt.Sprintf("agent: no agent %q here (agents: %s)", key, list)}
}

// validate checks params with the release binary's validate command when
// the release has one this machine runs; field errors are a 400. The
// command runs in a process group of its own, killed whole when it takes
// longer than the params check's timeout (a 504: nothing ran) or the
// request ends.
func (a *API) validate(ctx context.Context, rel store.Release, entry string, params json.RawMessage) error {
	if a.Releases == nil || rel.SHA256 == "" {
		return nil
	}
	dir, err := a.Releases.Unpacked(rel)
	if err != nil {
		return err
	}
	timeout := a.paramsTimeout()
	checkCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(checkCtx, filepath.Join(dir, worker.BinaryName), "validate", entry)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(params)
	var out bytes.Buffer
	cmd.Stdout = &out
	killed, err := runOwnGroup(cmd)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("params check: %w", ctx.Err())
	case killed:
		return &apiError{http.StatusGatewayTimeout, "PARAMS_CHECK_TIMEOUT", fmt.Sprintf("params: the params check (%s validate %s) did not finish within %s, so nothing ran: make the action's params validation quick, then run again", worker.BinaryName, entry, timeout)}
	case err == nil || cmd.ProcessState != nil && cmd.ProcessState.Success(): // success, maybe with a process left holding the output
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
		return jobNotFound(id)
	}
	j, err := a.Store.GetJob(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return jobNotFound(id)
	}
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
		// No agent ever had it: nothing else will end its log or tokens.
		_ = a.Store.RevokeToken(r.Context(), id)
		_ = a.Store.CloseConsole(r.Context(), id)
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
		_ = a.Store.CloseConsole(r.Context(), id)
	}
	m, err := a.jobJSON(r, j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": m, "meta": map[string]string{"request_id": uuid.NewString()}})
	return nil
}
