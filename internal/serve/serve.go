// Package serve deploys plugin workers as Ray Serve applications (task
// mode) and calls them. Each Serve replica runs the SDK's small Python host
// (python/synapse_serve.py), which starts the plugin binary once in worker
// mode and streams run requests to it (docs/protocol.md).
package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/retry"
)

//go:embed python/synapse_bridge.py python/synapse_serve.py
var hostFS embed.FS

// HostFiles returns the Python host modules, by their path in a package.
func HostFiles() map[string][]byte {
	out := map[string][]byte{}
	for _, name := range []string{"synapse_bridge.py", "synapse_serve.py"} {
		b, err := hostFS.ReadFile("python/" + name)
		if err != nil {
			panic("serve: embedded host file missing: " + name) // a build defect
		}
		out[name] = b
	}
	return out
}

// AppPrefix starts the name of every application this SDK deploys.
const AppPrefix = "synapse-"

// Spec is a plugin worker application to deploy.
type Spec struct {
	Code        string            // plugin code
	PackageName string            // _ray_pkg_<hex>.zip holding the binary and the host
	BinaryName  string            // the binary's name in the package
	EnvVars     map[string]string // the replica's environment
	RuntimeEnv  map[string]any    // config.yaml runtime_env, merged under ours
	Replicas    int               // default 1
	MaxOngoing  int               // max_ongoing_requests per replica; default 1
	CPUs, GPUs  float64
	Memory      int64
	Resources   map[string]float64 // custom resources of each replica
}

// AppName is the application's name: the plugin code and the package's
// content hash, so a changed plugin deploys as a new application.
func AppName(code, packageName string) string {
	h := strings.TrimSuffix(strings.TrimPrefix(packageName, "_ray_pkg_"), ".zip")
	if len(h) > 8 {
		h = h[:8]
	}
	return AppPrefix + code + "-" + h
}

// ownedBy reports whether app was deployed by this SDK for plugin code.
func ownedBy(app, code string) bool {
	rest, ok := strings.CutPrefix(app, AppPrefix+code+"-")
	return ok && len(rest) == 8 && !strings.Contains(rest, "-")
}

// appConfig is the ServeApplicationSchema of spec.
func appConfig(spec Spec) map[string]any {
	name := AppName(spec.Code, spec.PackageName)
	runtimeEnv := map[string]any{}
	for k, v := range spec.RuntimeEnv {
		runtimeEnv[k] = v
	}
	env := map[string]any{}
	if existing, ok := runtimeEnv["env_vars"].(map[string]any); ok {
		for k, v := range existing {
			env[k] = fmt.Sprint(v)
		}
	}
	for k, v := range spec.EnvVars {
		env[k] = v
	}
	runtimeEnv["working_dir"] = "gcs://" + spec.PackageName
	runtimeEnv["env_vars"] = env
	actor := map[string]any{}
	if spec.CPUs > 0 {
		actor["num_cpus"] = spec.CPUs
	}
	if spec.GPUs > 0 {
		actor["num_gpus"] = spec.GPUs
	}
	if len(spec.Resources) > 0 {
		actor["resources"] = spec.Resources
	}
	if spec.Memory > 0 {
		actor["memory"] = spec.Memory
	}
	deployment := map[string]any{
		"name":                 "PluginWorker",
		"num_replicas":         max(spec.Replicas, 1),
		"max_ongoing_requests": max(spec.MaxOngoing, 1),
		// Notice a dead worker quickly, so Serve replaces the replica.
		"health_check_period_s":  2,
		"health_check_timeout_s": 10,
	}
	if len(actor) > 0 {
		deployment["ray_actor_options"] = actor
	}
	// direct: the worker also takes calls straight from callers
	// (DirectHeader); max_ongoing caps its runs of both paths; config is
	// the fingerprint of the rest of this config (ConfigHeader), so a
	// caller never takes a worker of another config for its own.
	args := map[string]any{"binary": "./" + spec.BinaryName, "direct": true, "max_ongoing": max(spec.MaxOngoing, 1)}
	app := map[string]any{
		"name":         name,
		"route_prefix": "/" + name,
		"import_path":  "synapse_serve:build",
		"args":         args,
		"runtime_env":  runtimeEnv,
		"deployments":  []any{deployment},
	}
	b, _ := json.Marshal(app) // maps of JSON values: never fails
	sum := sha256.Sum256(b)
	args["config"] = hex.EncodeToString(sum[:])
	return app
}

// AppKey identifies everything Deploy would write for spec (the
// application's whole config): two specs with the same key deploy the same
// application. It is a hex SHA-256, which the workers of the application
// know (args "config") and name in ConfigHeader.
func AppKey(spec Spec) string {
	args := appConfig(spec)["args"].(map[string]any)
	return args["config"].(string)
}

// App is a deployed plugin worker application.
type App struct {
	Name        string `json:"name"`
	Code        string `json:"code"`
	RoutePrefix string `json:"route_prefix"`
	Status      string `json:"status"`
	Message     string `json:"message,omitempty"`
}

// DeployError is a deployment Serve reported as failed.
type DeployError struct {
	App     string
	Status  string
	Message string
}

func (e *DeployError) Error() string {
	return fmt.Sprintf("deploy %s: Serve reports %s: %s", e.App, e.Status, strings.TrimSpace(e.Message))
}

// Deploy makes the application of spec RUNNING: it reads the declarative
// config, adds this plugin's application beside every application deployed
// (older versions of the same plugin included, so they keep serving),
// writes it back, and polls until the new application is RUNNING. Then
// the older versions of the plugin are removed. If the new version fails
// (DEPLOY_FAILED, or not RUNNING within DeployTimeout) it is removed again,
// the older ones are left serving, and the error carries Serve's reason.
// An application already running with the same config is reused without a
// write. status, if not nil, is told what is happening.
func Deploy(ctx context.Context, c *ray.Client, spec Spec, status func(string)) (app *App, deployed bool, err error) {
	if status == nil {
		status = func(string) {}
	}
	want := appConfig(spec)
	name := want["name"].(string)
	details, err := c.ServeApplications(ctx)
	if err != nil {
		return nil, false, err
	}
	if cur, ok := details.Applications[name]; ok && cur.Status == ray.AppRunning && sameConfig(cur.DeployedAppConfig, want) {
		return &App{Name: name, Code: spec.Code, RoutePrefix: cur.RoutePrefix, Status: cur.Status}, false, nil
	}
	status("deploying " + name)
	if err := rewrite(ctx, c, details, func(n string) bool { return n != name }, want); err != nil {
		return nil, false, fmt.Errorf("deploy %s: %w", name, err)
	}
	a, err := waitRunning(ctx, c, name, status)
	if err != nil {
		// Leave the older version serving: take the failed one out again.
		if d, rerr := c.ServeApplications(context.WithoutCancel(ctx)); rerr == nil {
			_ = rewrite(context.WithoutCancel(ctx), c, d, func(n string) bool { return n != name }, nil)
		}
		return nil, true, err
	}
	if d, err := c.ServeApplications(ctx); err == nil {
		older := func(n string) bool { return !(ownedBy(n, spec.Code) && n != name) }
		if slices.ContainsFunc(sortedNames(d.Applications), func(n string) bool { return !older(n) }) {
			status("removing the older versions of " + spec.Code)
			if err := rewrite(ctx, c, d, older, nil); err != nil {
				status("could not remove the older versions: " + err.Error())
			}
		}
	}
	a.Code = spec.Code
	return a, true, nil
}

// rewrite writes the declarative Serve config: the deployed applications
// for which keep is true (and that are not being deleted), plus add when it
// is not nil. An application without a deployed config cannot be kept, so
// rewrite refuses to write a config that would drop it.
func rewrite(ctx context.Context, c *ray.Client, details *ray.ServeDetails, keep func(name string) bool, add map[string]any) error {
	apps := []any{}
	for _, n := range sortedNames(details.Applications) {
		a := details.Applications[n]
		if !keep(n) || a.Status == ray.AppDeleting {
			continue
		}
		if a.DeployedAppConfig == nil {
			return fmt.Errorf("application %q has no deployed config to keep; refusing to write a config that would remove it", n)
		}
		apps = append(apps, a.DeployedAppConfig)
	}
	if add != nil {
		apps = append(apps, add)
	}
	config := map[string]any{"applications": apps}
	if details.ProxyLocation != "" {
		config["proxy_location"] = details.ProxyLocation
	}
	return c.PutServeApplications(ctx, config)
}

// sameConfig compares a deployed config with the wanted one as JSON values.
func sameConfig(deployed, want map[string]any) bool {
	if deployed == nil {
		return false
	}
	a, _ := json.Marshal(deployed)
	b, _ := json.Marshal(want)
	var x, y any
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	return reflect.DeepEqual(x, y)
}

func sortedNames(m map[string]ray.ServeApplication) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DeployTimeout bounds how long Deploy waits for an application to run.
var DeployTimeout = 10 * time.Minute

// missingGrace is how long an application may be absent from the Serve
// config right after it was written before Deploy gives up on it.
var missingGrace = 15 * time.Second

func waitRunning(ctx context.Context, c *ray.Client, name string, status func(string)) (*App, error) {
	ctx, cancel := context.WithTimeout(ctx, DeployTimeout)
	defer cancel()
	start, last, lastMsg, failures := time.Now(), "", "", 0
	for backoff := retry.New(200*time.Millisecond, 2*time.Second, 2); ; {
		details, err := c.ServeApplications(ctx)
		switch {
		case err != nil:
			var he *ray.HTTPError
			if failures++; errors.As(err, &he) && he.Status < 500 || failures >= 5 {
				return nil, fmt.Errorf("deploy %s: read the Serve status: %w", name, err)
			}
		default:
			failures = 0
			a, ok := details.Applications[name]
			if !ok {
				if time.Since(start) > missingGrace {
					return nil, fmt.Errorf("deploy %s: the application is not in the Serve config any more; another deploy may have replaced the config at the same time: run again", name)
				}
				break
			}
			if a.Status != last {
				status(strings.ToLower(a.Status))
				last = a.Status
			}
			if m := appMessage(a); m != "" && m != lastMsg {
				status(m) // Serve's reason for waiting: resources, a runtime env, …
				lastMsg = m
			}
			switch a.Status {
			case ray.AppRunning:
				return &App{Name: name, RoutePrefix: a.RoutePrefix, Status: a.Status}, nil
			case ray.AppDeployFailed:
				return nil, &DeployError{App: name, Status: a.Status, Message: appMessage(a)}
			}
		}
		if err := backoff.Wait(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				if last == "" {
					last = "not started"
				}
				return nil, &DeployError{App: name, Status: last, Message: fmt.Sprintf("still %s after %v (the older version, if any, keeps serving): %s", strings.ToLower(last), DeployTimeout, lastMsg)}
			}
			return nil, err
		}
	}
}

// appMessage is Serve's message about an application and its deployments.
func appMessage(a ray.ServeApplication) string {
	parts := []string{}
	if m := strings.TrimSpace(a.Message); m != "" {
		parts = append(parts, m)
	}
	for _, dn := range slices.Sorted(maps.Keys(a.Deployments)) {
		if m := strings.TrimSpace(a.Deployments[dn].Message); m != "" {
			parts = append(parts, dn+": "+m)
		}
	}
	return strings.Join(parts, "\n")
}

// List returns the applications this SDK deployed (all plugins, or one code).
func List(ctx context.Context, c *ray.Client, code string) ([]App, error) {
	details, err := c.ServeApplications(ctx)
	if err != nil {
		return nil, err
	}
	var out []App
	for _, n := range sortedNames(details.Applications) {
		a := details.Applications[n]
		appCode, ok := codeOf(n)
		if !ok || (code != "" && appCode != code) || a.Status == ray.AppDeleting {
			continue
		}
		out = append(out, App{Name: n, Code: appCode, RoutePrefix: a.RoutePrefix, Status: a.Status, Message: a.Message})
	}
	return out, nil
}

// codeOf returns the plugin code of an application name of ours.
func codeOf(app string) (string, bool) {
	rest, ok := strings.CutPrefix(app, AppPrefix)
	i := strings.LastIndexByte(rest, '-')
	if !ok || i <= 0 || len(rest)-i-1 != 8 {
		return "", false
	}
	return rest[:i], true
}

// Down removes this SDK's applications of plugin code (all of them when
// code is empty) by rewriting the declarative config without them; other
// applications are kept. It returns the names removed.
func Down(ctx context.Context, c *ray.Client, code string) ([]string, error) {
	details, err := c.ServeApplications(ctx)
	if err != nil {
		return nil, err
	}
	var keep []any
	var removed []string
	for _, n := range sortedNames(details.Applications) {
		a := details.Applications[n]
		if a.Status == ray.AppDeleting {
			continue // already on its way out: neither kept nor removed again
		}
		appCode, ours := codeOf(n)
		if ours && (code == "" || appCode == code) {
			removed = append(removed, n)
			continue
		}
		if a.DeployedAppConfig == nil {
			return nil, fmt.Errorf("remove plugin applications: application %q has no deployed config to keep; refusing to write a config that would remove it", n)
		}
		keep = append(keep, a.DeployedAppConfig)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	config := map[string]any{"applications": keep}
	if keep == nil {
		config["applications"] = []any{}
	}
	if details.ProxyLocation != "" {
		config["proxy_location"] = details.ProxyLocation
	}
	if err := c.PutServeApplications(ctx, config); err != nil {
		return nil, err
	}
	return removed, nil
}

// ProxyAddress returns the Serve HTTP proxy for a dashboard address: the
// same host on port 8000, unless override is set.
func ProxyAddress(dashboard, override string) (string, error) {
	if override != "" {
		if !strings.Contains(override, "://") {
			override = "http://" + override
		}
		return strings.TrimRight(override, "/"), nil
	}
	u, err := url.Parse(dashboard)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Hostname() + ":8000", nil
}

// RunRequest is the body of a run call.
type RunRequest struct {
	Action string          `json:"action"`
	Params json.RawMessage `json:"params,omitempty"`
	JobID  string          `json:"job_id,omitempty"`
	Env    map[string]any  `json:"env,omitempty"`
}

// CallError is a run call the proxy or replica refused before streaming.
type CallError struct {
	Status int
	Body   string
}

// Message is the answer's {"error": …} text, or its body as it is.
func (e *CallError) Message() string {
	var b struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(e.Body), &b) == nil && b.Error != "" {
		return b.Error
	}
	return strings.TrimSpace(e.Body)
}

func (e *CallError) Error() string {
	return fmt.Sprintf("call plugin worker: %d %s: %s", e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

// Retryable reports whether the call may succeed later (no replica yet,
// a replica being replaced, an application being updated).
func (e *CallError) Retryable() bool {
	return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusBadGateway ||
		e.Status == http.StatusInternalServerError || e.Status == http.StatusNotFound
}

// DirectHeader is the response header of a run call through the proxy that
// gives the worker's own address (http://NODE_IP:PORT/TOKEN/), for
// CallDirect. It is absent when the worker takes no direct calls.
const DirectHeader = "X-Synapse-Direct"

// Stream is the answer to a run call.
type Stream struct {
	// Body is the NDJSON stream of the run's worker protocol messages.
	Body io.ReadCloser
	// Direct is the worker's own address (DirectHeader), or "".
	Direct string
	// Config is the fingerprint of the application config the worker
	// runs (ConfigHeader; AppKey), or "".
	Config string
}

// ConfigHeader names, on a run call's answer, the AppKey of the config the
// worker runs, and on a direct call the one the caller expects (a worker
// of another config answers 409).
const ConfigHeader = protocol.ConfigHeader

// Call posts req to the application's run route through the Serve proxy.
// Cancelling ctx aborts the call; the host then cancels the run on the
// worker. Errors before the stream starts are *CallError (an HTTP status)
// or the transport's error.
//
// config, when not empty, is the caller's AppKey: a worker running another
// config answers 409 before the run starts (the application was updated
// in place by a deploy of another config).
func Call(ctx context.Context, h *http.Client, proxy, routePrefix, config string, req RunRequest) (*Stream, error) {
	return post(ctx, h, proxy+strings.TrimRight(routePrefix, "/")+"/run", config, "call plugin worker at "+proxy, req)
}

// MaxBody is the largest run request a worker takes: protocol.MaxLine less
// room for the host's framing. A larger one is *TooLargeError, unsent.
const MaxBody = protocol.MaxLine - 64<<10

// TooLargeError is a run request over MaxBody bytes.
type TooLargeError struct{ Size int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the run request is %d bytes; a plugin worker takes at most %d (pass large inputs as files or URLs)", e.Size, MaxBody)
}

// CallDirect posts req straight to a worker at its DirectHeader address,
// skipping the Serve proxy and the replica's Python host. A worker that is
// gone refuses the connection; one restarted in its place answers 404; one
// running max_ongoing_requests runs answers 503: in every case the run did
// not start and the caller may go through the proxy instead.
//
// config is the caller's AppKey: a worker running another config answers
// 409. Transport errors do not quote the address (it holds the worker's
// token).
func CallDirect(ctx context.Context, h *http.Client, worker, config string, req RunRequest) (*Stream, error) {
	return post(ctx, h, worker+"run", config, "call plugin worker directly", req)
}

func post(ctx context.Context, h *http.Client, target, config, what string, req RunRequest) (*Stream, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<" as is, not 6 bytes of \u003c
	if err := enc.Encode(req); err != nil {
		return nil, err
	}
	if buf.Len() > MaxBody {
		return nil, &TooLargeError{Size: buf.Len()}
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, target, &buf)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "synapse-go")
	if config != "" {
		r.Header.Set(ConfigHeader, config)
	}
	resp, err := h.Do(r)
	if err != nil {
		var ue *url.Error
		if config != "" && errors.As(err, &ue) {
			err = ue.Err // without the URL and its token
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, &CallError{Status: resp.StatusCode, Body: string(b)}
	}
	return &Stream{Body: resp.Body, Direct: CheckDirect(resp.Header.Get(DirectHeader)), Config: resp.Header.Get(ConfigHeader)}, nil
}

// CheckDirect returns v when it is a direct address as the host sends it
// (an http URL with a host, ending in a slash), else "".
func CheckDirect(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "http" || u.Host == "" || !strings.HasSuffix(u.Path, "/") || u.RawQuery != "" {
		return ""
	}
	return v
}
