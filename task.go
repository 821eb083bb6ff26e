package synapse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/serve"
)

// WithReplicas sets how many workers (Serve replicas) task mode runs (default 1).
func WithReplicas(n int) RunOption { return runOptionFunc(func(c *runConfig) { c.replicas = n }) }

// WithMaxOngoingRequests sets how many runs one task-mode worker takes at
// once (Serve's max_ongoing_requests; default 1).
func WithMaxOngoingRequests(n int) RunOption {
	return runOptionFunc(func(c *runConfig) { c.maxOngoing = n })
}

// WithServeAddress sets the Ray Serve HTTP proxy task mode calls (default:
// the Ray dashboard's host, port 8000).
func WithServeAddress(addr string) RunOption {
	return runOptionFunc(func(c *runConfig) { c.serveAddress = addr })
}

// WithDeployStatus receives progress messages while task mode deploys.
func WithDeployStatus(fn func(status string)) RunOption {
	return runOptionFunc(func(c *runConfig) { c.deployStatus = fn })
}

// TaskExecutor runs a plugin's actions in task mode: on a long-lived worker
// in a Ray cluster (a Ray Serve replica running the plugin binary), reused
// by every call. The first call deploys the worker (or finds it deployed);
// later calls go straight to it. Params are validated on this side, with
// the plugin's own rules, before anything is deployed or sent. It is safe
// for concurrent use.
type TaskExecutor struct {
	cfg         *config.Config
	rc          runConfig
	explicitEnv *Env
	client      *ray.Client
	http        *http.Client

	mu       sync.Mutex
	hostBin  string // the plugin built for this machine, for validation
	app      *serve.App
	proxy    string
	deployed bool
}

// Deployed reports whether this executor had to create or update the
// worker application (false when it reused one already running).
func (t *TaskExecutor) Deployed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deployed
}

// NewTaskExecutor prepares task mode for the plugin in dir. Options: the
// Ray options (WithRayAddress, WithResources, WithArch), WithReplicas,
// WithMaxOngoingRequests, WithServeAddress, and the executor options
// WithEnv (layered over config.yaml env), WithJobID and WithLogger.
//
// The worker's environment is config.yaml env < WithEnv, plus SYNAPSE_HOST
// and SYNAPSE_ACCESS_TOKEN when set here; it is part of the Serve
// application's config, readable through the cluster's dashboard API until
// the application is removed (synapse plugin task down). It is never this
// process's whole environment.
func NewTaskExecutor(dir string, opts ...RunOption) (*TaskExecutor, error) {
	var rc runConfig
	for _, o := range opts {
		o.applyRun(&rc)
	}
	return newTaskExecutor(dir, rc, rc.exec.env)
}

func newTaskExecutor(dir string, rc runConfig, explicitEnv *Env) (*TaskExecutor, error) {
	if rc.exec.logger == nil {
		rc.exec.logger = NewConsoleLogger(os.Stderr)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	client, err := ray.NewClient(rc.rayAddress)
	if err != nil {
		return nil, err
	}
	return &TaskExecutor{cfg: cfg, rc: rc, explicitEnv: explicitEnv, client: client, http: &http.Client{}}, nil
}

// Execute runs action on the worker: the action's name selects the plugin
// action, and params are checked with action.Decode first.
func (t *TaskExecutor) Execute(ctx context.Context, action Action, params any) (any, error) {
	if action == nil {
		return nil, errors.New("execute action: action is nil")
	}
	if err := action.Decode(params); err != nil {
		return nil, err
	}
	return t.Run(ctx, action.Name(), params)
}

// Run runs the plugin action named action (a config.yaml action, mapped to
// its entrypoint) on the worker and returns its result. Its events go to
// the logger; errors are the typed errors of local mode. Cancelling ctx
// aborts the call and cancels the action on the worker.
func (t *TaskExecutor) Run(ctx context.Context, action string, params any) (any, error) {
	entry := action
	if len(t.cfg.Actions) > 0 {
		ca, ok := t.cfg.Action(action)
		if !ok {
			// Execute passes the binary's name for the action: accept an
			// entrypoint that config.yaml maps some action to.
			for _, a := range t.cfg.Actions {
				if a.Entrypoint == action {
					ca, ok = a, true
					break
				}
			}
		}
		if !ok {
			return nil, notFound(action, t.cfg.ActionNames())
		}
		entry = ca.Entrypoint
	}
	raw, err := paramsJSON(params)
	if err != nil {
		return nil, &ValidationError{Action: action, Fields: []FieldError{{Message: "params cannot be encoded as JSON: " + err.Error()}}}
	}
	if err := t.validate(ctx, entry, raw); err != nil {
		return nil, err
	}
	req := serve.RunRequest{Action: entry, Params: raw, JobID: t.rc.exec.jobID}
	var body io.ReadCloser
	for attempt := 0; ; attempt++ {
		if _, err := t.Deploy(ctx); err != nil {
			return nil, err
		}
		t.mu.Lock()
		app, proxy := t.app, t.proxy
		t.mu.Unlock()
		body, err = t.call(ctx, proxy, app.RoutePrefix, req)
		var ce *serve.CallError
		if attempt == 0 && errors.As(err, &ce) && ce.Status == http.StatusNotFound {
			// The application is gone (removed, or replaced by a newer
			// version of the plugin): deploy again, once.
			t.mu.Lock()
			if t.app == app {
				t.app = nil
			}
			t.mu.Unlock()
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	defer body.Close()
	o := readWorker(body, "", t.rc.exec.logger)
	if o.err != nil && ctx.Err() != nil {
		return nil, &ExecutionError{Action: action, JobID: t.rc.exec.jobID, Err: ctx.Err()}
	}
	return o.result, o.err
}

// callRetryWindow is how long a call keeps retrying while the worker is
// not reachable yet (a replica starting or being replaced).
const callRetryWindow = 90 * time.Second

func (t *TaskExecutor) call(ctx context.Context, proxy, route string, req serve.RunRequest) (io.ReadCloser, error) {
	deadline := time.Now().Add(callRetryWindow)
	for delay := 200 * time.Millisecond; ; delay = min(delay*2, 2*time.Second) {
		body, err := serve.Call(ctx, t.http, proxy, route, req, "")
		if err == nil {
			return body, nil
		}
		var ce *serve.CallError
		var ne net.Error
		retry := errors.As(err, &ce) && ce.Retryable() && ce.Status != http.StatusNotFound ||
			errors.As(err, &ne) // e.g. connection refused
		if !retry || time.Now().After(deadline) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil, &ExecutionError{Action: req.Action, JobID: req.JobID, Err: ctx.Err()}
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, &ExecutionError{Action: req.Action, JobID: req.JobID, Err: ctx.Err()}
		case <-time.After(delay):
		}
	}
}

// validate checks params before anything is deployed or sent.
func (t *TaskExecutor) validate(ctx context.Context, entry string, raw json.RawMessage) error {
	t.mu.Lock()
	bin := t.hostBin
	t.mu.Unlock()
	bin, err := validateParams(ctx, t.cfg.Dir, bin, entry, raw)
	t.mu.Lock()
	t.hostBin = bin
	t.mu.Unlock()
	return err
}

// validateParams checks params with the plugin binary built for this
// machine (`BINARY validate ACTION`, built now unless bin is given), so the
// messages are exactly those of a run. It returns the binary for reuse.
func validateParams(ctx context.Context, dir, bin, entry string, raw json.RawMessage) (string, error) {
	if bin == "" {
		res, err := build.Build(ctx, build.Options{Dir: dir})
		if err != nil {
			return "", err
		}
		bin = res.Binary
	}
	cmd := exec.CommandContext(ctx, bin, "validate", entry)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(raw)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err == nil {
		return bin, nil
	}
	var w protocol.Error
	if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &w); jerr == nil && w.Kind != "" {
		return bin, fromWireError(&w)
	}
	return bin, fmt.Errorf("validate params with %s: %w\n%s", bin, err, errOut.String())
}

// Deploy makes sure the plugin's worker application runs on the cluster:
// it cross-compiles and packages the plugin with the Serve host, uploads
// the package if the cluster lacks it, and deploys (or reuses) the
// application. It reports whether a deployment happened.
func (t *TaskExecutor) Deploy(ctx context.Context) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.app != nil {
		return false, nil
	}
	status := t.rc.deployStatus
	if status == nil {
		status = func(string) {}
	}
	arch := t.rc.arch
	if arch == "" {
		arch = "amd64"
	}
	status("building " + t.cfg.Code + " for linux/" + arch)
	built, err := build.Build(ctx, build.Options{Dir: t.cfg.Dir, GOOS: "linux", GOARCH: arch, Static: true})
	if err != nil {
		return false, err
	}
	pkg, err := pack.Build(pack.Options{Dir: t.cfg.Dir, Binary: built.Binary, BinaryName: binaryName, Extra: serve.HostFiles()})
	if err != nil {
		return false, err
	}
	status("uploading the package")
	if _, err := t.client.EnsurePackage(ctx, pkg.Name, pkg.Data); err != nil {
		return false, err
	}
	envVars := map[string]string{}
	for k, v := range MergeEnv(NewEnv(t.cfg.Env), t.explicitEnv).values {
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
	app, deployed, err := serve.Deploy(ctx, t.client, serve.Spec{
		Code: t.cfg.Code, PackageName: pkg.Name, BinaryName: binaryName, EnvVars: envVars,
		RuntimeEnv: t.cfg.RuntimeEnv, Replicas: t.rc.replicas, MaxOngoing: t.rc.maxOngoing,
		CPUs: t.rc.resources.CPUs, GPUs: t.rc.resources.GPUs, Memory: t.rc.resources.Memory,
	}, status)
	if err != nil {
		return false, err
	}
	proxy, err := serve.ProxyAddress(t.client.Address(), t.rc.serveAddress)
	if err != nil {
		return false, err
	}
	t.app, t.proxy, t.deployed = app, proxy, deployed
	return deployed, nil
}

// App returns the name of the worker application, once deployed.
func (t *TaskExecutor) App() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.app == nil {
		return ""
	}
	return t.app.Name
}
