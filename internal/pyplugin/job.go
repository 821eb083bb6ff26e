package pyplugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// RunnerFile is runner.py's name in a job-mode package.
const RunnerFile = ".synapse_runner.py"

// JobExecutor runs a Python plugin's actions as Ray jobs (job mode): the
// plugin directory, with runner.py as RunnerFile, is the job's working_dir
// package; synapse-sdk (as config.yaml `requires.sdk` asks) and
// requirements.txt are its runtime_env.pip, which Ray installs into an
// environment of the cluster's Python (it must be >= 3.12); the entrypoint
// is `python .synapse_runner.py run`, the Python SDK's worker with its
// console logger writing our JSON events, which the job's log carries
// back to Logger. Everything in the env goes to the job's
// runtime_env.env_vars, which Ray keeps in clear (docs/modes.md).
type JobExecutor struct {
	// Config is the plugin's config.
	Config *config.Config
	// Client talks to the cluster's dashboard.
	Client *ray.Client
	// Env holds the action's env values (config.yaml env, --env-file,
	// --env).
	Env map[string]string
	// JobID is SYNAPSE_JOB_ID ("" for none); Lang is SYNAPSE_LANGUAGE.
	JobID, Lang string
	// Logger gets the run's events and the job's other log lines (as
	// "stdout" messages); nil discards them.
	Logger synapse.Logger
	// CPUs, GPUs (fractions of one allowed), Memory (bytes) and Custom
	// resources are reserved for the job's entrypoint
	// (entrypoint_num_cpus, entrypoint_num_gpus, entrypoint_memory,
	// entrypoint_resources); zero reserves none.
	CPUs, GPUs float64
	Memory     int64
	Custom     map[string]float64
	// Submitted, when set, is called with the Ray job's submission ID once
	// Ray has taken it.
	Submitted func(id string)
}

var _ synapse.Executor = (*JobExecutor)(nil)

// Run submits the action as a Ray job and follows it to its end. The
// result and errors are those of Executor.Run; a job Ray fails before the
// worker runs (RUNTIME_ENV_SETUP_FAILURE: pip could not install the
// requirements, or the cluster's Python is older than 3.12) is an
// *synapse.ExecutionError with Ray's message, pip's output included.
// Cancelling ctx stops the job.
func (e *JobExecutor) Run(ctx context.Context, action string, params any) (any, error) {
	a, ok := e.Config.Action(action)
	if !ok {
		return nil, synapse.NotFound(action, e.Config.ActionNames())
	}
	raw, err := paramsJSON(params)
	if err != nil {
		return nil, &synapse.ValidationError{Action: action, Fields: []synapse.FieldError{{Message: err.Error()}}}
	}
	extra := map[string][]byte{RunnerFile: []byte(runner)}
	vars := maps.Clone(e.Env)
	if vars == nil {
		vars = map[string]string{}
	}
	maps.Copy(vars, map[string]string{
		worker.EnvActionEntrypoint: Entrypoint(a.Entrypoint),
		"SYNAPSE_GO_ACTION":        action,
		"PYTHONUNBUFFERED":         "1",
	})
	if len(raw) < worker.MaxEnvParams {
		vars[worker.EnvActionParams] = string(raw)
	} else {
		extra[".synapse_params.json"] = raw
		vars[worker.EnvActionParamsFile] = ".synapse_params.json"
	}
	if e.JobID != "" {
		vars[worker.EnvJobID] = e.JobID
	}
	if e.Lang != "" {
		vars["SYNAPSE_LANGUAGE"] = e.Lang
	}
	pkg, err := pack.Build(pack.Options{Dir: e.Config.Dir, Extra: extra, Exclude: pack.PythonExcludes})
	if err != nil {
		return nil, err
	}
	if _, err := e.Client.EnsurePackage(ctx, pkg.Name, pkg.Data); err != nil {
		return nil, err
	}
	pip := []string{pyenv.SDKRequirement(e.Config.Requires.SDK)}
	if b, err := os.ReadFile(filepath.Join(e.Config.Dir, RequirementsFile)); err == nil {
		lines, err := RequirementLines(string(b))
		if err != nil {
			return nil, err
		}
		pip = append(pip, lines...)
	}
	req := ray.SubmitRequest{
		Entrypoint:        "python " + RunnerFile + " run",
		RuntimeEnv:        map[string]any{"working_dir": pkg.URI, "pip": pip, "env_vars": vars},
		Metadata:          map[string]string{"sdk": "synapse-go", "plugin": e.Config.Code, "action": action, "language": "python"},
		EntrypointNumCPUs: e.CPUs, EntrypointNumGPUs: e.GPUs, EntrypointMemory: e.Memory, EntrypointResources: e.Custom,
	}
	sub, err := e.Client.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	id := sub.ID
	if e.Submitted != nil {
		e.Submitted(id)
	}
	logger := e.Logger
	if logger == nil {
		logger = synapse.DiscardLogger
	}
	run := synapse.NewRunLogger(logger)
	stream := worker.NewJobStream(func(ev synapse.Event) {
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		run.Handle(ev)
	}, func(l string) {
		if !isWorkerBanner(l) {
			run.Handle(outputEvent("stdout", l))
		}
	})
	err = e.Client.TailToEnd(ctx, id, func(chunk string) error { stream.Write(chunk); return nil })
	stream.Close()
	if ctx.Err() != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_, _ = e.Client.StopAndWait(sctx, id, 30*time.Second)
		cancel()
		return nil, &synapse.ExecutionError{Action: action, JobID: id, Err: worker.WrapCause(context.Cause(ctx), errors.New("the Ray job was stopped"))}
	}
	if err != nil {
		return nil, fmt.Errorf("follow Ray job %s: %w", id, err)
	}
	job, err := e.Client.Wait(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("follow Ray job %s: %w", id, err)
	}
	switch {
	case stream.Err != nil:
		if stream.Err.Action == "" {
			stream.Err.Action = action
		}
		return nil, worker.FromError(stream.Err)
	case job.Status == synapse.JobSucceeded && stream.Result != nil:
		return worker.UnwrapResult(stream.Result)
	}
	msg := fmt.Sprintf("the Ray job %s ended %s", id, job.Status)
	if job.ErrorType != "" {
		msg += " (" + job.ErrorType + ")"
	}
	if job.Message != "" {
		msg += ": " + job.Message
	} else if len(stream.Tail) > 0 {
		msg += ":\n" + strings.Join(stream.Tail, "\n")
	}
	return nil, &synapse.ExecutionError{Action: action, JobID: id, Err: errors.New(msg)}
}

// RequirementLines returns the requirements of a requirements.txt's text,
// without comments and blank lines (runtime_env.pip's form). A pip option
// line (-r FILE, --index-url URL, …) is a *RequirementsError: Ray's
// runtime_env.pip resolves such lines against its own working directory,
// not the plugin's, and fails with an unrelated error.
func RequirementLines(text string) ([]string, error) {
	var out []string
	n := 0
	for l := range strings.Lines(text) {
		n++
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "-") {
			return nil, &RequirementsError{Line: n, Text: l}
		}
		out = append(out, l)
	}
	return out, nil
}

// RequirementsError is a requirements.txt line a Ray runtime env cannot
// take: a pip option. Its exit code is 2.
type RequirementsError struct {
	Line int    // 1-based
	Text string // the line, trimmed
}

// Error implements error.
func (e *RequirementsError) Error() string {
	return fmt.Sprintf("%s:%d: %q: pip options are not taken on Ray (runtime_env.pip resolves them against the cluster's directory, not the plugin's): list the requirements themselves in %s; local mode and the process agent take options", RequirementsFile, e.Line, e.Text, RequirementsFile)
}

// ExitCode is 2: the plugin's files need a fix.
func (e *RequirementsError) ExitCode() int { return 2 }
