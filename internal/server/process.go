package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// ProcessAgent runs jobs as processes on this machine: a release is
// unpacked once per content hash, and each job runs the release's plugin
// binary's `job` command in a process group of its own, its output
// appended to the job's console log.
type ProcessAgent struct {
	Store *store.Store
	// Releases unpacks the releases' files.
	Releases *Releases
	// Grace is how long a stopped job has between SIGTERM and SIGKILL
	// (default 10s).
	Grace time.Duration
	// Done, when set, is called after a job's outcome is recorded.
	Done func(jobID string)

	mu      sync.Mutex
	running map[string]*processRun
}

type processRun struct {
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// Start starts job (of release rel) with env (KEY=VALUE, the whole
// environment of the process) and returns once the process runs; the job
// is RUNNING then. When the process ends, the job becomes SUCCEEDED with
// the result the binary printed, or FAILED with its error, unless it has
// already ended (stopped, or reported by the binary itself); the job's
// tokens are revoked.
func (p *ProcessAgent) Start(ctx context.Context, job store.Job, rel store.Release, env []string) error {
	dir, err := p.Releases.Unpacked(rel)
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, worker.BinaryName)
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("start job %s: release %d has no %s (a Go plugin release holds its binary)", job.ID, rel.ID, worker.BinaryName)
	}
	cmd := exec.Command(bin, "job")
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout // one stream, in order (os/exec shares the pipe)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	run := &processRun{cmd: cmd, done: make(chan struct{})}
	p.mu.Lock()
	if p.running == nil {
		p.running = map[string]*processRun{}
	}
	p.running[job.ID] = run
	p.mu.Unlock()
	if _, err := p.Store.UpdateJob(context.WithoutCancel(ctx), job.ID, store.JobUpdate{Status: store.StatusRunning}); err != nil && !errors.Is(err, store.ErrTransition) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	go p.watch(job.ID, run, out)
	return nil
}

// watch copies the process's output into the console log and records the
// outcome.
func (p *ProcessAgent) watch(jobID string, run *processRun, out io.Reader) {
	ctx := context.Background()
	stream := worker.NewJobStream(nil, nil)
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			_, _ = p.Store.AppendConsole(ctx, jobID, batch)
			batch = batch[:0]
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for open := true; open; {
		select {
		case l, ok := <-lines:
			if !ok {
				open = false
				break
			}
			stream.Write(l + "\n")
			if batch = append(batch, l); len(batch) >= 500 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
	flush()
	stream.Close()
	waitErr := run.cmd.Wait()
	close(run.done)
	p.mu.Lock()
	delete(p.running, jobID)
	stopped := run.stopped
	p.mu.Unlock()

	u := store.JobUpdate{Status: store.StatusSucceeded}
	switch {
	case stopped:
		u = store.JobUpdate{Status: store.StatusStopped}
	case stream.Err != nil:
		b, _ := json.Marshal(map[string]any{"error": stream.Err.Message})
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": stream.Err.Kind, "message": stream.Err.Message}})
		u = store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
	case waitErr != nil || stream.Result == nil:
		msg := "the plugin process ended without a result"
		if waitErr != nil {
			msg = "the plugin process " + describeExit(waitErr) + " without a result"
		}
		b, _ := json.Marshal(map[string]any{"error": msg})
		meta, _ := json.Marshal(map[string]any{"error": map[string]string{"error_type": "process", "message": msg}})
		u = store.JobUpdate{Status: store.StatusFailed, Result: b, Meta: meta}
	default:
		u.Result = stream.Result
	}
	if _, err := p.Store.UpdateJob(ctx, jobID, u); err != nil && !errors.Is(err, store.ErrTransition) {
		_, _ = p.Store.AppendConsole(ctx, jobID, []string{"synapse server: record the outcome: " + err.Error()})
	}
	_ = p.Store.RevokeToken(ctx, jobID)
	_ = p.Store.CloseConsole(ctx, jobID)
	if p.Done != nil {
		p.Done(jobID)
	}
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
	pgid := run.cmd.Process.Pid
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
