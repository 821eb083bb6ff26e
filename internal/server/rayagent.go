package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// RayAgent runs jobs as Ray jobs on one cluster, through the Ray Jobs REST
// API, each with the job's UUID as its submission ID. The release zip is
// the job's working_dir package (gcs://_ray_pkg_<hash>.zip, uploaded once
// per content); the entrypoint runs the plugin binary's `job` command (a
// Python release: `python -m synapse_sdk.plugins.entrypoint`, the Python
// SDK's worker, with synapse-sdk and the release's requirements.txt in
// runtime_env.pip, which needs a cluster on Python >= 3.12) with
// the job's environment in runtime_env.env_vars (the per-job token is
// visible in Ray's job record until it is revoked at the job's end). The
// agent tails the Ray job's log into the console log and reconciles Ray's
// final state with the job; a server that restarts re-attaches to its
// jobs by submission ID (Attach).
type RayAgent struct {
	// Name is the agent's name (--agent NAME=ray:ADDRESS), named in errors.
	Name  string
	Store *store.Store
	// Releases holds the release zips.
	Releases *Releases
	// Client talks to the cluster's dashboard.
	Client *ray.Client
	// Grace is how long Stop waits for Ray to report a stopped job
	// STOPPED (default 30s); the job is STOPPED in the store at once.
	Grace time.Duration
	// Poll is how often a job's Ray status is read (default 1s).
	Poll time.Duration
	// Done, when set, is called after a job's outcome is recorded.
	Done func(jobID string)

	mu      sync.Mutex
	running map[string]*rayRun
	closing chan struct{}
	follows sync.WaitGroup

	probeMu sync.Mutex // one probe at a time; the others wait for its answer
	probed  time.Time  // when the last probe answered
	probeOK error      // its answer
}

// probeTTL is how long a probe's answer is reused, and probeTimeout how
// long one may take (GET /agents/ waits at most that).
const (
	probeTTL     = 5 * time.Second
	probeTimeout = 2 * time.Second
)

// Probe reports whether the cluster's dashboard answers (GET
// /api/version): nil when it does, else why not. The answer is reused for
// probeTTL; a probe takes at most probeTimeout (or ctx's deadline).
func (a *RayAgent) Probe(ctx context.Context) error {
	a.probeMu.Lock()
	defer a.probeMu.Unlock()
	if !a.probed.IsZero() && time.Since(a.probed) < probeTTL {
		return a.probeOK
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := a.Client.Version(pctx)
	if err != nil && ctx.Err() != nil {
		return err // the caller gave up: not the cluster's answer, not kept
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("the Ray dashboard at %s did not answer within %s", a.Client.Address(), probeTimeout)
	}
	a.probed, a.probeOK = time.Now(), err
	return err
}

type rayRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	stopped bool
}

func (a *RayAgent) track(jobID string) (*rayRun, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running == nil {
		a.running = map[string]*rayRun{}
		a.closing = make(chan struct{})
	}
	select {
	case <-a.closing:
		return nil, false
	default:
	}
	run := &rayRun{}
	run.ctx, run.cancel = context.WithCancel(context.Background())
	a.running[jobID] = run
	a.follows.Add(1)
	return run, true
}

// rayEnvSkip are variables of jobEnv that describe this machine, not the
// cluster's.
var rayEnvSkip = map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true}

// Start submits job (of release rel) to the cluster with env (KEY=VALUE)
// as its runtime_env.env_vars, and returns once Ray has taken it; the job
// becomes RUNNING when Ray starts it. The release's config.yaml
// runtime_env is kept, except its working_dir and env_vars. Params longer
// than worker.MaxEnvParams travel in the job's package instead
// (SYNAPSE_ACTION_PARAMS_FILE), which is then the release zip plus that
// file.
func (a *RayAgent) Start(ctx context.Context, job store.Job, rel store.Release, env []string) error {
	data, err := os.ReadFile(filepath.Join(a.Releases.Dir, rel.SHA256+".zip"))
	if err != nil {
		return fmt.Errorf("start job %s: read release %d: %w", job.ID, rel.ID, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != rel.SHA256 {
		return fmt.Errorf("start job %s: the zip of release %d does not match its SHA-256 (damaged on disk?): publish the release again", job.ID, rel.ID)
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !rayEnvSkip[k] {
			vars[k] = v
		}
	}
	if p := vars[worker.EnvActionParams]; len(p) >= worker.MaxEnvParams {
		if data, err = withFile(data, ".synapse_params.json", []byte(p)); err != nil {
			return fmt.Errorf("start job %s: %w", job.ID, err)
		}
		delete(vars, worker.EnvActionParams)
		vars[worker.EnvActionParamsFile] = ".synapse_params.json"
	}
	entrypoint := "chmod +x ./" + worker.BinaryName + " && exec ./" + worker.BinaryName + " job"
	var pip []string
	if !hasEntry(data, worker.BinaryName) { // a Python release: the Python SDK's worker
		entry, requiresSDK, err := pythonAction(rel.Config, job.Action)
		if err != nil {
			return fmt.Errorf("start job %s: %w", job.ID, err)
		}
		vars[worker.EnvActionEntrypoint] = entry
		vars["PYTHONUNBUFFERED"] = "1"
		reqs, err := zipRequirements(data)
		if err != nil {
			return a.startError(job.ID, err)
		}
		pip = append([]string{pyenv.SDKRequirement(requiresSDK)}, reqs...)
		entrypoint = "python -m " + pyplugin.WorkerModule
	}
	sum := sha256.Sum256(data)
	name := "_ray_pkg_" + hex.EncodeToString(sum[:8]) + ".zip"
	if _, err := a.Client.EnsurePackage(ctx, name, data); err != nil {
		return a.startError(job.ID, err)
	}
	var cfg struct {
		Code       string         `json:"code"`
		RuntimeEnv map[string]any `json:"runtime_env"`
	}
	_ = json.Unmarshal(rel.Config, &cfg)
	runtimeEnv := maps.Clone(cfg.RuntimeEnv)
	if runtimeEnv == nil {
		runtimeEnv = map[string]any{}
	}
	runtimeEnv["working_dir"] = "gcs://" + name
	runtimeEnv["env_vars"] = vars
	if pip != nil {
		runtimeEnv["pip"] = pip
	}
	run, ok := a.track(job.ID)
	if !ok {
		return fmt.Errorf("start job %s: the server is shutting down", job.ID)
	}
	_, err = a.Client.Submit(ctx, ray.SubmitRequest{
		Entrypoint:   entrypoint,
		SubmissionID: job.ID,
		RuntimeEnv:   runtimeEnv,
		Metadata:     map[string]string{"sdk": "synapse-go", "source": "synapse-server", "plugin": cfg.Code, "release": rel.Version, "action": job.Action},
	})
	if err != nil {
		a.untrack(job.ID, run)
		return a.startError(job.ID, err)
	}
	go a.follow(job.ID, run, 0)
	return nil
}

// startError is the error of a start that Ray refused or that could not
// reach Ray: a dashboard that does not answer (no connection) is said in
// a sentence that names the address and the --agent flag, without Go's
// error text; *unreachableError's chain is kept.
func (a *RayAgent) startError(jobID string, err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return fmt.Errorf("start job %s: %w", jobID, err)
	}
	reason := "no connection"
	var sys *os.SyscallError
	var dns *net.DNSError
	switch {
	case errors.As(op.Err, &sys):
		reason = sys.Err.Error() // "connection refused"
	case errors.As(op.Err, &dns):
		reason = "cannot resolve " + dns.Name
	}
	name := a.Name
	if name == "" {
		name = "NAME"
	}
	return &rayDownError{fmt.Sprintf("the Ray dashboard at %s did not answer (%s): check --agent %s=ray:ADDRESS and that the Ray head is running", a.Client.Address(), reason, name), err}
}

// rayDownError is the error of a start whose Ray dashboard could not be
// reached: its message, and the client's error as its cause.
type rayDownError struct {
	message string
	err     error
}

func (e *rayDownError) Error() string { return e.message }
func (e *rayDownError) Unwrap() error { return e.err }

func (a *RayAgent) untrack(jobID string, run *rayRun) {
	a.mu.Lock()
	delete(a.running, jobID)
	a.mu.Unlock()
	run.cancel()
	a.follows.Done()
}

// withFile returns the zip data with one more file, name, its other
// entries copied as they are.
func withFile(data []byte, name string, content []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read release zip: %w", err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		if f.Name == name {
			continue
		}
		if err := zw.Copy(f); err != nil {
			return nil, err
		}
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(content); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// zipRequirements returns the requirement lines of the requirements.txt
// at the root of a release zip (none when it has none), without comments
// and blank lines, for runtime_env.pip; a pip option line is a
// *pyplugin.RequirementsError.
func zipRequirements(data []byte) ([]string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil
	}
	f, err := zr.Open(pyplugin.RequirementsFile)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, nil
	}
	return pyplugin.RequirementLines(string(b))
}

// hasEntry reports whether the zip data holds a file called name.

func hasEntry(data []byte, name string) bool {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		if f.Name == name {
			return true
		}
	}
	return false
}

// Attach resumes a job a previous server submitted: the Ray job with the
// job's ID as submission ID is followed again, its log from where the
// console log stops (ConsoleOffset); a Ray job that has ended already has
// the rest of its log read and its outcome recorded before Attach returns.
// A job Ray does not know is ErrNotStarted. A cluster that does not answer
// is not an error here: the job is followed, and fails once the cluster
// has been unreachable for longer than ray.OutageWindow.
func (a *RayAgent) Attach(ctx context.Context, job store.Job) error {
	info, err := a.Client.Job(ctx, job.ID)
	if errors.Is(err, ray.ErrJobNotFound) {
		return ErrNotStarted
	}
	run, ok := a.track(job.ID)
	if !ok {
		return fmt.Errorf("attach job %s: the server is shutting down", job.ID)
	}
	if err == nil && info.Status.Terminal() {
		a.follow(job.ID, run, job.ConsoleOffset) // ended: settled now
		return nil
	}
	go a.follow(job.ID, run, job.ConsoleOffset)
	return nil
}

// follow copies the Ray job's log into the console log from byte offset,
// marks the job RUNNING when Ray starts it, and records the outcome once
// Ray reports it ended and its log is drained.
func (a *RayAgent) follow(jobID string, run *rayRun, offset int64) {
	defer a.follows.Done()
	defer run.cancel()
	ctx := context.Background()
	stream := worker.NewJobStream(nil, nil)
	var skip = offset // bytes of the log already in the console log
	cut := lineCutter{off: offset}
	tailErr := make(chan error, 1)
	go func() {
		tailErr <- a.Client.Tail(run.ctx, jobID, func(chunk string) error {
			b := []byte(chunk)
			if skip > 0 {
				n := min(skip, int64(len(b)))
				b, skip = b[n:], skip-n
			}
			var lines []string
			cut.write(b, func(l string, end int64) {
				stream.Write(l + "\n")
				lines = append(lines, l)
				offset = end
			})
			if len(lines) > 0 {
				if _, err := a.Store.AppendConsoleAt(ctx, jobID, lines, offset); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	poll := a.Poll
	if poll <= 0 {
		poll = time.Second
	}
	var (
		info    *ray.Job
		lastErr error
		down    time.Time
		err     error
	)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-a.closing:
			run.cancel()
			<-tailErr
			return // the server shuts down: the Ray job runs on, re-attached at the next start
		case err = <-tailErr:
			done = true
		case <-tick.C:
			j, jerr := a.Client.Job(run.ctx, jobID)
			switch {
			case jerr == nil:
				down = time.Time{}
				if j.Status == synapse.JobRunning {
					_, _ = a.Store.UpdateJob(ctx, jobID, store.JobUpdate{Status: store.StatusRunning})
				}
			case errors.Is(jerr, ray.ErrJobNotFound):
				run.cancel()
			case down.IsZero():
				down = time.Now()
			case time.Since(down) > ray.OutageWindow:
				lastErr = fmt.Errorf("the Ray cluster did not answer for %s: %w", time.Since(down).Round(time.Second), jerr)
				run.cancel()
			}
		}
	}
	select {
	case <-a.closing:
		return
	default:
	}
	if err == nil {
		cut.rest(func(l string, end int64) { // a last line without a newline
			stream.Write(l + "\n")
			_, _ = a.Store.AppendConsoleAt(ctx, jobID, []string{l}, end)
		})
	}
	stream.Close()
	if lastErr == nil && err != nil && !errors.Is(err, context.Canceled) {
		lastErr = err
	}
	if lastErr == nil {
		// Ray reports the end before the tail closes; read it once more.
		for i := 0; i < 5; i++ {
			if info, err = a.Client.Job(ctx, jobID); err == nil || errors.Is(err, ray.ErrJobNotFound) {
				break
			}
			time.Sleep(time.Second)
		}
		if errors.Is(err, ray.ErrJobNotFound) {
			lastErr = fmt.Errorf("the Ray cluster has no job %s any more (was it restarted, or the job deleted?)", jobID)
		} else if err != nil {
			lastErr = err
		}
	}
	a.mu.Lock()
	delete(a.running, jobID)
	stopped := run.stopped
	a.mu.Unlock()
	a.record(ctx, jobID, stopped, stream, info, lastErr)
	_ = a.Store.RevokeToken(ctx, jobID)
	_ = a.Store.CloseConsole(ctx, jobID)
	if a.Done != nil {
		a.Done(jobID)
	}
}

// record sets the job's outcome from Ray's final state and what the
// plugin printed (store.SettleJob): the outcome the binary reported, if it
// did, wins over both, unless the job was stopped.
func (a *RayAgent) record(ctx context.Context, jobID string, stopped bool, stream *worker.JobStream, info *ray.Job, lost error) {
	fail := func(kind, msg string) store.JobUpdate {
		b, _ := json.Marshal(map[string]any{"error": msg})
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": kind, "message": msg}})
		return store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
	}
	var u store.JobUpdate
	switch {
	case stopped:
		u = store.JobUpdate{Status: store.StatusStopped}
	case lost != nil:
		u = fail("ray", "follow the Ray job: "+lost.Error())
	case info.Status == synapse.JobStopped:
		u = store.JobUpdate{Status: store.StatusStopped}
	case stream.Err != nil:
		u = fail(stream.Err.Kind, stream.Err.Message)
	case info.Status == synapse.JobSucceeded && stream.Result != nil && worker.CheckResult(stream.Result) != nil:
		u = resultFailure(worker.CheckResult(stream.Result))
	case info.Status == synapse.JobSucceeded && stream.Result != nil:
		u = store.JobUpdate{Status: store.StatusSucceeded, Result: stream.Result}
	case info.Status == synapse.JobSucceeded:
		u = fail("process", "the Ray job ended without a result")
	default:
		kind := info.ErrorType
		if kind == "" {
			kind = "ray"
		} else if lines := rayMessageLines(info.Message); len(lines) > 0 {
			// Ray's own failure (such as RUNTIME_ENV_SETUP_FAILURE, pip's
			// output in its message): the driver never ran, so the console
			// log has nothing of it but this.
			_, _ = a.Store.AppendConsole(ctx, jobID, lines)
		}
		u = fail(kind, rayFailure(info.Message, string(info.Status)))
	}
	_, err := a.Store.SettleJob(ctx, jobID, u)
	if ie := (*store.InvalidJSONError)(nil); errors.As(err, &ie) { // the store's last guard: the job ends, FAILED, all the same
		_, err = a.Store.SettleJob(ctx, jobID, resultFailure(ie))
	}
	if err != nil && !errors.Is(err, store.ErrTransition) {
		_, _ = a.Store.AppendConsole(ctx, jobID, []string{"synapse server: record the outcome: " + err.Error()})
	}
}

// rayExitCode finds "with exit code N" in Ray's failure message.
var rayExitCode = regexp.MustCompile(`\s*with exit code (-?\d+)`)

// rayFailure is the short reason of a Ray job that failed without a
// result, parallel to the process agent's: "the Ray job failed: " and the
// first line of Ray's message, its exit code as "(exit status N)":
//
//	Job entrypoint command failed with exit code 3, last available logs (truncated to 20,000 chars):
//	…
//
// is "the Ray job failed: Job entrypoint command failed (exit status 3)".
// The log Ray quotes is in the console log already. With no message, it
// is "the Ray job " and status in lower case.
func rayFailure(message, status string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(message), "\n")
	line, _, _ = strings.Cut(line, ", last available logs")
	line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), ":"))
	if line == "" {
		return "the Ray job " + strings.ToLower(status)
	}
	exit := ""
	if m := rayExitCode.FindStringSubmatch(line); m != nil {
		line = strings.Replace(line, m[0], "", 1)
		exit = " (exit status " + m[1] + ")"
	}
	if e := pipError.FindString(message); e != "" && exit == "" && !strings.Contains(line, e) {
		line = strings.TrimSuffix(line, ".")
		exit += ": " + strings.TrimSpace(e) // what pip said, for a runtime env that could not be set up
	}
	return "the Ray job failed: " + line + exit
}

// pipError is the first of pip's ERROR lines in a Ray message.
var pipError = regexp.MustCompile(`(?m)ERROR: .*$`)

// maxRayMessageLines bounds the lines of Ray's message kept in the console
// log.
const maxRayMessageLines = 200

// rayMessageLines are the lines of Ray's failure message for the console
// log, each prefixed "ray: ", at most maxRayMessageLines (the last ones).
func rayMessageLines(message string) []string {
	message = strings.TrimSpace(message)
	if message == "" {
		return nil
	}
	lines := strings.Split(message, "\n")
	if len(lines) > maxRayMessageLines {
		lines = lines[len(lines)-maxRayMessageLines:]
	}
	for i, l := range lines {
		lines[i] = "ray: " + strings.TrimRight(l, "\r")
	}
	return lines
}

// Stop stops a job through Ray (the plugin process gets SIGTERM, then
// SIGKILL after Ray's grace period). The job is STOPPED in the store at
// once; Stop waits up to Grace for Ray to agree, then leaves a console
// line saying Ray has not stopped it yet. A job not followed here is
// store.ErrNotFound.
func (a *RayAgent) Stop(ctx context.Context, jobID string) error {
	a.mu.Lock()
	run := a.running[jobID]
	if run != nil {
		run.stopped = true
	}
	a.mu.Unlock()
	if run == nil {
		return store.ErrNotFound
	}
	_, _ = a.Store.UpdateJob(ctx, jobID, store.JobUpdate{Status: store.StatusStopped})
	grace := a.Grace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	if _, err := a.Client.StopAndWait(ctx, jobID, grace); err != nil {
		_, _ = a.Store.AppendConsole(context.WithoutCancel(ctx), jobID, []string{"synapse server: Ray has not stopped the job yet: " + err.Error()})
	}
	return nil
}

// Close stops following the agent's jobs, which run on in the cluster to
// be re-attached by the next server, and returns once nothing more is
// written to the store for them.
func (a *RayAgent) Close() {
	a.mu.Lock()
	if a.running == nil {
		a.running = map[string]*rayRun{}
		a.closing = make(chan struct{})
	}
	select {
	case <-a.closing:
	default:
		close(a.closing)
	}
	for _, run := range a.running {
		run.cancel()
	}
	a.mu.Unlock()
	a.follows.Wait()
}
