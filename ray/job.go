package ray

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/worker"
	"github.com/synapse-sdk/synapse-go/plugin"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"
)

// JobInfo describes a cluster job.
type JobInfo struct {
	ID     string            `json:"id"`     // the submission ID
	Status synapse.JobStatus `json:"status"` // Ray's job status
	// Message is Ray's message about the status; for a failed job it
	// ends with the job's last log lines.
	Message   string `json:"message,omitempty"`
	ErrorType string `json:"error_type,omitempty"` // Ray's error_type, such as JOB_ENTRYPOINT_COMMAND_ERROR
	// Entrypoint is the shell command the job runs.
	Entrypoint string `json:"entrypoint"`
	// Metadata is the submission's metadata: synapse-go sets sdk, plugin
	// and action.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Start and End are when the job started and ended; zero until then.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// DriverExitCode is the entrypoint's exit code, once it has exited.
	DriverExitCode *int `json:"driver_exit_code,omitempty"`
}

func jobInfo(j *rayapi.Job) *JobInfo {
	info := &JobInfo{ID: j.SubmissionID, Status: j.Status, Message: j.Message, ErrorType: j.ErrorType,
		Entrypoint: j.Entrypoint, Metadata: j.Metadata, DriverExitCode: j.DriverExitCode}
	if j.StartTime > 0 {
		info.Start = time.UnixMilli(j.StartTime)
	}
	if j.EndTime > 0 {
		info.End = time.UnixMilli(j.EndTime)
	}
	return info
}

// JobTimings says where the time of a submission went.
type JobTimings struct {
	Build   time.Duration // cross-compiling the plugin binary (zero when cached)
	Package time.Duration // zipping the package, or finding it in the package cache
	Upload  time.Duration // checking and uploading the package
	Submit  time.Duration // the submit request
	Cached  bool          // the binary came from the build cache
	// PackageCached is true when the package came from the package
	// cache (internal/pack.Cache beside the build cache) instead of
	// being zipped again.
	PackageCached bool
	Reused        bool // the package was already on the cluster
}

// Job is a plugin action submitted as a Ray job. Its methods are safe for
// concurrent use.
type Job struct {
	id string // the submission ID
	// Action is the action's name (empty for a job opened by OpenJob).
	Action string
	// DashboardURL links to the job in the Ray dashboard.
	DashboardURL string
	// Existing is true when the submission found this job already
	// submitted with the same entrypoint (an idempotent retry).
	Existing bool
	// Timings of the submission.
	Timings JobTimings

	client *rayapi.Client
	mu     sync.Mutex
	stream *worker.JobStream // filled by Follow; used by Result
}

var _ synapse.Job = (*Job)(nil)

// ID returns the job's submission ID.
func (j *Job) ID() string { return j.id }

// OpenJob returns a Job for an existing job ID on the cluster at address
// (see Cluster.Address), for its status, logs and result.
func OpenJob(address, id string) (*Job, error) {
	client, err := rayapi.NewClient(address)
	if err != nil {
		return nil, err
	}
	return &Job{id: id, client: client, DashboardURL: client.JobURL(id)}, nil
}

// ListJobs lists the submission jobs of the cluster at address, newest
// first.
func ListJobs(ctx context.Context, address string) ([]JobInfo, error) {
	client, err := rayapi.NewClient(address)
	if err != nil {
		return nil, err
	}
	jobs, err := client.Jobs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]JobInfo, len(jobs))
	for i := range jobs {
		out[i] = *jobInfo(&jobs[i])
	}
	return out, nil
}

// Info returns the job's current state.
func (j *Job) Info(ctx context.Context) (*JobInfo, error) {
	rj, err := j.client.Job(ctx, j.id)
	if err != nil {
		return nil, err
	}
	return jobInfo(rj), nil
}

// Status returns the job's current status.
func (j *Job) Status(ctx context.Context) (synapse.JobStatus, error) {
	info, err := j.Info(ctx)
	if err != nil {
		return "", err
	}
	return info.Status, nil
}

// Wait blocks until the job has ended and returns its final state.
func (j *Job) Wait(ctx context.Context) (*JobInfo, error) {
	rj, err := j.client.Wait(ctx, j.id)
	if err != nil {
		return nil, err
	}
	return jobInfo(rj), nil
}

// Logs returns the job's whole log text as Ray stores it.
func (j *Job) Logs(ctx context.Context) (string, error) { return j.client.Logs(ctx, j.id) }

// Follow streams the job's log until the job ends, passing its events to
// logger; other log lines (Ray's own, the plugin's stderr) become messages
// in category "ray". It returns when the job has ended and its log is
// drained, or when ctx is cancelled (the job keeps running).
//
// Ray closes a log stream a few seconds after the job ends; once the plugin
// has written its result (or error) and Ray reports the job ended, Follow
// returns without waiting for that.
func (j *Job) Follow(ctx context.Context, logger synapse.Logger) error {
	logger = synapse.NewRunLogger(logger)
	s := worker.NewJobStream(logger.Handle, func(line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		logger.Handle(synapse.Event{Type: synapse.EventMessage, Time: time.Now(), Level: synapse.LevelInfo, Category: "ray", JobID: j.id, Message: line})
	})
	// The job's end, not the tail's: the rest of the log from Ray's stored
	// log once Ray reports the job ended.
	err := j.client.TailToEnd(ctx, j.id, func(chunk string) error {
		s.Write(chunk)
		return nil
	})
	s.Close()
	if err == nil {
		j.mu.Lock()
		j.stream = s
		j.mu.Unlock()
	}
	return err
}

// Result waits for the job to end and returns the action's result. A failed
// job returns the action's typed error when the plugin reported one (a
// *ValidationError, *ExecutionError or *ActionNotFoundError), else an
// *ExecutionError with Ray's message, error type and the last log lines. A
// stopped job returns an error matching ErrJobStopped.
func (j *Job) Result(ctx context.Context) (any, error) {
	info, err := j.Wait(ctx)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	s := j.stream
	j.mu.Unlock()
	if s == nil || s.Result == nil && s.Err == nil {
		// Not followed, or the stream ended before the outcome line: the
		// log Ray stored is the record.
		logs, lerr := j.client.Logs(ctx, j.id)
		switch {
		case lerr == nil:
			s = worker.ParseJobLog(logs)
		case s == nil:
			return nil, fmt.Errorf("read result of job %s: %w", j.id, lerr)
		default:
			s.Tail = append(s.Tail, fmt.Sprintf("(the log stream ended early and reading the stored log failed: %v)", lerr))
		}
	}
	action := j.Action
	if action == "" { // a job opened by ID: its submission metadata names the action
		action = info.Metadata["action"]
	}
	return jobOutcome(j.id, action, info, s)
}

// jobOutcome turns a finished job's state and log into a result or error.
func jobOutcome(id, action string, info *JobInfo, s *worker.JobStream) (any, error) {
	switch info.Status {
	case synapse.JobSucceeded:
		if s.Result == nil {
			msg := fmt.Sprintf("job %s succeeded but its log has no result (between %s and %s): the job's command is not a synapse plugin binary's `job`, or its output was cut; see `synapse plugin job logs %s`", id, worker.ResultStart, worker.ResultEnd, id)
			if len(s.Tail) > 0 {
				msg += "\nlast log lines:\n  " + strings.Join(s.Tail, "\n  ")
			}
			return nil, &synapse.ExecutionError{Action: action, JobID: id, Err: errors.New(msg)}
		}
		v, err := worker.UnwrapResult(s.Result)
		if err != nil {
			return nil, &synapse.ExecutionError{Action: action, JobID: id, Err: fmt.Errorf("parse result of job %s: %w", id, err)}
		}
		return v, nil
	case synapse.JobStopped:
		return nil, &synapse.ExecutionError{Action: action, JobID: id, Err: stoppedError(id)}
	}
	if s.Err != nil {
		w := *s.Err // the stream is shared by concurrent Result calls
		if w.JobID == "" {
			w.JobID = id
		}
		return nil, worker.FromError(&w)
	}
	msg := fmt.Sprintf("job %s %s", id, strings.ToLower(string(info.Status)))
	if info.ErrorType != "" {
		msg += " (" + info.ErrorType + ")"
	}
	if info.Message != "" {
		msg += ": " + info.Message
	}
	if len(s.Tail) > 0 {
		msg += "\nlast log lines:\n  " + strings.Join(s.Tail, "\n  ")
	}
	return nil, &synapse.ExecutionError{Action: action, JobID: id, Err: errors.New(msg)}
}

// Stop stops the job and waits (up to a minute) until Ray reports it stopped.
// The plugin process gets SIGTERM (its action's context is cancelled), then
// SIGKILL after Ray's grace period.
//
// A job still PENDING (waiting for resources) is different: Ray accepts the
// stop but keeps such a job PENDING until its own start timeout
// (RAY_JOB_START_TIMEOUT_SECONDS, default 15 minutes) fails it. Stop then
// returns within seconds with an error matching ErrStopPending that says so.
func (j *Job) Stop(ctx context.Context) error {
	info, err := j.Info(ctx)
	if err != nil {
		return err
	}
	if info.Status != synapse.JobPending {
		_, err := j.client.StopAndWait(ctx, j.id, time.Minute)
		return err
	}
	rj, err := j.client.StopAndWait(ctx, j.id, pendingStopWait)
	if err == nil || ctx.Err() != nil || rj == nil || rj.Status != synapse.JobPending {
		return err
	}
	return &PendingStopError{ID: j.id}
}

// stoppedError is the error of a job that was stopped; it matches
// synapse.ErrJobStopped.
type stoppedError string

func (e stoppedError) Error() string        { return "job " + string(e) + " was stopped" }
func (e stoppedError) Is(target error) bool { return target == synapse.ErrJobStopped }

// pendingStopWait is how long Stop waits for a PENDING job to stop.
var pendingStopWait = 5 * time.Second

// ErrStopPending matches the error of Stop on a job that Ray keeps PENDING
// after accepting the stop.
var ErrStopPending = errors.New("stop of a pending job accepted; the job stays pending")

// PendingStopError is Stop's error for a job that waits for resources.
type PendingStopError struct{ ID string }

func (e *PendingStopError) Error() string {
	return fmt.Sprintf("job %s is waiting for resources: Ray accepted the stop but keeps such a job PENDING until its own start timeout fails it (RAY_JOB_START_TIMEOUT_SECONDS on the cluster, default 15 minutes); it will not start", e.ID)
}

// Is reports whether target is ErrStopPending.
func (e *PendingStopError) Is(target error) bool { return target == ErrStopPending }

// RequestStop asks Ray to stop the job and returns without waiting;
// stopped reports whether Ray accepted the request.
func (j *Job) RequestStop(ctx context.Context) (stopped bool, err error) {
	return j.client.Stop(ctx, j.id)
}

// Delete removes the record of an ended job from the cluster.
func (j *Job) Delete(ctx context.Context) error { return j.client.Delete(ctx, j.id) }

// jobEntrypoint is the shell command of a job running action entry: the
// binary's mode may be lost on extraction, hence the chmod. inputs (a hash
// of the package and env, params included) makes the entrypoint differ
// when they do, so reusing a job ID with other inputs is refused as a
// duplicate instead of silently following the old job.
func jobEntrypoint(entry, inputs string) string {
	return "chmod +x ./" + worker.BinaryName + " && exec ./" + worker.BinaryName + " job " + shellQuote(entry) + " inputs=" + inputs
}

// inputsHash fingerprints what a job runs: its package and environment.
func inputsHash(pkg string, env map[string]string) string {
	h := sha256.New()
	h.Write([]byte(pkg))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(h, "\x00%s=%s", k, env[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

// JobExecutor runs a plugin's actions as Ray jobs (job mode): each run
// cross-compiles the plugin (cached), packages it with the plugin's files
// (uploaded once per content), and submits the binary's `job` command as
// the entrypoint. Params are validated on this machine first, with the
// plugin's own rules, so bad params never reach the cluster. It is safe
// for concurrent use.
type JobExecutor struct {
	p      *plugin.Plugin
	opts   JobOptions
	cfg    synapse.ExecutorConfig
	client *rayapi.Client
	up     reachable
}

var _ synapse.Submitter = (*JobExecutor)(nil)

// NewJobExecutor returns the job-mode executor of p on the cluster of
// opts. The job's env is config.yaml env < WithEnv (never this process's
// whole environment), plus SYNAPSE_HOST when set here. Ray keeps it in
// clear in the job's record (runtime_env.env_vars, shown by `ray job list`
// and the dashboard, kept after the job ends), so this process's
// SYNAPSE_ACCESS_TOKEN is never forwarded; see docs/modes.md on secrets. WithJobID
// sets the submission ID (default synapse-CODE-ACTION-8HEX).
//
// Errors (usage errors, exit code 2, before anything is built or sent): an
// address that is not a Ray dashboard address, and a job ID Ray cannot use
// (1 to 128 letters, digits, '-', '_' or '.').
func NewJobExecutor(p *plugin.Plugin, opts JobOptions, eopts ...synapse.Option) (*JobExecutor, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	cfg := synapse.NewExecutorConfig(eopts...)
	if cfg.JobID != "" {
		if err := rayapi.CheckSubmissionID(cfg.JobID); err != nil {
			return nil, err
		}
	}
	client, err := rayapi.NewClient(opts.Address)
	if err != nil {
		return nil, err
	}
	return &JobExecutor{p: p, opts: opts, cfg: cfg, client: client}, nil
}

// stopGrace bounds how long Run waits for a cancelled job to stop.
const stopGrace = time.Minute

// Run submits action, follows its events to the executor's logger and
// returns its result. Cancelling ctx stops the job (Ray sends the plugin
// SIGTERM, which cancels the action's Context) and waits up to a minute
// for it to stop; use SubmitJob for a job that outlives the call.
func (e *JobExecutor) Run(ctx context.Context, action string, params any) (any, error) {
	j, err := e.SubmitJob(ctx, action, params)
	if err != nil {
		return nil, err
	}
	err = j.Follow(ctx, e.cfg.Logger)
	if ctx.Err() != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
		defer cancel()
		if serr := j.Stop(stopCtx); serr != nil {
			return nil, &synapse.ExecutionError{Action: action, JobID: j.id, Err: fmt.Errorf("%w; stop job %s: %w", ctx.Err(), j.id, serr)}
		}
		return nil, &synapse.ExecutionError{Action: action, JobID: j.id, Err: fmt.Errorf("%w: job %s was stopped", ctx.Err(), j.id)}
	}
	if err != nil {
		return nil, err
	}
	return j.Result(ctx)
}

// Submit is SubmitJob returning the synapse.Job interface.
func (e *JobExecutor) Submit(ctx context.Context, action string, params any) (synapse.Job, error) {
	j, err := e.SubmitJob(ctx, action, params)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// SubmitJob validates params, builds and packages the plugin, uploads the
// package unless the cluster has it, submits the job and returns it at
// once. A submission ID already used with the same entrypoint and inputs
// returns that job (Existing); with other inputs it is refused.
func (e *JobExecutor) SubmitJob(ctx context.Context, action string, params any) (*Job, error) {
	entry, err := e.p.Entrypoint(action)
	if err != nil {
		return nil, err
	}
	raw, err := plugin.ParamsJSON(action, params)
	if err != nil {
		return nil, err
	}
	// Bad params fail here, before anything is built for or sent to the cluster.
	if err := e.p.Validate(ctx, action, raw); err != nil {
		return nil, err
	}
	if err := e.up.check(ctx, e.client); err != nil {
		return nil, err
	}
	var t JobTimings

	start := time.Now()
	built, err := build.Build(ctx, build.Options{Dir: e.p.Dir(), GOOS: "linux", GOARCH: e.opts.arch(), Static: true, Trim: true})
	if err != nil {
		return nil, err
	}
	t.Build, t.Cached = time.Since(start), built.Cached

	envVars := clusterEnv(e.p, e.cfg.Env)
	envVars[worker.EnvActionEntrypoint] = entry
	extra := map[string][]byte{}
	if len(raw) < worker.MaxEnvParams {
		envVars[worker.EnvActionParams] = string(raw)
	} else {
		extra[".synapse_params.json"] = raw
		envVars[worker.EnvActionParamsFile] = ".synapse_params.json"
	}
	jobID := e.cfg.JobID
	if jobID == "" {
		jobID = newJobID(e.p.Code(), action)
	}
	envVars[worker.EnvJobID] = jobID

	start = time.Now()
	// A package carrying this run's params file is used once: it is not
	// cached.
	cache := packageCache(built)
	if len(extra) > 0 {
		cache.Dir = ""
	}
	pkg, pkgCached, err := cache.Build(pack.Options{Dir: e.p.Dir(), Binary: built.Binary, BinaryName: worker.BinaryName, Extra: extra}, built.Key)
	if err != nil {
		return nil, err
	}
	t.Package, t.PackageCached = time.Since(start), pkgCached

	start = time.Now()
	uploaded, err := ensurePackage(ctx, e.client, pkg)
	if err != nil {
		return nil, err
	}
	t.Upload, t.Reused = time.Since(start), !uploaded

	runtimeEnv := maps.Clone(e.p.Config().RuntimeEnv)
	if runtimeEnv == nil {
		runtimeEnv = map[string]any{}
	}
	if existing, ok := runtimeEnv["env_vars"].(map[string]any); ok {
		for k, v := range synapse.NewEnv(existing).Strings() {
			if _, set := envVars[k]; !set {
				envVars[k] = v
			}
		}
	}
	runtimeEnv["working_dir"] = pkg.URI
	runtimeEnv["env_vars"] = envVars

	start = time.Now()
	res, err := e.client.Submit(ctx, rayapi.SubmitRequest{
		Entrypoint:          jobEntrypoint(entry, inputsHash(pkg.Name, envVars)),
		SubmissionID:        jobID,
		RuntimeEnv:          runtimeEnv,
		Metadata:            map[string]string{"sdk": "synapse-go", "plugin": e.p.Code(), "action": action},
		EntrypointNumCPUs:   e.opts.Resources.CPUs,
		EntrypointNumGPUs:   e.opts.Resources.GPUs,
		EntrypointMemory:    e.opts.Resources.Memory,
		EntrypointResources: e.opts.Resources.Custom,
	})
	if err != nil {
		return nil, err
	}
	t.Submit = time.Since(start)
	return &Job{id: res.ID, Action: action, DashboardURL: e.client.JobURL(res.ID), Existing: res.Existing, Timings: t, client: e.client}, nil
}

// newJobID returns a fresh submission ID: synapse-<code>-<action>-<8 hex>,
// the action's name reduced to what a submission ID may hold.
func newJobID(code, action string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Trim(jobIDUnsafe.ReplaceAllString(strings.ReplaceAll(action, "_", "-"), "-"), "-")
	if len(name) > 64 {
		name = name[:64]
	}
	return fmt.Sprintf("synapse-%s-%s-%s", code, name, hex.EncodeToString(b))
}

// jobIDUnsafe matches runs of what a submission ID may not hold.
var jobIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)
