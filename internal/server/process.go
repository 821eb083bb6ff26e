package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// ProcessAgent runs jobs as processes on this machine: a release is
// unpacked once per content hash, and each job runs the release's plugin
// binary's `job` command in a process group of its own, in a working
// directory of its own (RunDir/JOB.d, see jobWorkDir; the release's
// read-only directory in SYNAPSE_PLUGIN_DIR); a Python release (no binary)
// runs the Python SDK's worker, `python -m synapse_sdk.plugins.entrypoint`,
// in a virtual environment from Venvs prepared for it first (pip's output
// goes to the job's console log). The process writes its output to an
// append-only file, RunDir/JOB.log, which the
// agent reads into the job's console log; its process ID is kept in
// RunDir/JOB.pid, so a server that restarts re-attaches to a process that
// still runs (Attach). Re-attaching needs Linux's /proc.
type ProcessAgent struct {
	Store *store.Store
	// Releases unpacks the releases' files.
	Releases *Releases
	// RunDir holds the running jobs' files: JOB.log (the output), JOB.pid,
	// JOB.params.json (params too long for the environment) and JOB.d (the
	// job's working directory). Created 0700; a job's files are removed
	// when it ends.
	RunDir string
	// Grace is how long a stopped job has between SIGTERM and SIGKILL
	// (default 10s).
	Grace time.Duration
	// Poll is how often a job's output file is read for new lines while
	// the process writes nothing (default 25ms).
	Poll time.Duration
	// Done, when set, is called after a job's outcome is recorded.
	Done func(jobID string)
	// Venvs holds the Python releases' virtual environments, one per
	// (Python version, synapse-sdk requirement, requirements.txt), shared
	// by the releases that ask for the same. Nil refuses Python releases.
	Venvs *pyenv.Cache
	// Python is the interpreter Python environments are built from; ""
	// means pyenv.FindPython ($SYNAPSE_PYTHON, python3.12, ...).
	Python string

	mu      sync.Mutex
	running map[string]*processRun
	closing chan struct{} // closed by Close
	follows sync.WaitGroup
}

type processRun struct {
	pid     int           // 0 while a Python job's environment is prepared; then under ProcessAgent.mu
	done    chan struct{} // closed once the process has ended
	exit    error         // how it ended (nil: status 0), once done; only when waited
	waited  bool          // the process is this server's child: its exit status is known
	stopped bool
	// A Python job: cancel stops its environment's preparation; failure
	// is why the preparation failed ("" when it did not).
	cancel  context.CancelFunc
	failure string
}

// file is the path of one of the job's files in RunDir.
func (p *ProcessAgent) file(jobID, ext string) string {
	return filepath.Join(p.RunDir, jobID+ext)
}

func (p *ProcessAgent) track(jobID string, run *processRun) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running == nil {
		p.running = map[string]*processRun{}
		p.closing = make(chan struct{})
	}
	select {
	case <-p.closing:
		return false
	default:
	}
	p.running[jobID] = run
	p.follows.Add(1)
	return true
}

// Start starts job (of release rel) with env (KEY=VALUE, the whole
// environment of the process) and returns once the process runs; the job
// is RUNNING then. Params longer than worker.MaxEnvParams go to the
// process in a file (SYNAPSE_ACTION_PARAMS_FILE). When the process ends,
// the job ends (store.SettleJob): STOPPED when it was stopped; else with
// the outcome the binary reported (its final PATCH), if it did; else
// SUCCEEDED with the result the binary printed, or FAILED with its error
// or how the process ended. The job's tokens are revoked then.
func (p *ProcessAgent) Start(ctx context.Context, job store.Job, rel store.Release, env []string) error {
	dir, err := p.Releases.Unpacked(rel)
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, worker.BinaryName)
	if _, err := os.Stat(bin); err != nil {
		return p.startPython(ctx, job, rel, dir, env)
	}
	if err := os.MkdirAll(p.RunDir, 0o700); err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	if env, err = p.paramsFile(job.ID, env); err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	work, err := jobWorkDir(p.file(job.ID, ".d"), dir)
	if err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	out, err := os.OpenFile(p.file(job.ID, ".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	cmd := exec.Command(bin, "job")
	cmd.Dir = work
	cmd.Env = append(env, EnvPluginDir+"="+dir)
	cmd.Stdout, cmd.Stderr = out, out // one file, in order; the process keeps it open
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	out.Close()
	if err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	pid := cmd.Process.Pid
	run := &processRun{pid: pid, done: make(chan struct{}), waited: true}
	go func() {
		run.exit = cmd.Wait()
		close(run.done)
	}()
	if err := os.WriteFile(p.file(job.ID, ".pid"), []byte(strconv.Itoa(pid)), 0o600); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	if !p.track(job.ID, run) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return fmt.Errorf("start job %s: the server is shutting down", job.ID)
	}
	if _, err := p.Store.UpdateJob(context.WithoutCancel(ctx), job.ID, store.JobUpdate{Status: store.StatusRunning}); err != nil && !errors.Is(err, store.ErrTransition) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	go p.follow(job.ID, run, 0)
	return nil
}

// EnvPluginDir is the variable that gives a process job the directory of
// its release's unpacked files (read-only; see Releases).
const EnvPluginDir = "SYNAPSE_PLUGIN_DIR"

// jobWorkDir makes a process job's own working directory, work (0700):
// it holds a symbolic link to each top-level entry of the release's
// directory rel, so the job reads its release's files by relative paths
// (as the Python SDK's jobs do, run in the release's directory), while
// what it writes stays its own and the release's files, read-only, stay
// as they are for every later job.
func jobWorkDir(work, rel string) (string, error) {
	if err := os.Mkdir(work, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	entries, err := os.ReadDir(rel)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(rel, e.Name()), filepath.Join(work, e.Name())); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return work, nil
}

// removeJobFiles removes a process job's files in runDir: its output,
// PID, params file and working directory (what the job wrote there
// included; the links to its release's files, not the files).
func removeJobFiles(runDir, jobID string) {
	for _, ext := range []string{".log", ".pid", ".params.json"} {
		_ = os.Remove(filepath.Join(runDir, jobID+ext))
	}
	_ = os.RemoveAll(filepath.Join(runDir, jobID+".d"))
}

// paramsFile moves params longer than worker.MaxEnvParams from env into
// RunDir/JOB.params.json.
func (p *ProcessAgent) paramsFile(jobID string, env []string) ([]string, error) {
	prefix := worker.EnvActionParams + "="
	for i, kv := range env {
		if !strings.HasPrefix(kv, prefix) || len(kv)-len(prefix) < worker.MaxEnvParams {
			continue
		}
		path := p.file(jobID, ".params.json")
		if err := os.WriteFile(path, []byte(kv[len(prefix):]), 0o600); err != nil {
			return nil, err
		}
		out := slices.Clone(env)
		out[i] = worker.EnvActionParamsFile + "=" + path
		return out, nil
	}
	return env, nil
}

// Attach resumes a job a previous server started on this agent: when its
// process still runs (the PID in RunDir/JOB.pid is a process whose
// environment names the job), the agent follows it as if it had started
// it, from where the console log stops (the job's ConsoleOffset), and
// records its outcome; when the process has gone, the rest of its output
// is read and the job ends with the result it printed, else FAILED, before
// Attach returns (the job is terminal then). A job this agent has no trace
// of is ErrNotStarted.
func (p *ProcessAgent) Attach(ctx context.Context, job store.Job) error {
	if _, err := os.Stat(p.file(job.ID, ".log")); errors.Is(err, fs.ErrNotExist) {
		return ErrNotStarted
	} else if err != nil {
		return fmt.Errorf("attach job %s: %w", job.ID, err)
	}
	run := &processRun{done: make(chan struct{})}
	if b, err := os.ReadFile(p.file(job.ID, ".pid")); err == nil {
		run.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	alive := run.pid > 0 && ownProcess(run.pid, job.ID)
	if alive {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for range t.C {
				if !ownProcess(run.pid, job.ID) {
					close(run.done)
					return
				}
			}
		}()
		if job.Status == store.StatusPending {
			_, _ = p.Store.UpdateJob(ctx, job.ID, store.JobUpdate{Status: store.StatusRunning})
		}
	} else {
		close(run.done)
	}
	if !p.track(job.ID, run) {
		return fmt.Errorf("attach job %s: the server is shutting down", job.ID)
	}
	if !alive {
		p.follow(job.ID, run, job.ConsoleOffset) // ended: settled now
		return nil
	}
	go p.follow(job.ID, run, job.ConsoleOffset)
	return nil
}

// ownProcess reports whether pid is a live process whose environment
// holds SYNAPSE_JOB_ID=jobID (so a reused PID is never taken for the job).
func ownProcess(pid int, jobID string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := worker.EnvJobID + "=" + jobID
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if kv == want {
			return true
		}
	}
	return false
}

// maxLine is the longest console line; a longer run of output without a
// newline is cut into lines of this size.
const maxLine = 8 << 20

// lineCutter cuts an agent's output into console lines (without "\n" or
// "\r\n"); off is how far into the output (bytes) the lines cut so far
// reach, which is what a re-attaching agent resumes from.
type lineCutter struct {
	pending []byte
	off     int64
}

// write adds b and calls line for each complete line in order, with the
// offset just past it.
func (c *lineCutter) write(b []byte, line func(l string, end int64)) {
	c.pending = append(c.pending, b...)
	for {
		i := bytes.IndexByte(c.pending, '\n')
		if i < 0 && len(c.pending) < maxLine {
			break
		}
		n := i + 1
		if i < 0 {
			n, i = maxLine, maxLine
		}
		c.off += int64(n)
		line(strings.TrimSuffix(string(c.pending[:i]), "\r"), c.off)
		c.pending = c.pending[n:]
	}
	c.pending = slices.Clip(c.pending)
}

// rest calls line for the output after the last newline, if any: the
// last line of output that has ended.
func (c *lineCutter) rest(line func(l string, end int64)) {
	if len(c.pending) > 0 {
		c.off += int64(len(c.pending))
		line(string(c.pending), c.off)
		c.pending = nil
	}
}

// follow reads the job's output file from offset into the console log
// until the process has ended and its output is drained, then records the
// outcome. Close ends it early, leaving the job as it is.
func (p *ProcessAgent) follow(jobID string, run *processRun, offset int64) {
	defer p.follows.Done()
	ctx := context.Background()
	poll := p.Poll
	if poll <= 0 {
		poll = 25 * time.Millisecond
	}
	stream := worker.NewJobStream(nil, nil)
	var readErr error
	f, err := os.Open(p.file(jobID, ".log"))
	if err == nil {
		defer f.Close()
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		readErr = err
	}
	var lines []string
	cut := lineCutter{off: offset}
	flush := func() {
		if len(lines) > 0 {
			if _, err := p.Store.AppendConsoleAt(ctx, jobID, lines, offset); err != nil && readErr == nil {
				readErr = err
			}
			lines = lines[:0]
		}
	}
	line := func(l string, end int64) {
		stream.Write(l + "\n")
		lines = append(lines, l)
		if offset = end; len(lines) >= 500 {
			flush()
		}
	}
	buf := make([]byte, 256<<10)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for ended := false; readErr == nil; {
		n, err := f.Read(buf)
		if n > 0 {
			cut.write(buf[:n], line)
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			readErr = err
			break
		}
		flush()
		if ended {
			break
		}
		select {
		case <-run.done:
			ended = true // read once more: what it wrote last
		case <-tick.C:
		case <-p.closing:
			return // the server shuts down: the job keeps running, re-attached at the next start
		}
	}
	if readErr == nil {
		cut.rest(line) // a last line without a newline
		flush()
	}
	stream.Close()
	p.mu.Lock()
	delete(p.running, jobID)
	stopped := run.stopped
	p.mu.Unlock()

	fail := func(msg string) store.JobUpdate {
		b, _ := json.Marshal(map[string]any{"error": msg})
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "process", "message": msg}})
		return store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
	}
	var u store.JobUpdate
	switch {
	case stopped:
		u = store.JobUpdate{Status: store.StatusStopped}
	case run.failure != "":
		b, _ := json.Marshal(map[string]any{"error": run.failure})
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "environment", "message": run.failure}})
		u = store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
	case readErr != nil:
		u = fail("read the plugin process's output: " + readErr.Error())
	case stream.Err != nil:
		b, _ := json.Marshal(map[string]any{"error": stream.Err.Message})
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": stream.Err.Kind, "message": stream.Err.Message}})
		u = store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
	case run.waited && run.exit != nil:
		u = fail("the plugin process " + describeExit(run.exit) + " without a result")
	case stream.Result == nil && run.waited:
		u = fail("the plugin process ended without a result")
	case stream.Result == nil:
		u = fail("the plugin process ended without a result while the server was down (its exit status is unknown)")
	case worker.CheckResult(stream.Result) != nil:
		u = resultFailure(worker.CheckResult(stream.Result))
	default:
		u = store.JobUpdate{Status: store.StatusSucceeded, Result: stream.Result}
	}
	_, err = p.Store.SettleJob(ctx, jobID, u)
	if ie := (*store.InvalidJSONError)(nil); errors.As(err, &ie) { // the store's last guard: the job ends, FAILED, all the same
		_, err = p.Store.SettleJob(ctx, jobID, resultFailure(ie))
	}
	if err != nil && !errors.Is(err, store.ErrTransition) {
		_, _ = p.Store.AppendConsole(ctx, jobID, []string{"synapse server: record the outcome: " + err.Error()})
	}
	_ = p.Store.RevokeToken(ctx, jobID)
	_ = p.Store.CloseConsole(ctx, jobID)
	removeJobFiles(p.RunDir, jobID)
	if p.Done != nil {
		p.Done(jobID)
	}
}

// resultFailure is the outcome of a job whose printed result cannot be
// recorded (worker.CheckResult): FAILED, with meta.error of error_type
// "result".
func resultFailure(err error) store.JobUpdate {
	msg := err.Error()
	b, _ := json.Marshal(map[string]any{"error": msg})
	meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "result", "message": msg}})
	return store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
}

func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return "failed: " + err.Error()
}

// Stop stops a running job: SIGTERM to its process group, SIGKILL after
// the grace period. It returns when the process has ended; the job is
// STOPPED then. A job that is not running here is store.ErrNotFound.
func (p *ProcessAgent) Stop(ctx context.Context, jobID string) error {
	p.mu.Lock()
	run := p.running[jobID]
	if run != nil {
		run.stopped = true
	}
	p.mu.Unlock()
	if run == nil {
		return store.ErrNotFound
	}
	// Recorded first: the binary, cancelled, reports a failure of its own.
	_, _ = p.Store.UpdateJob(ctx, jobID, store.JobUpdate{Status: store.StatusStopped})
	p.mu.Lock()
	pgid := run.pid
	p.mu.Unlock()
	if pgid == 0 { // a Python job whose environment is being prepared
		run.cancel()
		select {
		case <-run.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := p.Grace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	select {
	case <-run.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-run.done
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return ctx.Err()
	}
	return nil
}

// Close stops following the agent's jobs and returns once nothing more is
// written to the store for them; the processes keep running, and a server
// started again re-attaches to them (Attach). Start and Attach fail after
// Close.
func (p *ProcessAgent) Close() {
	p.mu.Lock()
	if p.running == nil {
		p.running = map[string]*processRun{}
		p.closing = make(chan struct{})
	}
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
	p.mu.Unlock()
	p.follows.Wait()
}

// jobEnv is the environment of a job's process: the worker contract of the
// Python SDK (SYNAPSE_HOST, SYNAPSE_ACCESS_TOKEN = the job's own token,
// SYNAPSE_JOB_ID, SYNAPSE_ACTION_ENTRYPOINT, SYNAPSE_ACTION_PARAMS,
// SYNAPSE_LANGUAGE), config.yaml env, and PATH, HOME and TMPDIR from this
// process (never its other variables).
func jobEnv(host, token string, job store.Job, configEnv map[string]string, lang string) []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range configEnv {
		if !strings.HasPrefix(k, "SYNAPSE_") {
			env = append(env, k+"="+v)
		}
	}
	env = append(env,
		"SYNAPSE_HOST="+host,
		"SYNAPSE_ACCESS_TOKEN="+token,
		worker.EnvJobID+"="+job.ID,
		worker.EnvActionEntrypoint+"="+job.Action,
		worker.EnvActionParams+"="+string(job.Params),
	)
	if lang != "" {
		env = append(env, "SYNAPSE_LANGUAGE="+lang)
	}
	return env
}
