package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// pythonAction returns the worker entrypoint (module.Class) of a job's
// action (the job records the action's config entrypoint, such as
// plugin.train:TrainAction, or its name) and the release's synapse-sdk
// requirement (config `requires.sdk`).
func pythonAction(config json.RawMessage, action string) (entrypoint, requiresSDK string, err error) {
	var cfg struct {
		Actions map[string]struct {
			Entrypoint string `json:"entrypoint"`
		} `json:"actions"`
		Requires struct {
			SDK string `json:"sdk"`
		} `json:"requires"`
	}
	_ = json.Unmarshal(config, &cfg)
	if pyplugin.IsEntrypoint(action) {
		return pyplugin.Entrypoint(action), cfg.Requires.SDK, nil
	}
	a, ok := cfg.Actions[action]
	if !ok || !pyplugin.IsEntrypoint(a.Entrypoint) {
		return "", "", fmt.Errorf("the release has no %s binary (a Go release) and no action %q with a Python entrypoint such as plugin.train:TrainAction (a Python release)", worker.BinaryName, action)
	}
	return pyplugin.Entrypoint(a.Entrypoint), cfg.Requires.SDK, nil
}

// startPython starts a job of a Python release unpacked in dir: the job is
// RUNNING at once; its environment is prepared (or reused) in the
// background with pip's output in the job's console log, then the Python
// SDK's worker runs in it, reporting over its JobLogger with the job's
// token (env). A preparation that fails ends the job FAILED with pip's
// message (error_type environment).
func (p *ProcessAgent) startPython(ctx context.Context, job store.Job, rel store.Release, dir string, env []string) error {
	if p.Venvs == nil {
		return fmt.Errorf("start job %s: release %d is a Python release and this agent has no directory for Python environments", job.ID, rel.ID)
	}
	entry, requiresSDK, err := pythonAction(rel.Config, job.Action)
	if err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	env = setEnv(env, worker.EnvActionEntrypoint, entry)
	env = setEnv(env, "PYTHONUNBUFFERED", "1")
	if err := os.MkdirAll(p.RunDir, 0o700); err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	if env, err = p.paramsFile(job.ID, env); err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	out, err := os.OpenFile(p.file(job.ID, ".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start job %s: %w", job.ID, err)
	}
	prepCtx, cancel := context.WithCancel(context.Background())
	run := &processRun{done: make(chan struct{}), waited: true, cancel: cancel}
	if !p.track(job.ID, run) {
		cancel()
		out.Close()
		return fmt.Errorf("start job %s: the server is shutting down", job.ID)
	}
	if _, err := p.Store.UpdateJob(context.WithoutCancel(ctx), job.ID, store.JobUpdate{Status: store.StatusRunning}); err != nil && !errors.Is(err, store.ErrTransition) {
		cancel()
	}
	go p.follow(job.ID, run, 0)
	go func() {
		defer close(run.done)
		defer cancel()
		defer out.Close()
		spec := pyplugin.EnvSpec(dir, requiresSDK, p.Python)
		venv, err := p.Venvs.Prepare(prepCtx, spec, out)
		if err != nil {
			fmt.Fprintf(out, "synapse server: %v\n", err)
			p.mu.Lock()
			if !run.stopped {
				run.failure = err.Error()
			}
			p.mu.Unlock()
			return
		}
		defer venv.Close() // in use until the worker has exited
		if venv.Reused {
			fmt.Fprintf(out, "synapse server: Python environment %s (reused)\n", venv.Key)
		}
		work, err := jobWorkDir(p.file(job.ID, ".d"), dir)
		if err != nil {
			fmt.Fprintf(out, "synapse server: start the Python worker: %v\n", err)
			p.mu.Lock()
			run.failure = "start the Python worker: " + err.Error()
			p.mu.Unlock()
			return
		}
		cmd := exec.Command(venv.Python, "-m", pyplugin.WorkerModule)
		cmd.Dir = work // its own, with the release's files linked, as a Go plugin's job
		cmd.Env = append(env, EnvPluginDir+"="+dir)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		p.mu.Lock()
		if run.stopped {
			p.mu.Unlock()
			return
		}
		err = cmd.Start()
		if err == nil {
			run.pid = cmd.Process.Pid
		}
		p.mu.Unlock()
		if err != nil {
			fmt.Fprintf(out, "synapse server: start the Python worker: %v\n", err)
			p.mu.Lock()
			run.failure = "start the Python worker: " + err.Error()
			p.mu.Unlock()
			return
		}
		_ = os.WriteFile(p.file(job.ID, ".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		run.exit = cmd.Wait()
	}()
	return nil
}

// setEnv sets key in env (KEY=VALUE), replacing its value if it is there.
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
