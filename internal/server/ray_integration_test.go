//go:build integration

package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/ray"
)

// rayAddress is the integration suite's Ray head (make test-integration
// starts one); without it the test skips, except under CI=true.
func rayAddress(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SYNAPSE_TEST_RAY_ADDRESS is not set: CI must run the integration suite against a real Ray head (make test-integration)")
		}
		t.Skip("no Ray head: run `make test-integration` (it starts one) or set SYNAPSE_TEST_RAY_ADDRESS")
	}
	return addr
}

// client is an HTTP client of a running server with the admin token.
type client struct {
	t           *testing.T
	base, token string
}

func (c client) call(method, path, body string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Synapse-Access-Token", "Token "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// run starts action on agent and returns the job's ID.
func (c client) run(agent, action, params string) string {
	c.t.Helper()
	status, body := c.call("POST", "/plugins/conformance/run/", fmt.Sprintf(`{"agent":%q,"action":%q,"params":%s,"debug":true}`, agent, action, params))
	if status != 201 {
		c.t.Fatalf("run %s on %s = %d %s", action, agent, status, body)
	}
	return regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(body)[1]
}

type jobView struct {
	Status string
	Result json.RawMessage
	Meta   json.RawMessage
}

// await polls the job until done says so (or the deadline passes).
func (c client) await(id string, within time.Duration, done func(jobView) bool) jobView {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, body := c.call("GET", "/jobs/"+id+"/", "")
		var j jobView
		if status == 200 && json.Unmarshal([]byte(body), &j) == nil && done(j) {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s: %d %s", id, status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func terminal(j jobView) bool {
	return j.Status == "SUCCEEDED" || j.Status == "FAILED" || j.Status == "STOPPED"
}

// console returns the job's console log, once it holds want.
func (c client) console(id, want string, within time.Duration) []string {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, body := c.call("GET", "/jobs/"+id+"/console_logs/", "")
		var lines []string
		_ = json.Unmarshal([]byte(body), &lines)
		if strings.Contains(strings.Join(lines, "\n"), want) {
			return lines
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s: %q not in the console log: %.2000s", id, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestIntegrationRayAgent(t *testing.T) {
	addr := rayAddress(t)
	zip := releaseZip(t)
	base, printed, stop := serve(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), Agents: []AgentSpec{{Name: "local"}, {Name: "ray", Ray: addr}}})
	defer stop()
	if !strings.Contains(printed, "ray (ray http://") {
		t.Errorf("the server does not name its Ray agent: %s", printed)
	}
	c := client{t, base, regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)}
	if status, body := publishTo(t, base, c.token, map[string]string{"plugin": "conformance", "version": "1.0", "config": conformanceConfig, "debug": "True"}, zip); status != 201 {
		t.Fatalf("publish = %d %s", status, body)
	}
	if _, body := c.call("GET", "/agents/", ""); !strings.Contains(body, `"name":"ray"`) || !strings.Contains(body, `"kind":"ray"`) || strings.Contains(body, "disconnected") {
		t.Errorf("agents = %s", body)
	}
	rc, err := ray.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, action, params, status, result, meta string
	}{
		{"echo", "echo", `{"n":3,"text":"ray"}`, "SUCCEEDED", `{"n":3,"text":"ray"}`, ""},
		{"large params", "echo", `{"n":4,"text":"big"` + strings.Repeat(" ", 40000) + `}`, "SUCCEEDED", `{"n":4,"text":"big"}`, ""},
		{"progress", "context", `{}`, "SUCCEEDED", `"language"`, ""},
		{"action error", "fail", `{}`, "FAILED", `disk full`, "disk full"},
		{"panic", "crash", `{}`, "FAILED", `boom`, "boom"},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		ids[tt.name] = c.run("ray", tt.action, tt.params)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client{t, c.base, c.token}
			id := ids[tt.name]
			j := c.await(id, 3*time.Minute, terminal)
			if j.Status != tt.status || !strings.Contains(string(j.Result), tt.result) || !strings.Contains(string(j.Meta), tt.meta) {
				t.Errorf("job = %s %s %s, want %s with %s", j.Status, j.Result, j.Meta, tt.status, tt.result)
			}
			last := "__SYNAPSE_RESULT_END__" // a failed action's last line is its error
			if tt.status == "FAILED" {
				last = `{"type":"error"`
			}
			c.console(id, last, 30*time.Second)
			rj, err := rc.Job(t.Context(), id)
			if err != nil || string(rj.Status) != tt.status {
				t.Errorf("the Ray job with submission ID %s: %+v, %v", id, rj, err)
			}
		})
	}
	t.Run("progress record", func(t *testing.T) {
		c := client{t, c.base, c.token}
		_, body := c.call("GET", "/jobs/"+ids["progress"]+"/", "")
		if !strings.Contains(body, `"overall":100`) {
			t.Errorf("job = %.1000s", body)
		}
	})
	t.Run("stop", func(t *testing.T) {
		c := client{t, c.base, c.token}
		id := c.run("ray", "wait", `{"seconds":120}`)
		c.console(id, `"started"`, 2*time.Minute)
		start := time.Now()
		if status, body := c.call("POST", "/v2/jobs/"+id+"/stop/", ""); status != 200 || !strings.Contains(body, `"status":"STOPPED"`) {
			t.Fatalf("stop = %d %s", status, body)
		}
		if j, err := rc.Job(t.Context(), id); err != nil || j.Status != "STOPPED" {
			t.Errorf("the Ray job after stop: %+v, %v", j, err)
		}
		if d := time.Since(start); d > 40*time.Second {
			t.Errorf("stop took %v", d)
		}
		if status, _ := c.call("POST", "/v2/jobs/"+id+"/stop/", ""); status != 409 {
			t.Errorf("stopping an ended job = %d, want 409", status)
		}
		// The binary's report after the stop is taken without complaint.
		for _, l := range c.console(id, `"type":"error"`, time.Minute) {
			if strings.Contains(l, "WARNING") {
				t.Errorf("the stopped job's console log has a warning: %s", l)
			}
		}
	})
	t.Run("a report ends with the run", func(t *testing.T) {
		c := client{t, c.base, c.token}
		id := c.run("ray", "wait", `{"seconds":8}`)
		c.console(id, `"started"`, 2*time.Minute)
		rj, err := rc.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		vars, _ := rj.RuntimeEnv["env_vars"].(map[string]any)
		tk, _ := vars["SYNAPSE_ACCESS_TOKEN"].(string)
		status, body := client{t, c.base, tk}.call("PATCH", "/jobs/"+id+"/", `{"status":"FAILED","result":{"error":"reported"}}`)
		if status != 200 || !strings.Contains(body, `"status":"RUNNING"`) {
			t.Fatalf("the job token's report = %d %s, want 200 with the job RUNNING", status, body)
		}
		j := c.await(id, 3*time.Minute, terminal)
		if j.Status != "FAILED" || string(j.Result) != `{"error":"reported"}` {
			t.Errorf("job = %s %s, want the reported FAILED", j.Status, j.Result)
		}
		if rj, err := rc.Job(t.Context(), id); err != nil || rj.Status != "SUCCEEDED" {
			t.Errorf("the Ray job = %+v, %v; want it run to its end", rj, err)
		}
	})
	t.Run("ray fails the job", func(t *testing.T) {
		c := client{t, c.base, c.token}
		// A runtime_env Ray cannot set up: the job never reaches the
		// binary, and its FAILED status carries Ray's reason.
		bad := strings.Replace(conformanceConfig, `"env":`, `"runtime_env":{"pip":["synapse-no-such-package-xyz==0.0.1"]},"env":`, 1)
		if status, body := publishTo(t, base, c.token, map[string]string{"plugin": "conformance", "version": "1.1", "config": bad, "debug": "True"}, zip); status != 201 {
			t.Fatalf("publish = %d %s", status, body)
		}
		status, body := c.call("POST", "/plugins/conformance/run/", `{"agent":"ray","action":"echo","params":{},"version":"1.1"}`)
		if status != 201 {
			t.Fatalf("run = %d %s", status, body)
		}
		id := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(body)[1]
		j := c.await(id, 5*time.Minute, terminal)
		if j.Status != "FAILED" || !strings.Contains(string(j.Meta), "RUNTIME_ENV_SETUP_FAILURE") {
			t.Errorf("job = %s %s %s", j.Status, j.Result, j.Meta)
		}
	})
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// synapseBinary builds cmd/synapse once per test binary.
func synapseBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "synapse")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/synapse")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build synapse: %v\n%s", err, out)
	}
	return bin
}

// startServer runs `synapse server` as a process of its own and returns
// once it listens, with what it printed so far.
func startServer(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"server"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the server ended: %s", out.String())
			}
			out.WriteString(l + "\n")
			if strings.Contains(l, "listening on") {
				go func() {
					for range lines {
					}
				}()
				return cmd, out.String()
			}
		case <-timeout:
			t.Fatalf("the server did not start: %s", out.String())
		}
	}
}

// TestIntegrationServerKill9 kills the server with SIGKILL while jobs run
// on a process agent and a Ray agent, and starts it again on the same
// data: the Ray job is re-attached by submission ID and the process job
// still running is re-attached by its PID, both finishing normally; a
// process job whose process died meanwhile becomes FAILED with the
// reason; the console lines written before the kill are all there, once.
func TestIntegrationServerKill9(t *testing.T) {
	addr := rayAddress(t)
	zip := releaseZip(t)
	bin := synapseBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	args := []string{"--data-dir", data, "--addr", listen, "--agent", "local=process", "--agent", "ray=ray:" + addr}
	srv, printed := startServer(t, bin, args...)
	c := client{t, "http://" + listen, regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)}
	if status, body := publishTo(t, c.base, c.token, map[string]string{"plugin": "conformance", "version": "1.0", "config": conformanceConfig, "debug": "True"}, zip); status != 201 {
		t.Fatalf("publish = %d %s", status, body)
	}
	onRay := c.run("ray", "wait", `{"seconds":25}`)
	onLocal := c.run("local", "wait", `{"seconds":20}`)
	doomed := c.run("local", "wait", `{"seconds":120}`)
	before := map[string][]string{}
	for _, id := range []string{onRay, onLocal, doomed} {
		before[id] = c.console(id, `"started"`, 2*time.Minute)
		c.await(id, time.Minute, func(j jobView) bool { return j.Status == "RUNNING" })
	}

	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	pidFile := filepath.Join(data, "run", "local", doomed+".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the process agent keeps no PID: %v", err)
	}
	pid, _ := strconv.Atoi(string(b))
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the doomed job's process group: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ownProcess(pid, doomed); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the doomed job's process is still there")
		}
	}

	_, printed = startServer(t, bin, args...)
	// The doomed job's process had died: its output is read to the end
	// and it is settled, not re-attached.
	if !strings.Contains(printed, "2 re-attached, 1 had ended and are settled, 0 handed to their agents again, 0 failed") {
		t.Errorf("the restarted server does not say truly what it did with the jobs:\n%s", printed)
	}
	want := map[string]string{onRay: "SUCCEEDED", onLocal: "SUCCEEDED", doomed: "FAILED"}
	for id, status := range want {
		j := c.await(id, 3*time.Minute, terminal)
		if j.Status != status {
			t.Errorf("job %s = %s %s %s, want %s", id, j.Status, j.Result, j.Meta, status)
		}
		if status == "SUCCEEDED" && !strings.Contains(string(j.Result), "not cancelled") {
			t.Errorf("job %s result = %s", id, j.Result)
		}
		if status == "FAILED" && !strings.Contains(string(j.Meta), "while the server was down") {
			t.Errorf("job %s meta = %s, want the reason", id, j.Meta)
		}
		after := c.console(id, "", time.Second)
		if status == "SUCCEEDED" {
			after = c.console(id, "__SYNAPSE_RESULT_END__", time.Minute)
		}
		if len(after) < len(before[id]) || strings.Join(after[:len(before[id])], "\n") != strings.Join(before[id], "\n") {
			t.Errorf("job %s: the console log before the kill is not kept as it was:\nbefore %q\nafter  %q", id, before[id], after)
		}
		if n := strings.Count(strings.Join(after, "\n"), `"started"`); n != 1 {
			t.Errorf("job %s: %d \"started\" lines, want 1: %q", id, n, after)
		}
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the doomed job's PID file is left: %v", err)
	}
}
