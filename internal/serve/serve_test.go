package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/ray"
)

// fakeServe is a dashboard that keeps a declarative Serve config. Apps
// become RUNNING (or DEPLOY_FAILED when failApp names them) on the first
// GET after a PUT.
type fakeServe struct {
	mu      sync.Mutex
	apps    map[string]ray.ServeApplication
	puts    []map[string]any
	failApp string
	forget  bool // drop every application from the config after a PUT (a concurrent writer)
	status  int  // answer every request with this status when non-zero
	t       *testing.T
}

func newFake(t *testing.T) (*fakeServe, *ray.Client) {
	f := &fakeServe{apps: map[string]ray.ServeApplication{}, t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := ray.NewClient(srv.URL, ray.WithToken(""))
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeServe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/api/version" { // a Ray dashboard, with or without Serve
		_, _ = io.WriteString(w, `{"version": "4", "ray_version": "2.60.0"}`)
		return
	}
	if f.status != 0 {
		http.Error(w, "Serve dependencies are not installed. Please run `pip install \"ray[serve]\"`.", f.status)
		return
	}
	if r.URL.Path != "/api/serve/applications/" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodDelete:
		f.t.Error("DELETE /api/serve/applications/ was called: it would shut Serve down")
	case http.MethodGet:
		if r.URL.Query().Get("api_type") != "declarative" {
			f.t.Errorf("GET without api_type=declarative: %s", r.URL)
		}
		for n, a := range f.apps {
			if a.Status == "DEPLOYING" {
				a.Status = "RUNNING"
				if n == f.failApp {
					a.Status, a.Message = "DEPLOY_FAILED", "ImportError: no module named synapse_serve"
				}
				f.apps[n] = a
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"proxy_location": "EveryNode", "applications": f.apps})
	case http.MethodPut:
		var cfg map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &cfg); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.puts = append(f.puts, cfg)
		next := map[string]ray.ServeApplication{}
		for _, raw := range cfg["applications"].([]any) {
			app := raw.(map[string]any)
			name := app["name"].(string)
			status := "DEPLOYING"
			if old, ok := f.apps[name]; ok && sameConfig(old.DeployedAppConfig, app) {
				status = old.Status
			}
			next[name] = ray.ServeApplication{Name: name, Status: status, RoutePrefix: app["route_prefix"].(string), DeployedAppConfig: app}
		}
		f.apps = next
		if f.forget {
			f.apps = map[string]ray.ServeApplication{}
		}
	}
}

func spec(code, pkg string) Spec {
	return Spec{Code: code, PackageName: pkg, BinaryName: "synapse-plugin", EnvVars: map[string]string{"A": "1"}, CPUs: 0.5, Memory: 1 << 30}
}

func TestDeployReadMergeWrite(t *testing.T) {
	f, c := newFake(t)
	other := map[string]any{"name": "someone-else", "route_prefix": "/else", "import_path": "hello:app"}
	f.apps["someone-else"] = ray.ServeApplication{Name: "someone-else", Status: "RUNNING", RoutePrefix: "/else", DeployedAppConfig: other}
	ctx := context.Background()

	var statuses []string
	app, deployed, err := Deploy(ctx, c, spec("det", "_ray_pkg_0123456789abcdef.zip"), func(s string) { statuses = append(statuses, s) })
	if err != nil || !deployed {
		t.Fatalf("Deploy = %v, %v", deployed, err)
	}
	if app.Name != "synapse-det-01234567" || app.RoutePrefix != "/synapse-det-01234567" || app.Status != "RUNNING" {
		t.Errorf("app = %+v", app)
	}
	if len(statuses) == 0 || statuses[len(statuses)-1] != "running" {
		t.Errorf("statuses = %v", statuses)
	}
	if _, ok := f.apps["someone-else"]; !ok {
		t.Fatal("the other application was removed")
	}
	put := f.puts[0]
	if put["proxy_location"] != "EveryNode" || len(put["applications"].([]any)) != 2 {
		t.Errorf("PUT = %v", put)
	}
	ours := f.apps["synapse-det-01234567"].DeployedAppConfig
	dep := ours["deployments"].([]any)[0].(map[string]any)
	actor := dep["ray_actor_options"].(map[string]any)
	env := ours["runtime_env"].(map[string]any)
	if ours["import_path"] != "synapse_serve:build" || ours["args"].(map[string]any)["binary"] != "./synapse-plugin" ||
		env["working_dir"] != "gcs://_ray_pkg_0123456789abcdef.zip" || env["env_vars"].(map[string]any)["A"] != "1" ||
		actor["num_cpus"] != 0.5 || actor["memory"] != float64(1<<30) || dep["num_replicas"] != 1.0 || dep["max_ongoing_requests"] != 1.0 {
		t.Errorf("application config = %v", ours)
	}

	// The same spec again: reused, no write.
	_, deployed, err = Deploy(ctx, c, spec("det", "_ray_pkg_0123456789abcdef.zip"), nil)
	if err != nil || deployed || len(f.puts) != 1 {
		t.Errorf("second Deploy: deployed=%v err=%v puts=%d", deployed, err, len(f.puts))
	}
	// Other resources: the same application is updated.
	s := spec("det", "_ray_pkg_0123456789abcdef.zip")
	s.Replicas = 2
	if _, deployed, err = Deploy(ctx, c, s, nil); err != nil || !deployed || len(f.puts) != 2 {
		t.Errorf("Deploy with new replicas: deployed=%v err=%v puts=%d", deployed, err, len(f.puts))
	}
	// A new version of the plugin replaces the old application.
	if _, _, err = Deploy(ctx, c, spec("det", "_ray_pkg_fedcba9876543210.zip"), nil); err != nil {
		t.Fatal(err)
	}
	if _, old := f.apps["synapse-det-01234567"]; old {
		t.Error("the old version of the plugin is still deployed")
	}
	if _, ok := f.apps["synapse-det-fedcba98"]; !ok {
		t.Error("the new version is not deployed")
	}
	// Another plugin's application is kept.
	if _, _, err = Deploy(ctx, c, spec("other", "_ray_pkg_1111111111111111.zip"), nil); err != nil {
		t.Fatal(err)
	}
	if len(f.apps) != 3 {
		t.Errorf("apps = %v", keys(f.apps))
	}

	apps, err := List(ctx, c, "")
	if err != nil || len(apps) != 2 || apps[0].Code != "det" || apps[1].Code != "other" {
		t.Errorf("List = %+v, %v", apps, err)
	}
	removed, err := Down(ctx, c, "det")
	if err != nil || len(removed) != 1 || removed[0] != "synapse-det-fedcba98" || len(f.apps) != 2 {
		t.Errorf("Down(det) = %v, %v; apps %v", removed, err, keys(f.apps))
	}
	removed, err = Down(ctx, c, "")
	if err != nil || len(removed) != 1 || len(f.apps) != 1 || f.apps["someone-else"].Name == "" {
		t.Errorf("Down() = %v, %v; apps %v", removed, err, keys(f.apps))
	}
	if removed, err = Down(ctx, c, ""); err != nil || removed != nil {
		t.Errorf("Down with nothing to remove = %v, %v", removed, err)
	}
	// An application being deleted is neither listed, removed again, nor kept.
	f.apps["synapse-gone-12345678"] = ray.ServeApplication{Name: "synapse-gone-12345678", Status: "DELETING", DeployedAppConfig: map[string]any{"name": "synapse-gone-12345678"}}
	if apps, _ := List(ctx, c, ""); len(apps) != 0 {
		t.Errorf("List shows a DELETING application: %+v", apps)
	}
	if removed, err = Down(ctx, c, "gone"); err != nil || removed != nil {
		t.Errorf("Down of a DELETING application = %v, %v", removed, err)
	}
	if _, _, err := Deploy(ctx, c, spec("new", "_ray_pkg_2222222222222222.zip"), nil); err != nil {
		t.Fatal(err)
	}
	if _, kept := f.apps["synapse-gone-12345678"]; kept {
		t.Error("Deploy wrote a DELETING application back into the config")
	}
}

func keys(m map[string]ray.ServeApplication) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDeployFailureAndRefusals(t *testing.T) {
	f, c := newFake(t)
	f.failApp = "synapse-bad-0123abcd"
	_, _, err := Deploy(context.Background(), c, spec("bad", "_ray_pkg_0123abcd00000000.zip"), nil)
	var de *DeployError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "DEPLOY_FAILED: ImportError: no module named synapse_serve") {
		t.Errorf("error = %v", err)
	}

	// An application without a deployed config cannot be kept: refuse to write.
	f2, c2 := newFake(t)
	f2.apps["imperative"] = ray.ServeApplication{Name: "imperative", Status: "RUNNING"}
	_, _, err = Deploy(context.Background(), c2, spec("x", "_ray_pkg_0000000000000000.zip"), nil)
	if err == nil || !strings.Contains(err.Error(), `application "imperative" has no deployed config to keep`) || len(f2.puts) != 0 {
		t.Errorf("error = %v, puts = %d", err, len(f2.puts))
	}
}

func TestServeNotInstalled(t *testing.T) {
	f, c := newFake(t)
	f.status = http.StatusNotImplemented
	_, _, err := Deploy(context.Background(), c, spec("x", "_ray_pkg_0000000000000000.zip"), nil)
	if !errors.Is(err, ray.ErrServeNotInstalled) || !strings.Contains(err.Error(), `pip install "ray[serve]"`) || !strings.Contains(err.Error(), "--mode job") {
		t.Errorf("error = %v", err)
	}
	if _, err := List(context.Background(), c, ""); !errors.Is(err, ray.ErrServeNotInstalled) {
		t.Errorf("List error = %v", err)
	}
}

func TestNames(t *testing.T) {
	if got := AppName("my-plugin", "_ray_pkg_abcdef0123456789.zip"); got != "synapse-my-plugin-abcdef01" {
		t.Errorf("AppName = %q", got)
	}
	for name, want := range map[string]string{"synapse-my-plugin-abcdef01": "my-plugin", "synapse-x-12345678": "x"} {
		if got, ok := codeOf(name); !ok || got != want {
			t.Errorf("codeOf(%q) = %q, %v", name, got, ok)
		}
	}
	for _, name := range []string{"someone-else", "synapse-", "synapse-x-123", "other-x-12345678"} {
		if _, ok := codeOf(name); ok {
			t.Errorf("codeOf(%q) claimed it", name)
		}
	}
	if !ownedBy("synapse-a-12345678", "a") || ownedBy("synapse-a-b-12345678", "a") || ownedBy("synapse-ab-12345678", "a") {
		t.Error("ownedBy is wrong")
	}
}

func TestProxyAddress(t *testing.T) {
	tests := []struct{ dashboard, override, want string }{
		{"http://127.0.0.1:8265", "", "http://127.0.0.1:8000"},
		{"https://ray.example:443", "", "https://ray.example:8000"},
		{"http://127.0.0.1:8265", "127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"http://127.0.0.1:8265", "http://proxy/", "http://proxy"},
	}
	for _, tt := range tests {
		if got, err := ProxyAddress(tt.dashboard, tt.override); err != nil || got != tt.want {
			t.Errorf("ProxyAddress(%q, %q) = %q, %v", tt.dashboard, tt.override, got, err)
		}
	}
}

func TestCall(t *testing.T) {
	direct := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app/run" || r.URL.Path == "/tok/run" {
			var req RunRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			if direct != "" {
				w.Header().Set(DirectHeader, direct)
			}
			_, _ = io.WriteString(w, `{"type":"result","id":"1","result":{"action":"`+req.Action+`","path":"`+r.URL.Path+`","config":"`+r.Header.Get(ConfigHeader)+`"}}`+"\n")
			return
		}
		http.Error(w, "no replica", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tests := []struct{ header, want string }{
		{"", ""},
		{"http://10.0.0.5:4321/abc/", "http://10.0.0.5:4321/abc/"},
		{"http://[fd00::5]:4321/abc/", "http://[fd00::5]:4321/abc/"},
		{"https://10.0.0.5:4321/abc/", ""}, // only what the host sends
		{"http://10.0.0.5:4321/abc", ""},
		{"http:///abc/", ""},
		{"not a url", ""},
	}
	for _, tt := range tests {
		direct = tt.header
		st, err := Call(t.Context(), srv.Client(), srv.URL, "/app", "", RunRequest{Action: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(st.Body)
		st.Body.Close()
		if !strings.Contains(string(b), `"action":"echo"`) || st.Direct != tt.want {
			t.Errorf("header %q: stream = %s, direct %q, want %q", tt.header, b, st.Direct, tt.want)
		}
	}
	st, err := CallDirect(t.Context(), srv.Client(), srv.URL+"/tok/", "cafe", RunRequest{Action: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(st.Body)
	st.Body.Close()
	if !strings.Contains(string(b), `"path":"/tok/run"`) || !strings.Contains(string(b), `"config":"cafe"`) {
		t.Errorf("direct stream = %s", b)
	}
	// A transport error does not quote the address (its token).
	_, err = CallDirect(t.Context(), srv.Client(), "http://127.0.0.1:1/secrettoken/", "cafe", RunRequest{Action: "echo"})
	if err == nil || strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("error = %v", err)
	}
	_, err = Call(t.Context(), srv.Client(), srv.URL, "/gone", "", RunRequest{Action: "echo"})
	var ce *CallError
	if !errors.As(err, &ce) || ce.Status != 503 || !ce.Retryable() || !strings.Contains(err.Error(), "no replica") {
		t.Errorf("error = %v", err)
	}
}

// A request over MaxBody is refused unsent; "<" is not escaped (it would
// take 6 bytes).
func TestCallTooLarge(t *testing.T) {
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = len(b)
	}))
	defer srv.Close()
	big := json.RawMessage(`"` + strings.Repeat("x", MaxBody) + `"`)
	_, err := Call(t.Context(), srv.Client(), srv.URL, "/app", "", RunRequest{Action: "echo", Params: big})
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Size <= MaxBody || got != 0 {
		t.Fatalf("err = %v, server got %d bytes", err, got)
	}
	lt := json.RawMessage(`"` + strings.Repeat("<", 1000) + `"`)
	if st, err := Call(t.Context(), srv.Client(), srv.URL, "/app", "", RunRequest{Action: "echo", Params: lt}); err == nil {
		st.Body.Close()
	}
	if got > 1100 {
		t.Errorf("1,000 '<' took %d bytes on the wire", got)
	}
}

// Two specs that would write the same config have the same key; any
// difference changes it.
func TestAppKey(t *testing.T) {
	base := Spec{Code: "p", PackageName: "_ray_pkg_0123456789abcdef.zip", BinaryName: "synapse-plugin", EnvVars: map[string]string{"A": "1"}}
	same := base
	same.EnvVars = map[string]string{"A": "1"}
	if AppKey(base) != AppKey(same) {
		t.Error("equal specs got different keys")
	}
	// The workers know it: it is in the config Deploy writes.
	if got := appConfig(base)["args"].(map[string]any)["config"]; got != AppKey(base) || len(AppKey(base)) != 64 {
		t.Errorf("args.config = %v, AppKey %q", got, AppKey(base))
	}
	changes := []func(*Spec){
		func(s *Spec) { s.PackageName = "_ray_pkg_fedcba9876543210.zip" },
		func(s *Spec) { s.EnvVars = map[string]string{"A": "2"} },
		func(s *Spec) { s.Replicas = 2 },
		func(s *Spec) { s.MaxOngoing = 3 },
		func(s *Spec) { s.CPUs = 0.5 },
	}
	for i, change := range changes {
		s := base
		change(&s)
		if AppKey(s) == AppKey(base) {
			t.Errorf("change %d kept the key", i)
		}
	}
}

func TestHostFiles(t *testing.T) {
	files := HostFiles()
	if len(files) != 2 || !strings.Contains(string(files["synapse_serve.py"]), "def build") {
		t.Errorf("host files: %d, synapse_serve.py starts %.80q", len(files), files["synapse_serve.py"])
	}
}

func TestDeployLostToAConcurrentWriter(t *testing.T) {
	f, c := newFake(t)
	f.forget = true
	old := missingGrace
	missingGrace = 300 * time.Millisecond
	defer func() { missingGrace = old }()
	_, _, err := Deploy(context.Background(), c, spec("x", "_ray_pkg_0000000000000000.zip"), nil)
	if err == nil || !strings.Contains(err.Error(), "not in the Serve config any more; another deploy may have replaced the config") {
		t.Errorf("error = %v", err)
	}
}

// TestDeployKeepsOldVersionUntilNewRuns: a new version of a plugin is
// deployed beside the old one, which is removed only once the new one is
// RUNNING; a new version that fails is removed and the old one keeps
// serving.
func TestDeployKeepsOldVersionUntilNewRuns(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	if _, _, err := Deploy(ctx, c, spec("ver", "_ray_pkg_1111111111111111.zip"), nil); err != nil {
		t.Fatal(err)
	}
	old := "synapse-ver-11111111"
	// v2 deploys beside v1, then v1 is removed.
	app, _, err := Deploy(ctx, c, spec("ver", "_ray_pkg_2222222222222222.zip"), nil)
	if err != nil || app.Name != "synapse-ver-22222222" {
		t.Fatalf("Deploy v2 = %+v, %v", app, err)
	}
	first := f.puts[1]["applications"].([]any)
	if len(first) != 2 {
		t.Errorf("the first write of v2 has %d applications, want v1 and v2", len(first))
	}
	if _, ok := f.apps[old]; ok {
		t.Errorf("v1 is still deployed after v2 runs: %v", sortedNames(f.apps))
	}
	// v3 fails: it is taken out again and v2 keeps serving.
	f.failApp = "synapse-ver-33333333"
	_, _, err = Deploy(ctx, c, spec("ver", "_ray_pkg_3333333333333333.zip"), nil)
	var de *DeployError
	if !errors.As(err, &de) {
		t.Fatalf("Deploy v3 = %v, want a DeployError", err)
	}
	if names := sortedNames(f.apps); len(names) != 1 || names[0] != "synapse-ver-22222222" {
		t.Errorf("after a failed v3 the applications are %v, want v2 alone", names)
	}
}
