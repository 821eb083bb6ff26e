package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// serve runs Serve on a free port and returns its URL, what it printed
// before listening, and a stop function that waits for it to return.
func serve(t *testing.T, cfg Config) (url, printed string, stop func() error) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	thawOnCleanup(t, filepath.Join(cfg.DataDir, "work"))
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, cfg, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var out strings.Builder
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("the server did not start: %s %v", out.String(), <-errc)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return url, out.String(), func() error { cancel(); return <-errc }
}

func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	url, printed, stop := serve(t, Config{DataDir: dir, Agents: []AgentSpec{{Name: "local"}, {Name: "gpu"}}})
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	if token == "" {
		t.Fatalf("no admin token printed on the first start:\n%s", printed)
	}
	if login := "\n  synapse login --host " + url + " -t " + token + "\n"; !strings.Contains(printed, login) {
		t.Errorf("the first start does not print the login command %q:\n%s", login, printed)
	}
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", url+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Token "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("/health/", ""); status != 200 {
		t.Errorf("health = %d", status)
	}
	status, body := get("/agents/", token)
	var agents struct {
		Count   int
		Results []Agent
	}
	if err := json.Unmarshal([]byte(body), &agents); status != 200 || err != nil || agents.Count != 2 || agents.Results[1].Name != "gpu" || agents.Results[1].ID != 2 {
		t.Errorf("agents = %d %s", status, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "synapse.db"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", path, fi.Mode().Perm(), err, want)
		}
	}

	// A job a killed server left RUNNING is settled at the next start; no
	// new token is printed, and the first still works.
	st, err := store.Open(t.Context(), filepath.Join(dir, "synapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := st.CreatePlugin(t.Context(), store.Plugin{Code: "x", Name: "x"})
	rel, _ := st.CreateRelease(t.Context(), store.Release{PluginID: p.ID, Version: "1", Config: json.RawMessage(`{}`)})
	j, err := st.CreateJob(t.Context(), store.Job{ReleaseID: rel.ID, Agent: "local", Action: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateJob(t.Context(), j.ID, store.JobUpdate{Status: store.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	url, printed, stop = serve(t, Config{DataDir: dir})
	defer stop()
	if strings.Contains(printed, "syn_") {
		t.Errorf("a token was printed again:\n%s", printed)
	}
	status, body = get("/jobs/"+j.ID+"/", token)
	if status != 200 || !strings.Contains(body, `"status":"FAILED"`) || !strings.Contains(body, "the server stopped while the job ran") {
		t.Errorf("orphaned job after restart = %d %s", status, body)
	}
}

func TestServeAddressInUse(t *testing.T) {
	url, _, stop := serve(t, Config{DataDir: t.TempDir()})
	defer stop()
	dir := filepath.Join(t.TempDir(), "data")
	err := Serve(t.Context(), Config{Addr: strings.TrimPrefix(url, "http://"), DataDir: dir}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--addr") {
		t.Errorf("second server on the same address: %v", err)
	}
	// It fails before it creates anything.
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed start left %s: %v", dir, err)
	}
	for _, addr := range []string{"nonsense", "127.0.0.1:99999"} {
		err := Serve(t.Context(), Config{Addr: addr, DataDir: dir}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "start server: --addr: want HOST:PORT") {
			t.Errorf("--addr %s: %v", addr, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--addr %s left %s: %v", addr, dir, err)
		}
	}
}

// TestServeDataDirInUse: two servers on one data directory would both
// re-attach and run the same jobs; the second is refused, naming the first.
func TestServeDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	_, _, stop := serve(t, Config{DataDir: dir})
	err := Serve(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: dir}, io.Discard)
	want := fmt.Sprintf("another synapse server (PID %d) uses %s", os.Getpid(), dir)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("second server on the same data directory: %v, want %q", err, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Once the first has stopped, the directory is free again.
	_, _, stop = serve(t, Config{DataDir: dir})
	if err := stop(); err != nil {
		t.Errorf("restart on the freed directory: %v", err)
	}
}

// TestServePrints: the first start prints the synapse login command for
// the URL clients use (--public-url when given), and the listening line
// counts jobs in good English.
func TestServePrints(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"one job at once", Config{MaxJobs: 1}, []string{"; 1 job at once per agent)\n", "synapse login --host http://127.0.0.1:", "synapse server: dashboard at http://127.0.0.1:"}},
		{"two jobs at once", Config{MaxJobs: 2}, []string{"; 2 jobs at once per agent)\n"}},
		{"a public URL", Config{PublicURL: "http://10.0.0.5:8080"}, []string{"\n  synapse login --host http://10.0.0.5:8080 -t syn_", "; 4 jobs at once per agent)\n", "dashboard at http://10.0.0.5:8080/ui/ (sign in"}},
	}
	for _, tt := range tests {
		tt.cfg.DataDir = t.TempDir()
		_, printed, stop := serve(t, tt.cfg)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(printed, w) {
				t.Errorf("%s: printed\n%s\nwant it to contain %q", tt.name, printed, w)
			}
		}
	}
}

// TestServeStopWithStalledClient: a stop with a client stalled mid-request
// (headers and part of a POST body sent) waits the grace, cuts the
// connection and returns nil (the command exits 0), not a deadline error.
func TestServeStopWithStalledClient(t *testing.T) {
	url, _, stop := serve(t, Config{DataDir: t.TempDir(), ShutdownGrace: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /plugins/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":")
	// The request is in flight once the server reads it: wait until a
	// health check answers after it (same listener, so it was accepted).
	if resp, err := http.Get(url + "/health/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Errorf("stop with a stalled client = %v, want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s, want about the grace (300ms)", d)
	}
	// The stalled connection was closed.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("the stalled connection was not closed: %v", err)
	}
}

// TestServeAgentIDsStable: agent IDs are kept by name in the store, so a
// restart with the --agent flags reordered or an agent removed keeps every
// ID, and a job of the removed agent still shows its agent's ID.
func TestServeAgentIDsStable(t *testing.T) {
	dir := t.TempDir()
	_, printed, stop := serve(t, Config{DataDir: dir, Agents: []AgentSpec{{Name: "local"}, {Name: "gpu"}}})
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), filepath.Join(dir, "synapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := st.CreatePlugin(t.Context(), store.Plugin{Code: "x", Name: "x"})
	rel, _ := st.CreateRelease(t.Context(), store.Release{PluginID: p.ID, Version: "1", Config: json.RawMessage(`{}`)})
	j, err := st.CreateJob(t.Context(), store.Job{ReleaseID: rel.ID, Agent: "local", Action: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateJob(t.Context(), j.ID, store.JobUpdate{Status: store.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	url, _, stop := serve(t, Config{DataDir: dir, Agents: []AgentSpec{{Name: "cluster"}, {Name: "gpu"}}})
	defer stop()
	get := func(path string) string {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var agents struct{ Results []Agent }
	if err := json.Unmarshal([]byte(get("/agents/")), &agents); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range agents.Results {
		got[a.Name] = a.ID
	}
	if got["gpu"] != 2 || got["cluster"] != 3 || len(got) != 2 {
		t.Errorf("agents after reordering = %v, want gpu 2 (kept), cluster 3 (new)", got)
	}
	if body := get("/jobs/" + j.ID + "/"); !strings.Contains(body, `"agent":{"id":1,"name":"local"}`) {
		t.Errorf("job of the removed agent = %s, want agent {id 1, name local}", body)
	}
}
