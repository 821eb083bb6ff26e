package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/retry"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// JobInfo describes a backend job as GET /jobs/{id}/ gives it.
type JobInfo struct {
	ID      string            `json:"id"`                // the job's UUID
	Status  synapse.JobStatus `json:"status"`            // PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED
	Plugin  string            `json:"plugin,omitempty"`  // plugin_release.plugin: the plugin's code
	Release string            `json:"release,omitempty"` // plugin_release.version
	// Action is the action that runs (the backend records its
	// entrypoint, which is the action's name unless config.yaml maps it).
	Action    string `json:"action"`
	AgentID   int64  `json:"agent_id,omitempty"` // agent.id
	AgentName string `json:"agent,omitempty"`    // agent.name, when the backend gives it
	// Params are the params as the backend checked them.
	Params json.RawMessage `json:"params,omitempty"`
	// Progress is progress_record; nil until the job reports progress.
	Progress *synapse.ProgressRecord `json:"progress,omitempty"`
	// Metrics is metrics_record's record.steps: the last metrics of each
	// category; nil until the job reports metrics.
	Metrics map[string]map[string]any `json:"metrics,omitempty"`
	// Result is the job's result once it has ended: the action's result
	// (non-objects wrapped {"result": v}), or {"error": text}.
	Result json.RawMessage `json:"result,omitempty"`
	// QueuePosition is meta.queue.position while the job waits for a slot
	// on its agent (1 is next), else 0; QueueReason is why (slots_full).
	QueuePosition int    `json:"queue_position,omitempty"`
	QueueReason   string `json:"queue_reason,omitempty"`
	// Error and ErrorType are meta.error's message and error_type for a
	// job that failed or could not start (such as server_restart).
	Error     string `json:"error,omitempty"`
	ErrorType string `json:"error_type,omitempty"`
	// Language is the run's language tag, "" for none.
	Language string `json:"language,omitempty"`
	// Created, Started and Completed are the job's times; zero until then.
	Created   time.Time `json:"created,omitzero"`
	Started   time.Time `json:"started,omitzero"`
	Completed time.Time `json:"completed,omitzero"`
}

func jobInfo(j *backend.Job) *JobInfo {
	info := &JobInfo{ID: j.ID, Status: synapse.JobStatus(j.Status), Plugin: j.Release.Plugin, Release: j.Release.Version,
		Action: j.Action, AgentID: int64(j.Agent.ID), AgentName: j.Agent.Name, Params: j.Params, Result: j.Result,
		Language: j.Meta.Language, Created: j.Created}
	if len(j.ProgressRecord) > 0 {
		var r synapse.ProgressRecord
		if json.Unmarshal(j.ProgressRecord, &r) == nil {
			info.Progress = &r
		}
	}
	info.Metrics = metricsOf(j.MetricsRecord)
	if q := j.Meta.Queue; q != nil {
		info.QueuePosition, info.QueueReason = q.Position, q.Reason
	}
	if e := j.Meta.Error; e != nil {
		info.Error, info.ErrorType = e.Message, e.ErrorType
	}
	if j.Started != nil {
		info.Started = *j.Started
	}
	if j.Completed != nil {
		info.Completed = *j.Completed
	}
	return info
}

// metricsOf reads metrics_record {"record": {"steps": {CATEGORY: {KEY:
// VALUE}}}}; nil when it holds none.
func metricsOf(raw json.RawMessage) map[string]map[string]any {
	if len(raw) == 0 {
		return nil
	}
	var m struct {
		Record struct {
			Steps map[string]map[string]any `json:"steps"`
		} `json:"record"`
	}
	if json.Unmarshal(raw, &m) != nil || len(m.Record.Steps) == 0 {
		return nil
	}
	return m.Record.Steps
}

// JobFilter selects the jobs ListJobs returns. The zero value lists all.
type JobFilter struct {
	// Status keeps jobs of this status; "" all.
	Status synapse.JobStatus
	// Action keeps jobs of this action; "" all (synapse server ignores it).
	Action string
	// Limit is the most jobs returned, newest first; 0 is all.
	Limit int
}

// ListJobs lists the backend's jobs newest first (GET /v2/jobs/, every
// page up to f.Limit). Errors are the backend's (internal/backend types).
func ListJobs(ctx context.Context, b Backend, f JobFilter) ([]JobInfo, error) {
	c, err := b.client()
	if err != nil {
		return nil, err
	}
	jobs, err := c.Jobs(ctx, backend.JobsFilter{Status: string(f.Status), Action: f.Action, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]JobInfo, len(jobs))
	for i := range jobs {
		out[i] = *jobInfo(&jobs[i])
	}
	return out, nil
}

// Job is a job on a Synapse backend: a run of a plugin action. Its methods
// are safe for concurrent use; cancelling the ctx of one ends that call
// only, never the job (Stop does).
type Job struct {
	id     string
	action string // the action asked for; "" for a job opened by ID
	client *backend.Client

	mu     sync.Mutex
	stream *worker.JobStream // filled by Follow; used by Result
}

var _ synapse.Job = (*Job)(nil)

func newJob(c *backend.Client, bj *backend.Job, action string) *Job {
	return &Job{id: bj.ID, action: action, client: c}
}

// OpenJob returns the job id (a UUID) of the backend b, for its status,
// console log, result and stop. It reads the job once (GET /jobs/{id}/):
// an unknown one is an error matching backend.ErrNotFound.
func OpenJob(ctx context.Context, b Backend, id string) (*Job, error) {
	c, err := b.client()
	if err != nil {
		return nil, err
	}
	bj, err := c.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	return newJob(c, bj, ""), nil
}

// ID returns the job's UUID.
func (j *Job) ID() string { return j.id }

// Action returns the action asked for ("" for a job opened by OpenJob:
// see JobInfo.Action).
func (j *Job) Action() string { return j.action }

// DashboardURL returns the job's page in synapse server's web dashboard,
// HOST/ui/jobs/{id}/ (docs/dashboard.md; signing in with an admin token).
// The Synapse platform's console has pages of its own, at an address its
// API does not give.
func (j *Job) DashboardURL() string { return j.client.Host() + "/ui/jobs/" + j.id + "/" }

// Info returns the job's current state (GET /jobs/{id}/).
func (j *Job) Info(ctx context.Context) (*JobInfo, error) {
	bj, err := j.client.Job(ctx, j.id)
	if err != nil {
		return nil, err
	}
	return jobInfo(bj), nil
}

// Status returns the job's current status.
func (j *Job) Status(ctx context.Context) (synapse.JobStatus, error) {
	bj, err := j.client.Job(ctx, j.id)
	if err != nil {
		return "", err
	}
	return synapse.JobStatus(bj.Status), nil
}

// pollFirst and pollMax are the intervals of polling a job: short at
// first, then at most once a second.
var pollFirst, pollMax = 100 * time.Millisecond, time.Second

// wait polls the job until it has ended.
func (j *Job) wait(ctx context.Context) (*backend.Job, error) {
	bo := retry.New(pollFirst, pollMax, 2)
	for {
		bj, err := j.client.Job(ctx, j.id)
		if err != nil {
			return nil, err
		}
		if bj.Ended() {
			return bj, nil
		}
		if err := bo.Wait(ctx); err != nil {
			return nil, fmt.Errorf("wait for job %s: %w", j.id, err)
		}
	}
}

// Wait blocks until the job has ended and returns its final state.
func (j *Job) Wait(ctx context.Context) (*JobInfo, error) {
	bj, err := j.wait(ctx)
	if err != nil {
		return nil, err
	}
	return jobInfo(bj), nil
}

// Logs returns the job's console log as the backend keeps it
// (GET /jobs/{id}/console_logs/), one line each.
func (j *Job) Logs(ctx context.Context) ([]string, error) { return j.client.ConsoleLogs(ctx, j.id) }

// Stop stops the job (POST /v2/jobs/{id}/stop/, never a PATCH of the
// status: that only records one) and returns once the backend reports it
// STOPPED. The agent sends the plugin SIGTERM (its action's Context is
// cancelled), then SIGKILL. A job that has already ended is left as it
// is: Stop returns nil (Info tells how it ended).
func (j *Job) Stop(ctx context.Context) error {
	_, err := j.stop(ctx)
	return err
}

// stop is Stop, reporting whether it stopped the job (false: the job had
// already ended).
func (j *Job) stop(ctx context.Context) (bool, error) {
	_, err := j.client.Stop(ctx, j.id)
	if errors.Is(err, backend.ErrConflict) {
		if bj, gerr := j.client.Job(ctx, j.id); gerr == nil && bj.Ended() {
			return false, nil
		}
	}
	if err != nil {
		return false, err
	}
	_, err = j.wait(ctx)
	return err == nil, err
}

// Result waits for the job to end and returns the action's result. A
// failed job returns the action's typed error when the plugin binary wrote
// one in the console log (*ValidationError, *ExecutionError with the
// panic's stack, *ActionNotFoundError), else an *ExecutionError with the
// backend's error (result.error, meta.error) and the last console lines.
// A stopped job returns an *ExecutionError matching synapse.ErrJobStopped.
func (j *Job) Result(ctx context.Context) (any, error) {
	bj, err := j.wait(ctx)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	s := j.stream
	j.mu.Unlock()
	if bj.Status != backend.StatusStopped && (s == nil || s.Result == nil && s.Err == nil) && !(bj.Status == backend.StatusSucceeded && len(bj.Result) > 0) {
		// Not followed, or followed before the outcome: the console log
		// the backend kept is the record.
		lines, lerr := j.consoleLog(ctx)
		switch {
		case lerr == nil:
			s = worker.ParseJobLog(strings.Join(lines, "\n"))
		case s == nil:
			s = worker.ParseJobLog("")
			s.Tail = []string{fmt.Sprintf("(reading the console log failed: %v)", lerr)}
		}
	}
	action := j.action
	if action == "" {
		action = bj.Action
	}
	return outcome(bj, action, s)
}

// consoleLog reads the whole console log of an ended job. The plugin
// binary reports its end before it writes its last lines (its error
// line), and the backend reads them in after, so the log is read to the
// stream's "complete" (the backend has every line); a backend whose stream
// does not complete within endGrace is read as it stands (GET
// console_logs/).
func (j *Job) consoleLog(ctx context.Context) ([]string, error) {
	tailCtx, cancel := context.WithTimeout(ctx, endGrace)
	defer cancel()
	var lines []string
	err := j.client.TailConsole(tailCtx, j.id, 0, func(l backend.Line) error {
		lines = append(lines, strings.Split(l.Text, "\n")...)
		return nil
	})
	if err == nil {
		return lines, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return j.client.ConsoleLogs(ctx, j.id)
}

// outcome turns an ended job and its console log into a result or error.
func outcome(bj *backend.Job, action string, s *worker.JobStream) (any, error) {
	if s == nil {
		s = worker.ParseJobLog("")
	}
	switch bj.Status {
	case backend.StatusSucceeded:
		raw := bj.Result
		if len(raw) == 0 {
			raw = s.Result
		}
		if len(raw) == 0 {
			return nil, &synapse.ExecutionError{Action: action, JobID: bj.ID, Err: fmt.Errorf("job %s succeeded but the backend has no result for it", bj.ID)}
		}
		v, err := worker.UnwrapResult(raw)
		if err != nil {
			return nil, &synapse.ExecutionError{Action: action, JobID: bj.ID, Err: fmt.Errorf("parse result of job %s: %w", bj.ID, err)}
		}
		return v, nil
	case backend.StatusStopped:
		return nil, &synapse.ExecutionError{Action: action, JobID: bj.ID, Err: stoppedError(bj.ID)}
	}
	if s.Err != nil {
		w := *s.Err // the stream is shared by concurrent Result calls
		if w.JobID == "" {
			w.JobID = bj.ID
		}
		return nil, worker.Rename(worker.FromError(&w), bj.Action, action)
	}
	msg := "job " + bj.ID + " failed"
	var res struct {
		Error json.RawMessage `json:"error"`
	}
	var text string
	if json.Unmarshal(bj.Result, &res) == nil && len(res.Error) > 0 {
		if json.Unmarshal(res.Error, &text) != nil {
			text = string(res.Error)
		}
	}
	if e := bj.Meta.Error; e != nil {
		if text == "" {
			text = e.Message
		}
		if e.ErrorType != "" {
			msg += " (" + e.ErrorType + ")"
		}
	}
	if text != "" {
		msg += ": " + text
	}
	if len(s.Tail) > 0 {
		msg += "\nlast console lines:\n  " + strings.Join(s.Tail, "\n  ")
	}
	if ve := paramsRejected(action, text, s.Tail, errors.New(msg)); ve != nil {
		return nil, ve
	}
	return nil, &synapse.ExecutionError{Action: action, JobID: bj.ID, Err: errors.New(msg)}
}

// pydanticHeader is the first line of a pydantic ValidationError's text:
// "1 validation error for ReportParams".
var pydanticHeader = regexp.MustCompile(`^\d+ validation errors? for \S+$`)

// paramsRejected reads the failure of a Python plugin's job whose params
// its params model rejected (the Python SDK's worker raises pydantic's
// ValidationError from BaseAction.dispatch, where it validates the params:
// the traceback in the console log shows params_model.model_validate) as a
// *synapse.ValidationError, one field error per pydantic error ("steps:
// Input should be greater than or equal to 1"), with err kept as its Err.
// It returns nil for any other failure.
func paramsRejected(action, text string, tail []string, err error) *synapse.ValidationError {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 3 || !pydanticHeader.MatchString(lines[0]) || !strings.Contains(strings.Join(tail, "\n"), "params_model.model_validate(") {
		return nil
	}
	ve := &synapse.ValidationError{Action: action, Err: err}
	for i := 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "" || strings.HasPrefix(l, "    "):
			// "For further information visit …"
		case strings.HasPrefix(l, "  ") && len(ve.Fields) > 0 && ve.Fields[len(ve.Fields)-1].Message == "":
			m := strings.TrimSpace(l)
			if j := strings.LastIndex(m, " [type="); j >= 0 {
				m = m[:j]
			}
			ve.Fields[len(ve.Fields)-1].Message = m
		case !strings.HasPrefix(l, " "):
			ve.Fields = append(ve.Fields, synapse.FieldError{Field: l})
		}
	}
	if len(ve.Fields) == 0 {
		return nil
	}
	return ve
}

// stoppedError is the error of a job that was stopped; it matches
// synapse.ErrJobStopped.
type stoppedError string

func (e stoppedError) Error() string        { return "job " + string(e) + " was stopped" }
func (e stoppedError) Is(target error) bool { return target == synapse.ErrJobStopped }
