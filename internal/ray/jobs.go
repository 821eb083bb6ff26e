package ray

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/retry"
)

// Version is the answer of GET /api/version.
type Version struct {
	// Version is the Jobs API version ("4" on released Ray 2.x).
	Version string `json:"version"`
	// RayVersion is the Ray release, such as "2.60.0".
	RayVersion string `json:"ray_version"`
	// RayCommit is the git commit Ray was built from.
	RayCommit string `json:"ray_commit"`
	// SessionName names the cluster session, such as "session_2026-…".
	SessionName string `json:"session_name"`
}

// Version probes the dashboard. A 404 means the address serves something
// without the Ray Jobs API and gives an error saying so.
func (c *Client) Version(ctx context.Context) (*Version, error) {
	var v Version
	if err := c.do(ctx, http.MethodGet, versionPath, nil, &v); err != nil {
		var he *HTTPError
		if errors.As(err, &he) && notFoundish(he.Status) {
			return nil, &NotRayError{Address: c.base, Status: he.Status, Hint: c.hint}
		}
		return nil, err
	}
	return &v, nil
}

// SubmitRequest is the body of POST /api/jobs/. Unset optional fields are
// omitted from the JSON.
type SubmitRequest struct {
	// Entrypoint is the shell command to run; it is the only required field.
	Entrypoint string `json:"entrypoint"`
	// SubmissionID is the job id to use; the server generates one when it is
	// empty. A client-chosen id makes retries idempotent (see Submit).
	SubmissionID string `json:"submission_id,omitempty"`
	// RuntimeEnv is the job's runtime_env; working_dir must be a URI.
	RuntimeEnv map[string]any `json:"runtime_env,omitempty"`
	// Metadata is free-form job metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// EntrypointNumCPUs is the number of CPUs reserved for the entrypoint.
	EntrypointNumCPUs float64 `json:"entrypoint_num_cpus,omitempty"`
	// EntrypointNumGPUs is the number of GPUs reserved for the entrypoint.
	EntrypointNumGPUs float64 `json:"entrypoint_num_gpus,omitempty"`
	// EntrypointMemory is the memory reserved for the entrypoint, in bytes.
	EntrypointMemory int64 `json:"entrypoint_memory,omitempty"`
	// EntrypointResources are custom resources reserved for the entrypoint.
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
}

// SubmitResult is the outcome of Submit.
type SubmitResult struct {
	// ID is the submission id of the job.
	ID string
	// Existing reports that the id had already been submitted with the same
	// entrypoint (an idempotent retry), so no new job was created.
	Existing bool
}

const (
	noAgentText   = "No available agent to submit job"
	duplicateText = "Please use a different submission_id"
)

// Submit posts the job. It retries "No available agent to submit job" 500s
// for up to 30s (R11): agents register with the head a little after it starts.
// A duplicate submission id (500 whose body contains "Please use a different
// submission_id") is resolved by fetching the job: same entrypoint ->
// SubmitResult{Existing: true}; different -> *DuplicateJobError.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (*SubmitResult, error) {
	if req.SubmissionID != "" {
		if err := CheckSubmissionID(req.SubmissionID); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(req.Entrypoint) == "" {
		return nil, errors.New("ray: submit: the entrypoint is empty")
	}
	deadline := time.Now().Add(c.agentRetryFor)
	for {
		var resp struct {
			JobID        *string `json:"job_id"`
			SubmissionID *string `json:"submission_id"`
		}
		err := c.do(ctx, http.MethodPost, "/api/jobs/", req, &resp)
		if err == nil {
			id := req.SubmissionID
			switch {
			case resp.SubmissionID != nil && *resp.SubmissionID != "":
				id = *resp.SubmissionID
			case resp.JobID != nil && *resp.JobID != "":
				id = *resp.JobID
			}
			return &SubmitResult{ID: id}, nil
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusInternalServerError {
			return nil, err
		}
		switch {
		case strings.Contains(he.Body, noAgentText) && time.Now().Before(deadline):
			if err := retry.Sleep(ctx, c.agentRetryDelay); err != nil {
				return nil, fmt.Errorf("ray: submit: %w (last answer: %v)", err, he)
			}
			continue
		case strings.Contains(he.Body, duplicateText) && req.SubmissionID != "":
			job, jerr := c.Job(ctx, req.SubmissionID)
			if jerr != nil {
				return nil, fmt.Errorf("ray: submission id %q already exists, and looking it up failed: %w", req.SubmissionID, jerr)
			}
			if job.Entrypoint == req.Entrypoint {
				return &SubmitResult{ID: req.SubmissionID, Existing: true}, nil
			}
			return nil, &DuplicateJobError{ID: req.SubmissionID, ExistingEntrypoint: job.Entrypoint}
		}
		return nil, err
	}
}

// Job is the dashboard's JobDetails. Unknown fields are ignored and JSON
// nulls decode to zero values.
type Job struct {
	// Type is "SUBMISSION" for jobs submitted through the Jobs API and
	// "DRIVER" for plain ray.init drivers.
	Type string `json:"type"`
	// JobID is the Ray driver's job id; "" until a driver has connected.
	JobID string `json:"job_id"`
	// SubmissionID is the id the job was submitted with.
	SubmissionID string `json:"submission_id"`
	// Status is the job's status.
	Status synapse.JobStatus `json:"status"`
	// Entrypoint is the job's shell command.
	Entrypoint string `json:"entrypoint"`
	// Message explains the status, for example why a job failed.
	Message string `json:"message"`
	// ErrorType classifies failures, such as "RUNTIME_ENV_SETUP_FAILURE".
	ErrorType string `json:"error_type"`
	// StartTime is the submission time, in Unix milliseconds.
	StartTime int64 `json:"start_time"`
	// EndTime is the time the job became terminal, in Unix milliseconds; 0
	// before that.
	EndTime int64 `json:"end_time"`
	// Metadata is the metadata given at submission.
	Metadata map[string]string `json:"metadata"`
	// RuntimeEnv is the job's runtime_env as the server holds it.
	RuntimeEnv map[string]any `json:"runtime_env"`
	// DriverExitCode is the entrypoint's exit code, once known.
	DriverExitCode *int `json:"driver_exit_code"`
	// DriverAgentHTTPAddress is the dashboard agent of the driver's node.
	DriverAgentHTTPAddress string `json:"driver_agent_http_address"`
	// DriverNodeID is the id of the driver's node.
	DriverNodeID string `json:"driver_node_id"`
}

// typeSubmission is Job.Type of jobs submitted through the Jobs API.
const typeSubmission = "SUBMISSION"

// Job returns the job with the given submission id (or driver job id). An
// unknown id gives an *HTTPError with Status 404 that matches
// errors.Is(err, ErrJobNotFound).
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	if id == "" {
		return nil, errors.New("ray: empty job id")
	}
	var j Job
	if err := c.do(ctx, http.MethodGet, jobPath(id), nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Jobs lists the submission jobs (type SUBMISSION; plain drivers are left
// out), newest first.
func (c *Client) Jobs(ctx context.Context) ([]Job, error) {
	var all []Job
	if err := c.do(ctx, http.MethodGet, "/api/jobs/", nil, &all); err != nil {
		return nil, err
	}
	jobs := make([]Job, 0, len(all))
	for _, j := range all {
		if j.Type == typeSubmission {
			jobs = append(jobs, j)
		}
	}
	sort.SliceStable(jobs, func(a, b int) bool {
		if jobs[a].StartTime != jobs[b].StartTime {
			return jobs[a].StartTime > jobs[b].StartTime
		}
		return jobs[a].SubmissionID > jobs[b].SubmissionID
	})
	return jobs, nil
}

// Stop asks the dashboard to stop the job. Stopping is asynchronous: the
// entrypoint's process group gets SIGTERM, then SIGKILL after a grace
// period, and the job becomes STOPPED later (see StopAndWait). stopped is
// false when there was nothing running to stop, for example because the job
// is already terminal.
func (c *Client) Stop(ctx context.Context, id string) (stopped bool, err error) {
	if id == "" {
		return false, errors.New("ray: empty job id")
	}
	var resp struct {
		Stopped bool `json:"stopped"`
	}
	if err := c.do(ctx, http.MethodPost, jobPath(id)+"/stop", nil, &resp); err != nil {
		return false, err
	}
	return resp.Stopped, nil
}

// StopAndWait stops the job and polls until it is terminal (R7), failing
// after timeout with an error that says the job is still <status>. A job that
// is already terminal is returned as is.
func (c *Client) StopAndWait(ctx context.Context, id string, timeout time.Duration) (*Job, error) {
	if _, err := c.Stop(ctx, id); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	job, err := c.poll(wctx, id)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		status := synapse.JobStatus("in an unknown state")
		if job != nil {
			status = job.Status
		}
		return job, fmt.Errorf("ray: job %q is still %s %v after stop was requested", id, status, timeout)
	}
	return job, err
}

// Delete removes a terminal job's record (not its log files). Deleting a job
// that is not terminal fails with a 500 from the dashboard.
func (c *Client) Delete(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("ray: empty job id")
	}
	var resp struct {
		Deleted bool `json:"deleted"`
	}
	if err := c.do(ctx, http.MethodDelete, jobPath(id), nil, &resp); err != nil {
		return err
	}
	if !resp.Deleted {
		return fmt.Errorf("ray: DELETE %s: the dashboard answered deleted=false", jobPath(id))
	}
	return nil
}

// Logs returns the job's whole log as the dashboard has it: "" before the
// driver started, and only the last 16 MiB of a larger log. The log lives on
// the driver's node, so this fails once that node is gone; use Tail to keep
// a copy while the job runs.
func (c *Client) Logs(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errors.New("ray: empty job id")
	}
	var resp struct {
		Logs string `json:"logs"`
	}
	if err := c.do(ctx, http.MethodGet, jobPath(id)+"/logs", nil, &resp); err != nil {
		return "", err
	}
	return resp.Logs, nil
}

// Wait polls the job (interval 500ms growing to 2s) until it is terminal and
// returns it. Up to 5 consecutive transient failures (connection errors and
// 5xx answers) are tolerated.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	return c.poll(ctx, id)
}

// poll gets the job until it is terminal, riding out a dashboard that does
// not answer for up to the client's outage window. When ctx ends it returns
// the last job seen together with the context's error.
func (c *Client) poll(ctx context.Context, id string) (*Job, error) {
	interval := retry.New(c.pollMin, c.pollMax, 1.5)
	var (
		last *Job
		down time.Time // when the current streak of failures began
	)
	for {
		job, err := c.Job(ctx, id)
		switch {
		case err == nil:
			down = time.Time{}
			last = job
			if job.Status.Terminal() {
				return job, nil
			}
		case ctx.Err() != nil:
			return last, ctx.Err()
		case !transient(err):
			return last, err
		default:
			if down.IsZero() {
				down = time.Now()
			}
			if time.Since(down) > c.outageWindow {
				return last, err
			}
		}
		if err := interval.Wait(ctx); err != nil {
			return last, err
		}
	}
}

// transient reports whether err may go away on retry: anything but a 4xx
// answer.
func transient(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500
	}
	return true
}
