package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// waitConsole polls the job's console log until it contains want.
func (f *agentFixture) waitConsole(t *testing.T, id, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines, err := f.store.Console(t.Context(), id, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, l := range lines {
			all.WriteString(l.Line + "\n")
		}
		if strings.Contains(all.String(), want) {
			return all.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %q not in the console log:\n%s", id, want, all.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessAgentLargeParams(t *testing.T) {
	f := newAgent(t)
	params := `{"n":7,"text":"big"` + strings.Repeat(" ", 40000) + `}`
	j := f.wait(t, f.start(t, "echo", params).ID)
	if j.Status != store.StatusSucceeded || string(j.Result) != `{"n":7,"text":"big"}` {
		t.Fatalf("job = %s %s", j.Status, j.Result)
	}
	if _, err := os.Stat(f.agent.file(j.ID, ".params.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the params file is left behind: %v", err)
	}
}

// TestProcessAgentReattach is a server restart as the agent sees it: the
// first agent stops following (Close) and a second one, on the same run
// directory, re-attaches.
func TestProcessAgentReattach(t *testing.T) {
	f := newAgent(t)
	running := f.start(t, "wait", `{"seconds":2}`)
	gone := f.start(t, "wait", `{"seconds":60}`)
	for _, j := range []store.Job{running, gone} {
		f.waitConsole(t, j.ID, `"started"`)
	}
	f.agent.Close()
	if err := f.agent.Attach(t.Context(), running); err == nil {
		t.Error("a closed agent attached a job")
	}
	// The second job's process dies while no server watches it.
	b, err := os.ReadFile(f.agent.file(gone.ID, ".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ownProcess(pid, gone.ID); {
		if time.Now().After(deadline) {
			t.Fatal("the killed process is still there")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, j := range []store.Job{running, gone} {
		if got, _ := f.store.GetJob(t.Context(), j.ID); got.Status != store.StatusRunning {
			t.Fatalf("job %s after Close = %s, want RUNNING", j.ID, got.Status)
		}
	}

	next := &ProcessAgent{Store: f.store, Releases: f.agent.Releases, RunDir: f.agent.RunDir, Grace: time.Second}
	for _, j := range []store.Job{running, gone} {
		j, err := f.store.GetJob(t.Context(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := next.Attach(t.Context(), j); err != nil {
			t.Fatalf("attach %s: %v", j.ID, err)
		}
	}
	got := f.wait(t, running.ID)
	if got.Status != store.StatusSucceeded || string(got.Result) != `{"result":"not cancelled"}` {
		t.Errorf("re-attached job = %s %s, want SUCCEEDED \"not cancelled\"", got.Status, got.Result)
	}
	got = f.wait(t, gone.ID)
	// docs/server-api.md: meta.error {error_type: "process", message}.
	if got.Status != store.StatusFailed || !strings.Contains(string(got.Meta), "while the server was down") || !strings.Contains(string(got.Meta), `"error_type":"process"`) {
		t.Errorf("job whose process died = %s %s %s", got.Status, got.Result, got.Meta)
	}
	for _, j := range []store.Job{running, gone} {
		all := f.waitConsole(t, j.ID, `"started"`)
		if n := strings.Count(all, `"started"`); n != 1 {
			t.Errorf("job %s: %d \"started\" lines in the console log, want 1:\n%s", j.ID, n, all)
		}
		for _, ext := range []string{".log", ".pid"} {
			if _, err := os.Stat(next.file(j.ID, ext)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("job %s: %s left behind: %v", j.ID, ext, err)
			}
		}
	}
	if err := next.Attach(t.Context(), store.Job{ID: "00000000-0000-0000-0000-000000000000"}); !errors.Is(err, ErrNotStarted) {
		t.Errorf("attach a job never started: %v, want ErrNotStarted", err)
	}
}

func TestRecover(t *testing.T) {
	var api *API
	f := newRunServer(t, 4, func(a *API) { api = a })
	ctx := t.Context()
	rels, err := f.store.FindRelease(ctx, mustPlugin(t, f).ID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(agent, status, meta string) string {
		j, err := f.store.CreateJob(ctx, store.Job{ReleaseID: rels.ID, Agent: agent, Action: "echo", Params: json.RawMessage(`{"n":5}`), Meta: json.RawMessage(meta)})
		if err != nil {
			t.Fatal(err)
		}
		if status != store.StatusPending {
			if _, err := f.store.UpdateJob(ctx, j.ID, store.JobUpdate{Status: status}); err != nil {
				t.Fatal(err)
			}
		}
		return j.ID
	}
	lostAgent := mk("gone", store.StatusRunning, `{}`)
	noTrace := mk("local", store.StatusRunning, `{}`)
	queued := mk("local", store.StatusPending, `{"language":"ko","queue":{"position":1,"reason":"slots_full"}}`)
	// A job whose process died while no server watched: its output is
	// there, its process is not.
	died := mk("local", store.StatusRunning, `{}`)
	agent := api.Runners["local"].(*ProcessAgent)
	if err := os.MkdirAll(agent.RunDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent.file(died, ".log"), []byte("last words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := api.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's own PENDING job (of a release without files) is handed
	// to the agent again too, and fails to start.
	if rec.Queued < 1 || rec.Failed < 2 || rec.Attached != 0 || rec.Settled != 1 {
		t.Errorf("recovered = %+v, want the dead process's job settled, none re-attached", rec)
	}
	if j, err := f.store.GetJob(ctx, died); err != nil || j.Status != store.StatusFailed || !strings.Contains(string(j.Meta), "while the server was down") {
		t.Errorf("job whose process died = %+v, %v; want FAILED at once", j, err)
	}
	if lines, _ := f.store.Console(ctx, died, 0, 10); len(lines) != 1 || lines[0].Line != "last words" {
		t.Errorf("console log of the job whose process died = %+v", lines)
	}
	if api.jobs.holds(died) {
		t.Error("the settled job holds a slot")
	}
	for id, want := range map[string]string{lostAgent: `without the job's agent \"gone\"`, noTrace: "has no trace of it"} {
		j := f.waitJob(t, id, ended)
		if b, _ := json.Marshal(j["meta"]); j["status"] != "FAILED" || !strings.Contains(string(b), want) || !strings.Contains(string(b), "server_restart") {
			t.Errorf("job %s = %v, want FAILED with %q", id, j, want)
		}
	}
	j := f.waitJob(t, queued, ended)
	meta, _ := json.Marshal(j["meta"])
	if j["status"] != "SUCCEEDED" || strings.Contains(string(meta), "queue") || !strings.Contains(string(meta), `"language":"ko"`) {
		t.Errorf("queued job after recovery = %v (meta %s), want SUCCEEDED, language kept, no queue", j, meta)
	}
}

func mustPlugin(t *testing.T, f *apiFixture) store.Plugin {
	t.Helper()
	p, err := f.store.GetPlugin(t.Context(), "conformance")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLineCutter(t *testing.T) {
	type cut struct {
		line string
		end  int64
	}
	long := strings.Repeat("x", maxLine+3)
	tests := []struct {
		name   string
		start  int64
		chunks []string
		want   []cut
	}{
		{"lines across chunks", 0, []string{"ab", "c\nde\r\n", "f"}, []cut{{"abc", 4}, {"de", 8}, {"f", 9}}},
		{"resumed at an offset", 100, []string{"x\n"}, []cut{{"x", 102}}},
		{"empty lines", 0, []string{"\n\n"}, []cut{{"", 1}, {"", 2}}},
		{"a run without newline is cut", 0, []string{long}, []cut{{long[:maxLine], maxLine}, {"xxx", maxLine + 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lineCutter{off: tt.start}
			var got []cut
			add := func(l string, end int64) { got = append(got, cut{l, end}) }
			for _, ch := range tt.chunks {
				c.write([]byte(ch), add)
			}
			c.rest(add)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d lines, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("line %d = %.20q at %d, want %.20q at %d", i, got[i].line, got[i].end, tt.want[i].line, tt.want[i].end)
				}
			}
		})
	}
}

// TestServeRestartWithoutTheAgent: a restart without the process agent a
// job ran on stops the job's process (it would run on, out of reach),
// removes its files, keeps the rest of its output, and says so.
func TestServeRestartWithoutTheAgent(t *testing.T) {
	dir := t.TempDir()
	zip := releaseZip(t)
	base, printed, stop := serve(t, Config{DataDir: dir})
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	if status, body := publishTo(t, base, token, map[string]string{"plugin": "conformance", "version": "1.0", "config": conformanceConfig, "debug": "True"}, zip); status != 201 {
		t.Fatalf("publish = %d %s", status, body)
	}
	req, _ := http.NewRequest("POST", base+"/plugins/conformance/run/", strings.NewReader(`{"agent":1,"action":"wait","params":{"seconds":60},"debug":true}`))
	req.Header.Set("Synapse-Access-Token", "Token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(string(b))[1]
	runDir := filepath.Join(dir, "run", "local")
	pidFile := filepath.Join(runDir, id+".pid")
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0 || !ownProcess(pid, id); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the job's process did not start")
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(string(b))
		}
	}
	// The output written before the server stops is what must be kept:
	// wait until the action has written its first line.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(runDir, id+".log")); strings.Contains(string(b), "started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job wrote no first line")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !ownProcess(pid, id) {
		t.Fatal("the job's process ended with the server; it must run on")
	}

	_, printed, stop = serve(t, Config{DataDir: dir, Agents: []AgentSpec{{Name: "other"}}})
	defer stop()
	if want := "1 failed (1 of them of an agent no longer configured, whose processes were stopped)"; !strings.Contains(printed, want) {
		t.Errorf("the restart says:\n%s\nwant %q", printed, want)
	}
	if ownProcess(pid, id) {
		t.Errorf("the job's process %d runs on after the restart without its agent", pid)
	}
	for _, ext := range []string{".log", ".pid"} {
		if _, err := os.Stat(filepath.Join(runDir, id+ext)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", ext, err)
		}
	}
	st, err := store.Open(t.Context(), filepath.Join(dir, "synapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err := st.GetJob(t.Context(), id)
	if want := fmt.Sprintf(`without the job's agent \"local\"; its process (PID %d) was stopped`, pid); err != nil || j.Status != store.StatusFailed || !strings.Contains(string(j.Meta), want) {
		t.Errorf("job = %s %s, %v; want FAILED with %q", j.Status, j.Meta, err, want)
	}
	if lines, _ := st.Console(t.Context(), id, 0, 100); !strings.Contains(fmt.Sprint(lines), "started") {
		t.Errorf("console log = %v, want the job's output kept", lines)
	}
}
