package ray

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"syscall"
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
// worker that is gone, replaced, runs another application config or is
// busy goes through the proxy instead, which teaches the new address. The
// workers' addresses are remembered in the build cache, keyed by the whole
// application config, so a new process (a CLI run) calls a warm worker
// directly as well.
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

	up reachable
	// deployMu serialises building, packaging and deploying; mu guards
	// the fields below, and is never held across a network call.
	deployMu sync.Mutex
	mu       sync.Mutex
	spec     *serve.Spec   // built and packaged (prepare)
	appKey   string        // serve.AppKey(*spec)
	pkg      *pack.Package // the package of spec
	state    string        // the file remembering the workers across processes
	recalled bool          // state was read
	app      *serve.App
	proxy    string
	deployed bool
	// pkgCached: the deployed package came from the package cache.
	pkgCached   bool
	workers     []string       // direct addresses of the workers known
	inFlight    map[string]int // this executor's direct calls per worker
	bad         map[string]bool
	next        int       // round robin over workers
	explore     bool      // this call goes through the proxy to learn more workers
	unreachable time.Time // direct calls off until then (taskstate.go)
	timings     TaskTimings
}

// directClient calls workers straight, shared by every TaskExecutor of
// this process: a short dial timeout, idle connections kept (a warm call
// reuses one), no HTTP proxy (workers are on the cluster's network).
var directClient = &http.Client{Transport: &http.Transport{
	DialContext:           (&net.Dialer{Timeout: directDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:          256,
	MaxIdleConnsPerHost:   64,
	IdleConnTimeout:       90 * time.Second,
	ResponseHeaderTimeout: 30 * time.Second,
	DisableCompression:    true,
}}

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
	// Fallback says why a call did not go straight to the first worker
	// known ("" otherwise), e.g. "the worker 10.0.0.5:41321 is busy …";
	// FallbackTime is what the failed direct attempts took.
	Fallback     string
	FallbackTime time.Duration
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
	return &TaskExecutor{p: p, opts: opts, cfg: synapse.NewExecutorConfig(eopts...), client: client, http: &http.Client{},
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
	if !json.Valid(raw) {
		// The plugin's own words for it (no worker is asked).
		if err := t.p.Validate(ctx, action, raw); err != nil {
			return nil, err
		}
		return nil, &synapse.ValidationError{Action: action, Fields: []synapse.FieldError{{Message: "params are not valid JSON"}}}
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
		addr, key, why := t.pickWorker(tried)
		if addr == "" {
			if why != "" {
				tm.Fallback = why
			}
			break
		}
		start = time.Now()
		st, err := serve.CallDirect(ctx, directClient, addr, key, req)
		if err == nil {
			tm.Direct = true
			return t.finish(ctx, action, entry, addr, st.Body, tm, start)
		}
		tm.FallbackTime += time.Since(start)
		if ctx.Err() != nil {
			t.release(addr, callDone)
			return nil, &synapse.ExecutionError{Action: action, JobID: t.cfg.JobID, Err: ctx.Err()}
		}
		o, why := directFailure(err)
		var ce *serve.CallError
		var tl *serve.TooLargeError
		if errors.As(err, &tl) || errors.As(err, &ce) && (ce.Status == http.StatusBadRequest || ce.Status == http.StatusRequestEntityTooLarge) {
			t.release(addr, callDone)
			return nil, t.requestError(action, err) // the request itself: the proxy would refuse it too
		}
		t.release(addr, o)
		tm.Fallback = "the worker " + hostOf(addr) + " " + why
		if o == callNoRoute {
			break // the others are on the same network
		}
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
		app, proxy, pkgCached, key := t.app, t.proxy, t.pkgCached, t.appKey
		t.mu.Unlock()
		tm.PackageCached = pkgCached
		start = time.Now()
		st, err = t.call(ctx, proxy, app.RoutePrefix, key, req)
		var ce *serve.CallError
		if attempt == 0 && errors.As(err, &ce) && (ce.Status == http.StatusNotFound || ce.Status == http.StatusConflict) {
			// The application is gone (removed, or replaced by a newer
			// version of the plugin), or another process deployed another
			// config under its name (409: the run did not start): deploy
			// ours again, once.
			t.forget(app)
			continue
		}
		if err != nil {
			return nil, t.requestError(action, err)
		}
		if st.Config != "" && st.Config != key {
			// A host that does not check the config ran it on another
			// config's worker: the next call deploys ours again.
			t.forget(app)
		}
		break
	}
	t.learnWorker(st)
	return t.finish(ctx, action, entry, "", st.Body, tm, start)
}

// requestError words a run request a worker or host refused as such: too
// large is a *synapse.ValidationError (exit code 2), like params a plugin
// rejects; other errors are returned as they are.
func (t *TaskExecutor) requestError(action string, err error) error {
	var tl *serve.TooLargeError
	var ce *serve.CallError
	switch {
	case errors.As(err, &tl):
		return &synapse.ValidationError{Action: action, Fields: []synapse.FieldError{{Message: tl.Error()}}}
	case errors.As(err, &ce) && ce.Status == http.StatusRequestEntityTooLarge:
		return &synapse.ValidationError{Action: action, Fields: []synapse.FieldError{{Message: "the run request is too large for the plugin worker (pass large inputs as files or URLs): " + ce.Message()}}}
	}
	return err
}

// directFailure says what a failed direct call shows about the worker.
func directFailure(err error) (outcome, string) {
	var ce *serve.CallError
	if errors.As(err, &ce) {
		switch ce.Status {
		case http.StatusServiceUnavailable:
			return callBusy, "is busy (max_ongoing_requests runs in flight)"
		case http.StatusNotFound:
			return callGone, "was replaced (another worker took its port)"
		case http.StatusConflict:
			return callGone, "runs another application config"
		}
		return callGone, fmt.Sprintf("answered %d", ce.Status)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return callGone, "is gone (connection refused)"
		}
		return callNoRoute, fmt.Sprintf("cannot be reached from here (%v): direct calls are off for %v; --proxy-only (TaskOptions.ProxyOnly) skips them", oe.Err, unreachableFor)
	}
	return callGone, "failed: " + err.Error()
}

// hostOf is a direct address without its token: "10.0.0.5:41321".
func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil {
		return u.Host
	}
	return "?"
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
		gone := !o.Settled && ctx.Err() == nil
		t.release(addr, map[bool]outcome{false: callDone, true: callGone}[gone])
	}
	if o.Err != nil && ctx.Err() != nil {
		return nil, &synapse.ExecutionError{Action: action, JobID: t.cfg.JobID, Err: ctx.Err()}
	}
	if o.Err != nil && !o.Settled {
		// The stream ended without the run's outcome: the worker died.
		return nil, &synapse.ExecutionError{Action: action, JobID: t.cfg.JobID, Err: fmt.Errorf("%w: the plugin worker stopped before the run ended (%v); if its application still runs, Serve replaces the worker and the call can be retried", ErrWorkerLost, o.Err)}
	}
	return o.Result, worker.Rename(o.Err, entry, action)
}

// callRetryWindow is how long a call keeps retrying while the worker is
// not reachable yet (a replica starting or being replaced).
const callRetryWindow = 90 * time.Second

func (t *TaskExecutor) call(ctx context.Context, proxy, route, config string, req serve.RunRequest) (*serve.Stream, error) {
	deadline := time.Now().Add(callRetryWindow)
	for backoff := retry.New(200*time.Millisecond, 2*time.Second, 2); ; {
		st, err := serve.Call(ctx, t.http, proxy, route, config, req)
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
	t.mu.Lock()
	done := t.spec
	t.mu.Unlock()
	if done != nil {
		return done, nil
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
	proxy, err := serve.ProxyAddress(t.client.Address(), t.opts.ServeAddress)
	if err != nil {
		return nil, err
	}
	envVars := clusterEnv(t.p, t.cfg.Env)
	delete(envVars, synapse.LanguageEnv) // sent with each call (Run)
	spec := &serve.Spec{
		Code: t.p.Code(), PackageName: pkg.Name, BinaryName: worker.BinaryName, EnvVars: envVars,
		RuntimeEnv: t.p.Config().RuntimeEnv, Replicas: t.opts.Replicas, MaxOngoing: t.opts.MaxOngoingRequests,
		CPUs: t.opts.Resources.CPUs, GPUs: t.opts.Resources.GPUs, Memory: t.opts.Resources.Memory,
		Resources: t.opts.Resources.Custom,
	}
	key := serve.AppKey(*spec)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.spec, t.appKey, t.pkg, t.pkgCached, t.proxy = spec, key, pkg, pkgCached, proxy
	t.state = filepath.Join(built.CacheDir, stateSubdir, stateKey(t.client.Address(), proxy, key)+".json")
	return spec, nil
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
	t.deployMu.Lock()
	defer t.deployMu.Unlock()
	t.mu.Lock()
	known := t.app != nil
	t.mu.Unlock()
	if known {
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
	t.mu.Lock()
	pkg := t.pkg
	t.mu.Unlock()
	if _, err := ensurePackage(ctx, t.client, pkg); err != nil {
		return false, err
	}
	app, deployed, err := serve.Deploy(ctx, t.client, *spec, status)
	if err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.app, t.deployed = app, deployed
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
// (its replica was killed or replaced) before the run ended, whether the
// call went straight to the worker or through the Serve proxy. Retrying
// the call is safe as far as synapse-go is concerned: the run's outcome
// never reached the caller.
var ErrWorkerLost = worker.ErrWorkerLost

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
