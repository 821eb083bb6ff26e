//go:build integration

package ray_test

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
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/serve"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/plugintest"
	"github.com/synapse-sdk/synapse-go/ray"
)

// deployOther deploys a Python Serve application that is not ours, the
// way another team would (read-merge-write), and returns its route.
func deployOther(t *testing.T, ctx context.Context, c *rayapi.Client) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("hello_app.py")
	_, _ = io.WriteString(w, "from ray import serve\n\n@serve.deployment(ray_actor_options={'num_cpus': 0.1})\nclass Hello:\n    async def __call__(self, request):\n        return 'hello from another app'\n\napp = Hello.bind()\n")
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	pkg := "_ray_pkg_" + hex.EncodeToString(sum[:8]) + ".zip"
	if _, err := c.EnsurePackage(ctx, pkg, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	details, err := c.ServeApplications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apps := []any{}
	for n, a := range details.Applications {
		if n != "other-team" && a.DeployedAppConfig != nil {
			apps = append(apps, a.DeployedAppConfig)
		}
	}
	apps = append(apps, map[string]any{"name": "other-team", "route_prefix": "/other-team", "import_path": "hello_app:app",
		"runtime_env": map[string]any{"working_dir": "gcs://" + pkg}})
	if err := c.PutServeApplications(ctx, map[string]any{"applications": apps}); err != nil {
		t.Fatal(err)
	}
	waitApp(t, ctx, c, "other-team")
	return "/other-team"
}

func waitApp(t *testing.T, ctx context.Context, c *rayapi.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := c.ServeApplications(ctx)
		if err == nil && d.Applications[name].Status == "RUNNING" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("application %s is not RUNNING after 3 minutes", name)
}

func callOther(t *testing.T, addr string) string {
	t.Helper()
	proxy, _ := serve.ProxyAddress(addr, "")
	resp, err := http.Get(proxy + "/other-team")
	if err != nil {
		t.Fatalf("call the other application: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// staleState makes the task-mode state remembered for app name its only
// worker address (ray/taskstate.go; the build cache of this process).
func staleState(t *testing.T, app, addr string) {
	t.Helper()
	root := os.Getenv("SYNAPSE_CACHE_DIR")
	if root == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		root = filepath.Join(uc, "synapse-go", "plugins")
	}
	files, _ := filepath.Glob(filepath.Join(root, "task", "*.json"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var st map[string]any
		if json.Unmarshal(b, &st) != nil || st["app"] != app {
			continue
		}
		st["workers"] = []string{addr}
		b, _ = json.Marshal(st)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no task state remembered for %s in %s", app, root)
	}
}

// loadPlugin loads the test plugin of the integration suite.
func loadPlugin(t testing.TB) *plugin.Plugin {
	t.Helper()
	p, err := plugin.Load(jobPlugin)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntegrationTaskMode(t *testing.T) {
	addr := rayAddress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := rayapi.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	deployOther(t, ctx, c)
	if _, err := ray.DownTasks(ctx, addr, "jobtest"); err != nil { // start from no worker
		t.Fatal(err)
	}

	rec := plugintest.NewRecorder()
	taskOpts := ray.TaskOptions{Cluster: ray.Cluster{Address: addr, Resources: ray.Resources{CPUs: 0.5}}, MaxOngoingRequests: 4}
	task, err := ray.NewTaskExecutor(loadPlugin(t), taskOpts, synapse.WithLogger(rec),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if err != nil {
		t.Fatal(err)
	}

	// First call: deploys, runs, returns the result and the streamed events.
	res, err := task.Run(ctx, "echo", map[string]any{"steps": 2})
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if !task.Deployed() {
		t.Error("the first call did not deploy")
	}
	first := res.(map[string]any)
	if first["from_flag"] != "explicit" || first["from_config"] != "yes" {
		t.Errorf("result = %v", first)
	}
	if p, ok := rec.LastPercent("echo"); !ok || p != 100 || len(rec.Logs("step")) != 3 {
		t.Errorf("events: progress %v (%v), %d step logs", p, ok, len(rec.Logs("step")))
	}

	if task.Timings().Direct {
		t.Error("the first call went straight to the worker; it has to learn its address through the proxy")
	}
	// The second call goes straight to the worker, events and all, and the
	// worker checks the params (no local process start).
	rec2 := plugintest.NewRecorder()
	direct, err := ray.NewTaskExecutor(loadPlugin(t), taskOpts, synapse.WithLogger(rec2),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, err := direct.Run(ctx, "echo", map[string]any{"steps": 2})
		if err != nil {
			t.Fatalf("direct call %d: %v", i, err)
		}
		tm := direct.Timings()
		if !tm.Direct || tm.Validate != 0 || res.(map[string]any)["pid"] != first["pid"] {
			t.Errorf("call %d of an executor with the worker known: direct=%v validate=%v pid %v (want direct, no local check, pid %v)", i, tm.Direct, tm.Validate, res.(map[string]any)["pid"], first["pid"])
		}
	}
	if p, ok := rec2.LastPercent("echo"); !ok || p != 100 || len(rec2.Logs("step")) != 6 {
		t.Errorf("direct calls' events: progress %v (%v), %d step logs, want 100 and 6", p, ok, len(rec2.Logs("step")))
	}
	_, err = direct.Run(ctx, "echo", map[string]any{"steps": -1})
	var ve *synapse.ValidationError
	if !errors.As(err, &ve) || ve.Action != "echo" || !strings.Contains(err.Error(), "steps: must be >= 0 (got -1)") || !direct.Timings().Direct {
		t.Errorf("validation by the worker: %v (direct %v)", err, direct.Timings().Direct)
	}
	// ProxyOnly never calls the worker directly.
	proxyOpts := taskOpts
	proxyOpts.ProxyOnly = true
	viaProxy, err := ray.NewTaskExecutor(loadPlugin(t), proxyOpts, synapse.WithLogger(synapse.DiscardLogger),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := viaProxy.Run(ctx, "echo", nil); err != nil || viaProxy.Timings().Direct {
			t.Errorf("ProxyOnly call %d: %v, direct %v", i, err, viaProxy.Timings().Direct)
		}
	}
	// A remembered address that is stale (a worker gone): the call falls
	// back to the proxy and learns the worker's real address.
	staleState(t, direct.App(), "http://127.0.0.1:9/0123456789abcdef0123456789abcdef/")
	stale, err := ray.NewTaskExecutor(loadPlugin(t), taskOpts, synapse.WithLogger(synapse.DiscardLogger),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if err != nil {
		t.Fatal(err)
	}
	for i, wantDirect := range []bool{false, true} {
		if _, err := stale.Run(ctx, "echo", nil); err != nil || stale.Timings().Direct != wantDirect {
			t.Errorf("call %d after a stale address: %v, direct %v (want %v)", i, err, stale.Timings().Direct, wantDirect)
		}
	}

	// A second executor finds the worker deployed: no redeploy, same process.
	again, err := ray.NewTaskExecutor(loadPlugin(t), taskOpts, synapse.WithLogger(synapse.DiscardLogger),
		synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": "explicit"})))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err = again.Run(ctx, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Deployed() || res.(map[string]any)["pid"] != first["pid"] {
		t.Errorf("second executor: deployed=%v pid %v, want the worker %v reused", again.Deployed(), res.(map[string]any)["pid"], first["pid"])
	}
	t.Logf("a call on a fresh executor with the worker deployed took %v", time.Since(start))

	// Concurrent calls on one executor.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			res, err := task.Run(ctx, "echo", map[string]any{"text": strings.Repeat("x", i)})
			if err != nil {
				errs <- err
			} else if got := res.(map[string]any)["text_len"]; got != float64(i) {
				errs <- fmt.Errorf("call %d got text_len %v", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Typed errors.
	_, err = task.Run(ctx, "fail", nil)
	if !errors.Is(err, synapse.ErrExecution) || !strings.Contains(err.Error(), "the dataset is empty") {
		t.Errorf("fail: %v", err)
	}
	_, err = task.Run(ctx, "crash", nil)
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || !xe.Panicked() {
		t.Errorf("crash: %v", err)
	}
	_, err = task.Run(ctx, "echo", map[string]any{"steps": -1}) // rejected before the action starts
	if !errors.Is(err, synapse.ErrValidation) || !strings.Contains(err.Error(), "steps: must be >= 0 (got -1)") {
		t.Errorf("validation: %v", err)
	}
	if _, err = task.Run(ctx, "nope", nil); !errors.Is(err, synapse.ErrActionNotFound) {
		t.Errorf("unknown action: %v", err)
	}

	// Cancelling the caller's context cancels the action on the worker.
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = task.Run(cctx, "sleep", map[string]any{"seconds": 600})
	ccancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled call: %v", err)
	}

	// Kill the worker process: Serve replaces the replica and later calls work.
	pid := int(first["pid"].(float64))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker %d: %v", pid, err)
	}
	var after map[string]any
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		res, err := task.Run(ctx, "echo", nil)
		if err == nil && res.(map[string]any)["pid"] != first["pid"] {
			after = res.(map[string]any)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if after == nil {
		t.Fatal("no call succeeded on a new worker within 3 minutes of killing the old one")
	}
	// ... and go straight to the new worker again.
	for i := range 2 {
		res, err := task.Run(ctx, "echo", nil)
		if err != nil || res.(map[string]any)["pid"] != after["pid"] {
			t.Fatalf("call %d after the restart: %v, %v", i, res, err)
		}
	}
	if !task.Timings().Direct {
		t.Error("calls after the worker's restart do not go straight to the new worker")
	}

	// The other team's application survived all our deploys.
	if got := callOther(t, addr); got != "hello from another app" {
		t.Errorf("other application answered %q", got)
	}
	apps, err := serve.List(ctx, c, "jobtest")
	if err != nil || len(apps) != 1 {
		t.Errorf("our applications: %+v, %v", apps, err)
	}
	if removed, err := serve.Down(ctx, c, "jobtest"); err != nil || len(removed) != 1 {
		t.Errorf("Down: %v, %v", removed, err)
	}
	// Removal is asynchronous (the application is DELETING for a moment).
	var names []string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		d, err := c.ServeApplications(ctx)
		if err != nil {
			continue
		}
		names = names[:0]
		for n := range d.Applications {
			names = append(names, n)
		}
		sort.Strings(names)
		if strings.Join(names, ",") == "other-team" {
			break
		}
	}
	if strings.Join(names, ",") != "other-team" {
		t.Errorf("applications after Down: %v", names)
	}
	if got := callOther(t, addr); got != "hello from another app" {
		t.Errorf("other application after Down answered %q", got)
	}
}

// BenchmarkTaskWarmCall is a warm task-mode call of a trivial action on the
// integration head, the worker deployed and reused: straight to the worker
// ("direct"), and through the Serve proxy ("proxy", the baseline).
func BenchmarkTaskWarmCall(b *testing.B) {
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		b.Skip("no Ray head: run scripts/bench-task.sh")
	}
	for _, tt := range []struct {
		name      string
		proxyOnly bool
	}{{"direct", false}, {"proxy", true}} {
		b.Run(tt.name, func(b *testing.B) {
			task, err := ray.NewTaskExecutor(loadPlugin(b), ray.TaskOptions{Cluster: ray.Cluster{Address: addr}, ProxyOnly: tt.proxyOnly}, synapse.WithLogger(synapse.DiscardLogger))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for range 2 { // deploy or find the worker; learn its address
				if _, err := task.Run(ctx, "echo", map[string]any{"steps": 0}); err != nil {
					b.Fatal(err)
				}
			}
			var lat []time.Duration
			direct := 0
			for b.Loop() {
				start := time.Now()
				if _, err := task.Run(ctx, "echo", map[string]any{"steps": 0}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if task.Timings().Direct {
					direct++
				}
			}
			b.ReportMetric(float64(direct)/float64(len(lat)), "direct-ratio")
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

// A run never runs on a worker of another application config: after
// another process updates the application in place (same name, another
// env), the first executor's next call is refused by the new worker before
// it runs (409, directly or through the proxy), and it deploys its own
// config again.
func TestIntegrationTaskDirectConfig(t *testing.T) {
	addr := rayAddress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := loadPlugin(t)
	if _, err := ray.DownTasks(ctx, addr, p.Code()); err != nil {
		t.Fatal(err)
	}
	defer ray.DownTasks(context.WithoutCancel(ctx), addr, p.Code())
	opts := ray.TaskOptions{Cluster: ray.Cluster{Address: addr, Resources: ray.Resources{CPUs: 0.1}}}
	executor := func(flag string) *ray.TaskExecutor {
		t.Helper()
		e, err := ray.NewTaskExecutor(loadPlugin(t), opts, synapse.WithLogger(synapse.DiscardLogger),
			synapse.WithEnv(synapse.NewEnv(map[string]any{"FROM_FLAG": flag})))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	run := func(e *ray.TaskExecutor) (flag string, direct bool) {
		t.Helper()
		res, err := e.Run(ctx, "echo", nil)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return res.(map[string]any)["from_flag"].(string), e.Timings().Direct
	}
	a := executor("a")
	for i, wantDirect := range []bool{false, true} {
		if flag, direct := run(a); flag != "a" || direct != wantDirect {
			t.Fatalf("call %d of a: from_flag %q, direct %v (want a, %v)", i, flag, direct, wantDirect)
		}
	}
	b := executor("b")
	if flag, _ := run(b); flag != "b" || !b.Deployed() {
		t.Fatalf("b: from_flag %q, deployed %v: want an in-place update to b", flag, b.Deployed())
	}
	// a's next call finds its worker gone, and b's worker refuses a's call
	// through the proxy (409) before running it: a deploys its own again.
	for i, wantDirect := range []bool{false, true, true} {
		if flag, direct := run(a); flag != "a" || direct != wantDirect {
			t.Fatalf("call %d of a after the update to b: from_flag %q, direct %v (want a, %v)", i, flag, direct, wantDirect)
		}
	}
	if !a.Deployed() {
		t.Error("a did not deploy its config again")
	}
	// And b, in turn, gets b again.
	if flag, _ := run(b); flag != "b" {
		t.Fatalf("b after a's redeploy: from_flag %q", flag)
	}
}
