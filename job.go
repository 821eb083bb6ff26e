package synapse

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/ray"
)

// JobStatus is the state of a cluster job.
type JobStatus string

// Job states (Ray's).
const (
	JobPending   JobStatus = "PENDING"
	JobRunning   JobStatus = "RUNNING"
	JobStopped   JobStatus = "STOPPED"
	JobSucceeded JobStatus = "SUCCEEDED"
	JobFailed    JobStatus = "FAILED"
)

// Terminal reports whether the job has ended.
func (s JobStatus) Terminal() bool {
	return s == JobStopped || s == JobSucceeded || s == JobFailed
}

// ErrJobStopped matches the error of a job that was stopped before it finished.
var ErrJobStopped = errors.New("job stopped")

// Resources are what a cluster run asks for. Zero values ask for nothing.
type Resources struct {
	CPUs   float64
	GPUs   float64
	Memory int64 // bytes
}

// WithRayAddress sets the Ray dashboard address for task and job modes:
// "http://host:8265", "host:8265", "ray://host:10001" (mapped to the
// dashboard port) or "auto" ($RAY_ADDRESS, else http://127.0.0.1:8265).
func WithRayAddress(addr string) RunOption {
	return runOptionFunc(func(c *runConfig) { c.rayAddress = addr })
}

// WithResources sets the resources of a cluster run.
func WithResources(r Resources) RunOption {
	return runOptionFunc(func(c *runConfig) { c.resources = r })
}

// WithArch sets the cluster's CPU architecture for the plugin binary
// (GOARCH; default amd64).
func WithArch(goarch string) RunOption {
	return runOptionFunc(func(c *runConfig) { c.arch = goarch })
}

// JobInfo describes a cluster job.
type JobInfo struct {
	ID             string            `json:"id"`
	Status         JobStatus         `json:"status"`
	Message        string            `json:"message,omitempty"`
	ErrorType      string            `json:"error_type,omitempty"`
	Entrypoint     string            `json:"entrypoint"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	Start          time.Time         `json:"start,omitzero"`
	End            time.Time         `json:"end,omitzero"`
	DriverExitCode *int              `json:"driver_exit_code,omitempty"`
}

func jobInfo(j *ray.Job) *JobInfo {
	info := &JobInfo{ID: j.SubmissionID, Status: JobStatus(j.Status), Message: j.Message, ErrorType: j.ErrorType,
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
	Package time.Duration // zipping the package
	Upload  time.Duration // checking and uploading the package
	Submit  time.Duration // the submit request
	Cached  bool          // the binary came from the build cache
	Reused  bool          // the package was already on the cluster
}

// Job is a plugin action submitted as a Ray job (RunPlugin with ModeJob).
// Its methods are safe for concurrent use.
type Job struct {
	// ID is the job's submission ID.
	ID string
	// Action is the action's name (empty for a job opened by OpenJob).
	Action string
	// DashboardURL links to the job in the Ray dashboard.
	DashboardURL string
	// Existing is true when the submission found this job already
	// submitted with the same entrypoint (an idempotent retry).
	Existing bool
	// Timings of the submission.
	Timings JobTimings

	client *ray.Client
	mu     sync.Mutex
	stream *jobStream // filled by Follow; used by Result
}

// OpenJob returns a Job for an existing job ID, for its status, logs and result.
func OpenJob(id string, opts ...RunOption) (*Job, error) {
	var rc runConfig
	for _, o := range opts {
		o.applyRun(&rc)
	}
	client, err := ray.NewClient(rc.rayAddress)
	if err != nil {
		return nil, err
	}
	return &Job{ID: id, client: client, DashboardURL: client.JobURL(id)}, nil
}

// ListJobs lists the submission jobs of the cluster, newest first.
func ListJobs(ctx context.Context, opts ...RunOption) ([]JobInfo, error) {
	var rc runConfig
	for _, o := range opts {
		o.applyRun(&rc)
	}
	client, err := ray.NewClient(rc.rayAddress)
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
	rj, err := j.client.Job(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	return jobInfo(rj), nil
}

// Status returns the job's current status.
func (j *Job) Status(ctx context.Context) (JobStatus, error) {
	info, err := j.Info(ctx)
	if err != nil {
		return "", err
	}
	return info.Status, nil
}

// Wait blocks until the job has ended and returns its final state.
func (j *Job) Wait(ctx context.Context) (*JobInfo, error) {
	rj, err := j.client.Wait(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	return jobInfo(rj), nil
}

// Logs returns the job's whole log text as Ray stores it.
func (j *Job) Logs(ctx context.Context) (string, error) { return j.client.Logs(ctx, j.ID) }

// Follow streams the job's log until the job ends, passing its events to
// logger; other log lines (Ray's own, the plugin's stderr) become messages
// in category "ray". It returns when the job has ended and its log is
// drained, or when ctx is cancelled (the job keeps running).
//
// Ray closes a log stream a few seconds after the job ends; once the plugin
// has written its result (or error) and Ray reports the job ended, Follow
// returns without waiting for that.
func (j *Job) Follow(ctx context.Context, logger Logger) error {
	run := runIDs.Add(1)
	tailCtx, cancelTail := context.WithCancel(ctx)
	defer cancelTail()
	var (
		once     sync.Once
		finished = make(chan struct{}) // closed when Ray reports the job ended after its outcome
	)
	outcomeSeen := func() {
		once.Do(func() {
			go func() {
				if _, err := j.client.Wait(tailCtx, j.ID); err == nil {
					close(finished)
					cancelTail()
				}
			}()
		})
	}
	s := newJobStream(func(e Event) {
		e.run = run
		logger.Handle(e)
	}, func(line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		logger.Handle(Event{Type: EventMessage, Time: time.Now(), Level: LevelInfo, Category: "ray", JobID: j.ID, Message: line, run: run})
	})
	s.outcome = outcomeSeen
	err := j.client.Tail(tailCtx, j.ID, func(chunk string) error {
		s.Write(chunk)
		return nil
	})
	s.Close()
	select {
	case <-finished:
		err = nil // stopped tailing early: the job had ended
	default:
	}
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
	if s == nil {
		logs, err := j.client.Logs(ctx, j.ID)
		if err != nil {
			return nil, fmt.Errorf("read result of job %s: %w", j.ID, err)
		}
		s = parseJobLog(logs)
	}
	return jobOutcome(j.ID, j.Action, info, s)
}

// jobOutcome turns a finished job's state and log into a result or error.
func jobOutcome(id, action string, info *JobInfo, s *jobStream) (any, error) {
	switch info.Status {
	case JobSucceeded:
		if s.result == nil {
			return nil, &ExecutionError{Action: action, JobID: id, Err: fmt.Errorf("job %s succeeded but its log has no result (between %s and %s)", id, resultStart, resultEnd)}
		}
		v, err := unwrapResult(s.result)
		if err != nil {
			return nil, &ExecutionError{Action: action, JobID: id, Err: fmt.Errorf("parse result of job %s: %w", id, err)}
		}
		return v, nil
	case JobStopped:
		return nil, &ExecutionError{Action: action, JobID: id, Err: fmt.Errorf("%w: job %s was stopped", ErrJobStopped, id)}
	}
	if s.err != nil {
		if s.err.JobID == "" {
			s.err.JobID = id
		}
		return nil, fromWireError(s.err)
	}
	msg := fmt.Sprintf("job %s %s", id, strings.ToLower(string(info.Status)))
	if info.ErrorType != "" {
		msg += " (" + info.ErrorType + ")"
	}
	if info.Message != "" {
		msg += ": " + info.Message
	}
	if len(s.tail) > 0 {
		msg += "\nlast log lines:\n  " + strings.Join(s.tail, "\n  ")
	}
	return nil, &ExecutionError{Action: action, JobID: id, Err: errors.New(msg)}
}

// Stop stops the job and waits (up to a minute) until Ray reports it stopped.
// The plugin process gets SIGTERM (its action's context is cancelled), then
// SIGKILL after Ray's grace period.
func (j *Job) Stop(ctx context.Context) error {
	_, err := j.client.StopAndWait(ctx, j.ID, time.Minute)
	return err
}

// RequestStop asks Ray to stop the job and returns without waiting;
// stopped reports whether Ray accepted the request.
func (j *Job) RequestStop(ctx context.Context) (stopped bool, err error) {
	return j.client.Stop(ctx, j.ID)
}

// Delete removes the record of an ended job from the cluster.
func (j *Job) Delete(ctx context.Context) error { return j.client.Delete(ctx, j.ID) }

// binaryName is the plugin binary's name inside a cluster package.
const binaryName = "synapse-plugin"

// jobEntrypoint is the shell command of a job running action entry: the
// binary's mode may be lost on extraction, hence the chmod. inputs (a hash
// of the package and env, params included) makes the entrypoint differ
// when they do, so reusing a job ID with other inputs is refused as a
// duplicate instead of silently following the old job.
func jobEntrypoint(entry, inputs string) string {
	return "chmod +x ./" + binaryName + " && exec ./" + binaryName + " job " + shellQuote(entry) + " inputs=" + inputs
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

// submitJob builds, packages and submits action of the plugin at path.
func submitJob(ctx context.Context, path, action string, params any, rc runConfig, explicitEnv *Env) (*Job, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	entry := action
	if len(cfg.Actions) > 0 {
		ca, ok := cfg.Action(action)
		if !ok {
			return nil, notFound(action, cfg.ActionNames())
		}
		entry = ca.Entrypoint
	}
	raw, err := paramsJSON(params)
	if err != nil {
		return nil, &ValidationError{Action: action, Fields: []FieldError{{Message: "params cannot be encoded as JSON: " + err.Error()}}}
	}
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	// Bad params fail here, before anything is built for or sent to the cluster.
	if _, err := validateParams(ctx, cfg.Dir, "", entry, raw); err != nil {
		return nil, err
	}
	client, err := ray.NewClient(rc.rayAddress)
	if err != nil {
		return nil, err
	}
	var t JobTimings

	start := time.Now()
	arch := rc.arch
	if arch == "" {
		arch = "amd64"
	}
	built, err := build.Build(ctx, build.Options{Dir: cfg.Dir, GOOS: "linux", GOARCH: arch, Static: true})
	if err != nil {
		return nil, err
	}
	t.Build, t.Cached = time.Since(start), built.Cached

	envVars := map[string]string{envActionEntrypoint: entry}
	extra := map[string][]byte{}
	if len(raw) < maxEnvParams {
		envVars[envActionParams] = string(raw)
	} else {
		extra[".synapse_params.json"] = raw
		envVars[envActionParamsFile] = ".synapse_params.json"
	}
	jobID := rc.exec.jobID
	if jobID == "" {
		jobID = newJobID(cfg.Code, action)
	}
	envVars[envJobID] = jobID
	for k, v := range MergeEnv(NewEnv(cfg.Env), explicitEnv).values {
		if v != nil {
			envVars[k] = scalarString(v)
		}
	}
	for _, k := range []string{"SYNAPSE_HOST", "SYNAPSE_ACCESS_TOKEN"} {
		if v := os.Getenv(k); v != "" {
			if _, set := envVars[k]; !set {
				envVars[k] = v
			}
		}
	}

	start = time.Now()
	pkg, err := pack.Build(pack.Options{Dir: cfg.Dir, Binary: built.Binary, BinaryName: binaryName, Extra: extra})
	if err != nil {
		return nil, err
	}
	t.Package = time.Since(start)

	start = time.Now()
	uploaded, err := client.EnsurePackage(ctx, pkg.Name, pkg.Data)
	if err != nil {
		return nil, err
	}
	t.Upload, t.Reused = time.Since(start), !uploaded

	runtimeEnv := maps.Clone(cfg.RuntimeEnv)
	if runtimeEnv == nil {
		runtimeEnv = map[string]any{}
	}
	if existing, ok := runtimeEnv["env_vars"].(map[string]any); ok {
		for k, v := range existing {
			if _, set := envVars[k]; !set {
				envVars[k] = scalarString(v)
			}
		}
	}
	runtimeEnv["working_dir"] = pkg.URI
	runtimeEnv["env_vars"] = envVars

	start = time.Now()
	res, err := client.Submit(ctx, ray.SubmitRequest{
		Entrypoint:        jobEntrypoint(entry, inputsHash(pkg.Name, envVars)),
		SubmissionID:      jobID,
		RuntimeEnv:        runtimeEnv,
		Metadata:          map[string]string{"sdk": "synapse-go", "plugin": cfg.Code, "action": action},
		EntrypointNumCPUs: rc.resources.CPUs,
		EntrypointNumGPUs: rc.resources.GPUs,
		EntrypointMemory:  rc.resources.Memory,
	})
	if err != nil {
		return nil, err
	}
	t.Submit = time.Since(start)
	return &Job{ID: res.ID, Action: action, DashboardURL: client.JobURL(res.ID), Existing: res.Existing, Timings: t, client: client}, nil
}

// newJobID returns a fresh submission ID: synapse-<code>-<action>-<8 hex>.
func newJobID(code, action string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("synapse-%s-%s-%s", code, strings.ReplaceAll(action, "_", "-"), hex.EncodeToString(b))
}
