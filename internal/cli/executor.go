package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/backend"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/ray"
	"github.com/synapse-sdk/synapse-go/remote"
)

// newExecutor is the one place where the CLI turns a mode other than local
// (which execs the plugin binary) into an executor of p.
func newExecutor(io *IOStreams, flags *runflags.Flags, mode synapse.Mode, p *plugin.Plugin) (synapse.Executor, error) {
	if mode == synapse.ModeRemote {
		return newRemoteExecutor(io, flags, p)
	}
	env, err := explicitEnv(flags)
	if err != nil {
		return nil, err
	}
	cluster := ray.Cluster{
		Address:   flags.RayAddress,
		Arch:      flags.Arch,
		Resources: ray.Resources{CPUs: flags.CPUs, GPUs: flags.GPUs, Memory: flags.MemoryBytes(), Custom: flags.CustomResources()},
	}
	logger := synapse.NewConsoleLogger(io.ErrOut)
	opts := []synapse.Option{synapse.WithEnv(env), synapse.WithJobID(flags.JobID), synapse.WithLogger(logger)}
	switch mode {
	case synapse.ModeJob:
		return ray.NewJobExecutor(p, ray.JobOptions{Cluster: cluster}, opts...)
	case synapse.ModeTask:
		// Deploy steps go to stderr on a terminal or not: a deploy waiting
		// for resources must never wait in silence.
		status := func(s string) { fmt.Fprintf(io.ErrOut, "Task mode: %s\n", s) }
		return ray.NewTaskExecutor(p, ray.TaskOptions{Cluster: cluster, Replicas: flags.Replicas,
			MaxOngoingRequests: flags.MaxOngoing, ServeAddress: flags.ServeAddress, ProxyOnly: flags.ProxyOnly, DeployStatus: status}, opts...)
	}
	return nil, &runflags.UsageError{Flag: "mode", Message: fmt.Sprintf("%s mode is not available in this release; use --mode local, task, job or remote", mode)}
}

// newRemoteExecutor is remote mode's executor: the backend of --host/-t,
// the environment and config.json; the agent of --agent, else config.json's
// (synapse agent select), else the backend's only one; p is nil when only
// -p CODE is known.
func newRemoteExecutor(io *IOStreams, flags *runflags.Flags, p *plugin.Plugin) (synapse.Executor, error) {
	creds, _, err := credentials(backendFlags{host: flags.Host, token: flags.Token})
	if err != nil {
		return nil, err
	}
	b, err := remoteBackend(creds)
	if err != nil {
		return nil, err
	}
	var agent int64
	switch want := strings.TrimSpace(flags.Agent); {
	case want != "":
		if id, err := strconv.ParseInt(want, 10, 64); err == nil && id > 0 {
			agent = id
			break
		}
		// A name: GET /agents/, as synapse agent select finds it.
		client, err := backendClient(creds)
		if err != nil {
			return nil, err
		}
		list, err := client.Agents(context.Background())
		if err != nil {
			return nil, err
		}
		a, err := findAgent("--agent", list, want)
		if err != nil {
			return nil, err
		}
		agent = int64(a.ID)
	case creds.Agent != nil:
		agent = creds.Agent.ID
	}
	lang := flags.Lang
	if lang == "" {
		lang = os.Getenv(synapse.LanguageEnv)
	}
	opts := remote.Options{Backend: b, Plugin: flags.Plugin, Agent: agent, Release: flags.Release, Debug: flags.Debug, Language: lang}
	ex, err := remote.NewExecutor(p, opts, synapse.WithLogger(synapse.NewConsoleLogger(io.ErrOut)))
	var oe *remote.OptionError
	if errors.As(err, &oe) && oe.Field == "Plugin" {
		return nil, &exit.SetupError{Problem: "remote mode needs the plugin's code", Fix: "pass -p CODE, or run in the plugin's directory (--path)"}
	}
	return ex, err
}

// explicitEnv is --env-file layered under --env.
func explicitEnv(flags *runflags.Flags) (*synapse.Env, error) {
	env := synapse.NewEnv(nil)
	if flags.EnvFile != "" {
		fileEnv, err := synapse.EnvFromFile(flags.EnvFile)
		if err != nil {
			return nil, &runflags.UsageError{Flag: "env-file", Message: err.Error()}
		}
		env = fileEnv
	}
	return synapse.MergeEnv(env, synapse.NewEnv(flags.EnvValues())), nil
}

// runWith runs action with ex and prints its result: a Submitter's run is
// submitted and followed (so Ctrl-C can leave it running), any other
// executor's run is one call.
func runWith(ctx context.Context, io *IOStreams, flags *runflags.Flags, ex synapse.Executor, action string) error {
	params, err := runflags.ReadParams(flags.Params, io.In)
	if err != nil {
		return err
	}
	if params, err = flags.InferParams(action, params); err != nil {
		return err
	}
	if sub, ok := ex.(synapse.Submitter); ok {
		return submitAndFollow(ctx, io, flags, sub, action, json.RawMessage(params))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	result, err := ex.Run(ctx, action, json.RawMessage(params))
	if ctx.Err() != nil {
		return synapse.ErrInterrupted
	}
	if err != nil {
		return err
	}
	if t, ok := ex.(*ray.TaskExecutor); ok && flags.Verbose {
		tm := t.Timings()
		state, path := "reused", "through the Serve proxy"
		if t.Deployed() {
			state = "deployed"
		}
		if tm.Direct {
			path = "straight to the worker"
		}
		fmt.Fprintf(io.ErrOut, "worker application: %s (%s); called %s\n", t.App(), state, path)
		switch {
		case tm.Fallback != "" && tm.Direct:
			fmt.Fprintf(io.ErrOut, "tried first: %s (%v lost)\n", tm.Fallback, tm.FallbackTime.Round(100*time.Microsecond))
		case tm.Fallback != "":
			fmt.Fprintf(io.ErrOut, "not straight to a worker: %s (%v lost)\n", tm.Fallback, tm.FallbackTime.Round(100*time.Microsecond))
		}
		fmt.Fprintf(io.ErrOut, "timings: validate %v, deploy %v (package cached %v), call %v\n",
			tm.Validate.Round(100*time.Microsecond), tm.Deploy.Round(100*time.Microsecond), tm.PackageCached, tm.Call.Round(100*time.Microsecond))
	}
	return output.Result(io.Out, result, flags.Output == "text" && output.IsTerminal(io.Out))
}

// submitAndFollow submits the run, prints where it is, and follows it to
// its result (unless --no-wait).
func submitAndFollow(ctx context.Context, io *IOStreams, flags *runflags.Flags, sub synapse.Submitter, action string, params json.RawMessage) error {
	stop := func() {}
	if io.IsTerminal() {
		what := "Building and uploading the plugin"
		if _, isRemote := sub.(*remote.Executor); isRemote {
			what = "Submitting the run" // the release is on the backend already
		}
		stop = spin(io.ErrOut, what)
	}
	var job synapse.Job
	err := interruptible(ctx, func(ctx context.Context) (err error) {
		job, err = sub.Submit(ctx, action, params)
		return err
	})
	stop()
	if err != nil {
		return err
	}
	rj, isRay := job.(*ray.Job)
	if isRay && rj.Existing {
		fmt.Fprintf(io.ErrOut, "Job %s was already submitted with the same entrypoint; following it.\n", job.ID())
	} else {
		fmt.Fprintf(io.ErrOut, "Job submitted: %s\n", job.ID())
	}
	stopFlags := ""
	if remoteJob, ok := job.(*remote.Job); ok {
		fmt.Fprintf(io.ErrOut, "Dashboard: %s\n", remoteJob.DashboardURL())
		if flags.Host != "" {
			stopFlags = " --host " + backend.RedactHost(flags.Host)
		}
	}
	if isRay {
		fmt.Fprintf(io.ErrOut, "Dashboard: %s\n", rj.DashboardURL)
		if flags.Verbose {
			t := rj.Timings
			fmt.Fprintf(io.ErrOut, "timings: build %v (cached %v), package %v (cached %v), upload %v (reused %v), submit %v\n",
				t.Build.Round(time.Millisecond), t.Cached, t.Package.Round(time.Millisecond), t.PackageCached, t.Upload.Round(time.Millisecond), t.Reused, t.Submit.Round(time.Millisecond))
		}
	}
	if flags.NoWait {
		fmt.Fprintln(io.Out, job.ID())
		return nil
	}
	submitted := time.Now()
	err = followJob(ctx, io, job, followOptions{out: flags.Output, stopOnInterrupt: flags.StopOnInterrupt,
		startTimeout: flags.StartTimeout, rayAddress: flags.RayAddress, stopFlags: stopFlags, verbose: flags.Verbose})
	if flags.Verbose && err == nil {
		fmt.Fprintf(io.ErrOut, "timings: submitted to result %v\n", time.Since(submitted).Round(time.Millisecond))
	}
	return err
}
