package ray

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/retry"
	"github.com/synapse-sdk/synapse-go/internal/worker"
	"github.com/synapse-sdk/synapse-go/plugin"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/serve"
)

// TaskExecutor runs a plugin's actions in task mode: on a long-lived worker
// in a Ray cluster (a Ray Serve replica running the plugin binary), reused
// by every call. The first call deploys the worker (or finds it deployed);
// later calls go straight to it.
//
// Direct calls: a call through the Serve proxy learns the worker's own
// address (serve.DirectHeader), and later calls go there without crossing
// the proxy and the replica's Python host (docs/modes.md, "Direct calls").
// Serve still places, health-checks and replaces the replicas; a call to a
// worker that is gone, replaced or busy goes through the proxy instead,
// which teaches the new address. The application and its workers' addresses
// are remembered in the build cache, keyed by the whole application config,
// so a new process (a CLI run) calls a warm worker directly as well.
//
// Params are validated on this side, with the plugin's own rules, before
// anything is deployed; once the worker is known to run, the worker checks
// them with the same binary's rules before the action starts (the same
// *synapse.ValidationError), which saves a process start per call. It is
// safe for concurrent use.
type TaskExecutor struct {
	p      *plugin.Plugin
	opts   TaskOptions
	cfg    synapse.ExecutorConfig
	client *rayapi.Client
	http   *http.Client
	// direct calls workers straight: a short dial timeout, many idle
	// connections kept (a warm call reuses one).
	direct *http.Client

	up       reachable
	mu       sync.Mutex
	spec     *serve.Spec   // built and packaged (prepare)
	pkg      *pack.Package // the package of spec
	state    string        // the file remembering app and workers across processes
	recalled bool          // state was read
	app      *serve.App
	proxy    string
	deployed bool
	// pkgCached: the deployed package came from the package cache.
	pkgCached bool
	workers   []string       // direct addresses of the workers known
	inFlight  map[string]int // this executor's direct calls per worker
	bad       map[string]bool
	next      int // round robin over workers
	timings   TaskTimings
}

// TaskTimings says where the time of a task-mode run went.
type TaskTimings struct {
	// Validate is checking the params with the plugin binary on this
	// machine (zero when the worker was known to run: it checks them).
	Validate time.Duration
	// Deploy is the build, package, upload check and Serve check of the
	// executor's first run (on later runs only finding the worker).
	Deploy time.Duration
	// Call is from sending the call to the worker to its outcome (the
	// action's own run time included).
	Call time.Duration
	// PackageCached is true when the deploy took the package from the
	// package cache instead of zipping it.
	PackageCached bool
	// Direct is true when the call went straight to the worker, not
	// through the Serve proxy.
	Direct bool
}

// Timings returns the timings of the executor's latest Run.
func (t *TaskExecutor) Timings() TaskTimings {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timings
}

var _ synapse.Executor = (*TaskExecutor)(nil)

// Deployed reports whether this executor had to create or update the
// worker application (false when it reused one already running).
func (t *TaskExecutor) Deployed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deployed
}

// NewTaskExecutor prepares task mode for p on the cluster of opts.
//
// The worker's environment is config.yaml env < WithEnv, plus SYNAPSE_HOST
// when set here (never this process's SYNAPSE_ACCESS_TOKEN); it is part of
// the Serve application's config, in clear, readable through the cluster's dashboard API until
// the application is removed (synapse plugin task down). It is never this
// process's whole environment.
func NewTaskExecutor(p *plugin.Plugin, opts TaskOptions, eopts ...synapse.Option) (*TaskExecutor, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Replicas < 0 {
		return nil, &OptionError{Field: "Replicas", Err: fmt.Errorf("must be >= 1, or 0 for the default 1 (got %d)", opts.Replicas)}
	}
	if opts.MaxOngoingRequests < 0 {
		return nil, &OptionError{Field: "MaxOngoingRequests", Err: fmt.Errorf("must be >= 1, or 0 for the default 1 (got %d)", opts.MaxOngoingRequests)}
	}
	client, err := rayapi.NewClient(opts.Address)
	if err != nil {
		return nil, err
	}
	direct := &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: directDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
	}}
	return &TaskExecutor{p: p, opts: opts, cfg: synapse.NewExecutorConfig(eopts...), client: client, http: &http.Client{}, direct: direct,
		inFlight: map[string]int{}, bad: map[string]bool{}}, nil
}

// directDialTimeout bounds connecting to a worker directly: a node this
// machine cannot reach costs this once, then its calls use the proxy.
const directDialTimeout = time.Second

// Run runs the plugin action named action (a config.yaml action, mapped to
// its entrypoint) on the worker and returns its result. Its events go to
// the logger; errors are the typed errors of local mode. Cancelling ctx
// aborts the call and cancels the action on the worker.
func (t *TaskExecutor) Run(ctx context.Context, action string, params any) (any, error) {
	entry, err := t.p.Entrypoint(action)
	if err != nil {
		return nil, err
	}
	raw, err := plugin.ParamsJSON(action, params)
	if err != nil {
		return nil, err
	}
	req := serve.RunRequest{Action: entry, Params: raw, JobID: t.cfg.JobID}
	if lang := synapse.MergeEnv(t.p.Env(), t.cfg.Env).GetString(synapse.LanguageEnv, ""); lang != "" {
		// Per call, not in the application's env: another language must
		// not redeploy (and restart) the workers.
		req.Env = map[string]any{synapse.LanguageEnv: lang}
	}
	var tm TaskTimings
	start := time.Now()
	if err := t.recall(ctx); err != nil {
		return nil, err
	}
	tm.Deploy = time.Since(start)
	t.mu.Lock()
	tm.PackageCached = t.pkgCached
	t.mu.Unlock()
	// A worker known to run: straight to it.
	tried := map[string]bool{}
	for {
		addr := t.pickWorker(tried)
		if addr == "" {
			break
		}
		start = time.Now()
		st, err := serve.CallDirect(ctx, t.direct, addr, req)
		if err != nil {
			var ce *serve.CallError
			busy := errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable
			t.release(addr, !busy && ctx.Err() == nil)
			if ctx.Err() != nil {
				return nil, &synapse.ExecutionError{Action: action, JobID: t.cfg.JobID, Err: ctx.Err()}
			}
			continue // the next worker known, or the proxy
		}
		tm.Direct = true
		return t.finish(ctx, action, entry, addr, st.Body, tm, start)
	}
	// Through the Serve proxy. A cluster that does not answer fails now,
	// not after the call's retries.
	if err := t.up.check(ctx, t.client); err != nil {
		return nil, err
	}
	t.mu.Lock()
	known := t.app != nil
	t.mu.Unlock()
	if !known {
		start = time.Now()
		if err := t.p.Validate(ctx, action, raw); err != nil {
			return nil, err
		}
		tm.Validate = time.Since(start)
	}
	var st *serve.Stream
	for attempt := 0; ; attempt++ {
		start = time.Now()
		if _, err := t.Deploy(ctx); err != nil {
			return nil, err
		}
		tm.Deploy += time.Since(start)
		t.mu.Lock()
		app, proxy, pkgCached := t.app, t.proxy, t.pkgCached
		t.mu.Unlock()
		tm.PackageCached = pkgCached
		start = time.Now()
		st, err = t.call(ctx, proxy, app.RoutePrefix, req)
		var ce *serve.CallError
		if attempt == 0 && errors.As(err, &ce) && ce.Status == http.StatusNotFound {
			// The application is gone (removed, or replaced by a newer
			// version of the plugin): deploy again, once.
			t.forget(app)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	t.learnWorker(st.Direct)
	return t.finish(ctx, action, entry, "", st.Body, tm, start)
}

// finish reads a run's stream to its outcome. addr is the direct address
// the stream came from ("" through the proxy).
func (t *TaskExecutor) finish(ctx context.Context, action, entry, addr string, body io.ReadCloser, tm TaskTimings, start time.Time) (any, error) {
	defer body.Close()
	o := worker.Read(body, "", t.cfg.Logger)
	tm.Call = time.Since(start)
	t.mu.Lock()
	t.timings = tm
	t.mu.Unlock()
	if addr != "" {
		// A stream cut before the outcome: the worker died.
		t.release(addr, !o.Settled && ctx.Err() == nil)
	}
	if o.Err != nil && ctx.Err() != nil {
		return nil, &synapse.ExecutionError{Action: action, JobID: t.cfg.JobID, Err: ctx.Err()}
	}
	if o.Err != nil && !o.Settled {
		// The stream ended without the run's outcome: the worker died.
		return nil, &synapse.ExecutionError{Action: action, JobID: t.cfg.JobID, Err: fmt.Errorf("%w: the task worker (a Ray Serve replica) stopped before the run ended; Serve replaces it, so the call can be retried (%v)", ErrWorkerLost, o.Err)}
	}
	return o.Result, worker.Rename(o.Err, entry, action)
}

// callRetryWindow is how long a call keeps retrying while the worker is
// not reachable yet (a replica starting or being replaced).
const callRetryWindow = 90 * time.Second

func (t *TaskExecutor) call(ctx context.Context, proxy, route string, req serve.RunRequest) (*serve.Stream, error) {
	deadline := time.Now().Add(callRetryWindow)
	for backoff := retry.New(200*time.Millisecond, 2*time.Second, 2); ; {
		st, err := serve.Call(ctx, t.http, proxy, route, req)
		if err == nil {
			return st, nil
		}
		var ce *serve.CallError
		var ne net.Error
		retry := errors.As(err, &ce) && ce.Retryable() && ce.Status != http.StatusNotFound ||
			errors.As(err, &ne) // e.g. connection refused
		if !retry || time.Now().After(deadline) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil, &synapse.ExecutionError{Action: req.Action, JobID: req.JobID, Err: ctx.Err()}
			}
			return nil, err
		}
		if err := backoff.Wait(ctx); err != nil {
			return nil, &synapse.ExecutionError{Action: req.Action, JobID: req.JobID, Err: err}
		}
	}
}

// prepare builds and packages the plugin for the cluster, once per
// executor (no network).
func (t *TaskExecutor) prepare(ctx context.Context) (*serve.Spec, error) {
	if t.spec != nil {
		return t.spec, nil
	}
	status := t.status()
	arch := t.opts.arch()
	status("building " + t.p.Code() + " for linux/" + arch)
	built, err := build.Build(ctx, build.Options{Dir: t.p.Dir(), GOOS: "linux", GOARCH: arch, Static: true, Trim: true})
	if err != nil {
		return nil, err
	}
	pkg, pkgCached, err := packageCache(built).Build(pack.Options{Dir: t.p.Dir(), Binary: built.Binary, BinaryName: worker.BinaryName, Extra: serve.HostFiles()}, built.Key)
	if err != nil {
		return nil, err
	}
	envVars := clusterEnv(t.p, t.cfg.Env)
	delete(envVars, synapse.LanguageEnv) // sent with each call (Run)
	t.spec = &serve.Spec{
		Code: t.p.Code(), PackageName: pkg.Name, BinaryName: worker.BinaryName, EnvVars: envVars,
		RuntimeEnv: t.p.Config().RuntimeEnv, Replicas: t.opts.Replicas, MaxOngoing: t.opts.MaxOngoingRequests,
		CPUs: t.opts.Resources.CPUs, GPUs: t.opts.Resources.GPUs, Memory: t.opts.Resources.Memory,
		Resources: t.opts.Resources.Custom,
	}
	t.pkg, t.pkgCached = pkg, pkgCached
	proxy, err := serve.ProxyAddress(t.client.Address(), t.opts.ServeAddress)
	if err != nil {
		return nil, err
	}
	t.proxy = proxy
	t.state = filepath.Join(built.CacheDir, stateSubdir, stateKey(t.client.Address(), proxy, serve.AppKey(*t.spec))+".json")
	return t.spec, nil
}

func (t *TaskExecutor) status() func(string) {
	if t.opts.DeployStatus != nil {
		return t.opts.DeployStatus
	}
	return func(string) {}
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
	if err := t.up.check(ctx, t.client); err != nil {
		return false, err
	}
	spec, err := t.prepare(ctx)
	if err != nil {
		return false, err
	}
	status := t.status()
	status("uploading the package")
	if _, err := ensurePackage(ctx, t.client, t.pkg); err != nil {
		return false, err
	}
	app, deployed, err := serve.Deploy(ctx, t.client, *spec, status)
	if err != nil {
		return false, err
	}
	t.app, t.deployed = app, deployed
	t.workers, t.next = nil, 0
	t.saveLocked()
	return deployed, nil
}

// App returns the name of the worker application, once the plugin is
// built and packaged for it (its first Run or Deploy).
func (t *TaskExecutor) App() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.spec == nil {
		return ""
	}
	return serve.AppName(t.spec.Code, t.spec.PackageName)
}

// ErrWorkerLost matches the error of a task-mode run whose worker died
// (its replica was killed or replaced) before the run ended. Retrying the
// call is safe as far as synapse-go is concerned: the run's outcome never
// reached the caller.
var ErrWorkerLost = errors.New("task worker lost")

// TaskApp is a worker application task mode deployed (a Ray Serve
// application named synapse-CODE-HASH).
type TaskApp struct {
	Name        string `json:"name"`
	Code        string `json:"code"`
	RoutePrefix string `json:"route_prefix"`
	Status      string `json:"status"` // Serve's application status: DEPLOYING, RUNNING, …
	Message     string `json:"message,omitempty"`
}

// ListTasks lists the worker applications of plugin code (all of this
// SDK's when code is empty) on the cluster at address.
func ListTasks(ctx context.Context, address, code string) ([]TaskApp, error) {
	client, err := rayapi.NewClient(address)
	if err != nil {
		return nil, err
	}
	apps, err := serve.List(ctx, client, code)
	if err != nil {
		return nil, err
	}
	out := make([]TaskApp, len(apps))
	for i, a := range apps {
		out[i] = TaskApp(a)
	}
	return out, nil
}

// DownTasks removes the worker applications of plugin code (all of this
// SDK's when code is empty) from the cluster at address; other Serve
// applications are kept. It returns the names removed.
func DownTasks(ctx context.Context, address, code string) ([]string, error) {
	client, err := rayapi.NewClient(address)
	if err != nil {
		return nil, err
	}
	removed, err := serve.Down(ctx, client, code)
	if err == nil {
		// Their workers are on their way out: no process may call them
		// directly any more.
		forgetApps(removed)
	}
	return removed, err
}
