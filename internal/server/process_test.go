package server

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

var (
	conformanceZipOnce sync.Once
	conformanceZip     []byte
	conformanceZipErr  error
)

// releaseZip is the executortest plugin packed as a job-mode package: a
// static plugin binary and the plugin's files.
func releaseZip(t *testing.T) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a plugin binary; skipped with -short")
	}
	conformanceZipOnce.Do(func() {
		built, err := build.Build(t.Context(), build.Options{Dir: executortest.PluginDir(), CacheDir: filepath.Join(os.TempDir(), "synapse-server-test-cache"), Static: true})
		if err != nil {
			conformanceZipErr = err
			return
		}
		pkg, err := pack.Build(pack.Options{Dir: executortest.PluginDir(), Binary: built.Binary, BinaryName: worker.BinaryName})
		if err != nil {
			conformanceZipErr = err
			return
		}
		conformanceZip = pkg.Data
	})
	if conformanceZipErr != nil {
		t.Fatal(conformanceZipErr)
	}
	return conformanceZip
}

type agentFixture struct {
	*apiFixture
	agent *ProcessAgent
	rel   store.Release
}

func newAgent(t *testing.T) *agentFixture {
	t.Helper()
	z := releaseZip(t)
	dir := t.TempDir()
	releases := &Releases{Dir: filepath.Join(dir, "releases"), WorkDir: filepath.Join(dir, "work")}
	f := newAPI(t, func(a *API) { a.Releases = releases })
	status, v := f.publish(t, map[string]string{"plugin": "conformance", "version": "1.0", "config": conformanceConfig}, z)
	if status != 201 {
		t.Fatalf("publish: %d %v", status, v)
	}
	rel, err := f.store.GetRelease(t.Context(), int64(v.(map[string]any)["id"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	a := &ProcessAgent{Store: f.store, Releases: releases, RunDir: filepath.Join(t.TempDir(), "run"), Grace: 2 * time.Second}
	return &agentFixture{apiFixture: f, agent: a, rel: rel}
}

// run starts action with params on the agent and waits for the job to end.
func (f *agentFixture) start(t *testing.T, action, params string) store.Job {
	t.Helper()
	j, err := f.store.CreateJob(t.Context(), store.Job{ReleaseID: f.rel.ID, Agent: "local", Action: action, Params: json.RawMessage(params)})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.store.CreateToken(t.Context(), "job", store.TokenJob, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.agent.Start(t.Context(), j, f.rel, jobEnv(f.srv.URL, tok, j, map[string]string{"LAYER": "server"}, "ko")); err != nil {
		t.Fatal(err)
	}
	return j
}

func (f *agentFixture) wait(t *testing.T, id string) store.Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		j, err := f.store.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if store.Terminal(j.Status) && j.ConsoleClosed {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s did not end within a minute", id)
	return store.Job{}
}

func TestProcessAgentRuns(t *testing.T) {
	f := newAgent(t)
	tests := []struct {
		action, params, status, result string
	}{
		{"echo", `{"n":3,"text":"yo"}`, store.StatusSucceeded, `{"n":3,"text":"yo"}`},
		{"scalar", `{}`, store.StatusSucceeded, `{"result":42}`},
		{"env", `{}`, store.StatusSucceeded, `{"FROM_CONFIG":"","FROM_OPTION":"","LAYER":"server"}`},
		{"fail", `{}`, store.StatusFailed, `{"error":"`},
		{"crash", `{}`, store.StatusFailed, `{"error":"`},
		{"echo", `{"n":0}`, store.StatusFailed, `{"error":"`},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			j := f.wait(t, f.start(t, tt.action, tt.params).ID)
			if j.Status != tt.status || !strings.HasPrefix(string(j.Result), tt.result) || j.StartedAt == nil || j.CompletedAt == nil {
				t.Errorf("job = %s %s (started %v, completed %v), want %s %s…", j.Status, j.Result, j.StartedAt, j.CompletedAt, tt.status, tt.result)
			}
			lines, err := f.store.Console(t.Context(), j.ID, 0, 1000)
			if err != nil || len(lines) == 0 {
				t.Errorf("console log: %d lines, %v", len(lines), err)
			}
			if tt.status == store.StatusFailed && len(j.Meta) == 0 {
				t.Errorf("a failed job has no meta.error")
			}
			if status, _ := f.call(t, "PATCH", "/jobs/"+j.ID+"/", "", `{}`); status != 401 {
				t.Errorf("no token: %d", status)
			}
		})
	}
	// The job token ends with the job.
	j := f.wait(t, f.start(t, "echo", `{}`).ID)
	toks, err := f.store.ListTokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.JobID == j.ID && tk.RevokedAt == nil {
			t.Errorf("job token of %s not revoked", j.ID)
		}
	}
}

func TestProcessAgentStop(t *testing.T) {
	f := newAgent(t)
	mark := filepath.Join(t.TempDir(), "mark")
	j := f.start(t, "wait", `{"mark":"`+mark+`","seconds":60}`)
	// Wait until the action runs (it logs "started").
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines, _ := f.store.Console(t.Context(), j.ID, 0, 100)
		var all strings.Builder
		for _, l := range lines {
			all.WriteString(l.Line)
		}
		if strings.Contains(all.String(), `"started"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the action did not start: %q", all.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := f.agent.Stop(t.Context(), j.ID); err != nil {
		t.Fatal(err)
	}
	got := f.wait(t, j.ID)
	if got.Status != store.StatusStopped {
		t.Errorf("status = %s, want STOPPED", got.Status)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "cancelled" {
		t.Errorf("the action was not cancelled cleanly (SIGTERM): %q, %v", b, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	if err := f.agent.Stop(t.Context(), j.ID); err == nil {
		t.Error("stopping an ended job: no error")
	}
}

func TestUnzipRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../evil", "/abs/evil", "a/../../evil"} {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create(name)
		_, _ = w.Write([]byte("x"))
		_ = zw.Close()
		path := filepath.Join(t.TempDir(), "r.zip")
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := unzip(path, dir); err == nil || !strings.Contains(err.Error(), "escapes") {
			t.Errorf("%s: %v, want an escape error", name, err)
		}
	}
	// A symbolic link entry.
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	h := &zip.FileHeader{Name: "link"}
	h.SetMode(os.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	_, _ = w.Write([]byte("/etc/passwd"))
	_ = zw.Close()
	path := filepath.Join(t.TempDir(), "l.zip")
	_ = os.WriteFile(path, b.Bytes(), 0o600)
	if err := unzip(path, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("symlink entry: %v", err)
	}
}

// TestProcessAgentWorkDir: the release's files are read-only, and each
// job runs in a working directory of its own that links to them, with the
// release's directory in SYNAPSE_PLUGIN_DIR; the directory goes with the
// job.
func TestProcessAgentWorkDir(t *testing.T) {
	f := newAgent(t)
	j := f.start(t, "wait", `{"seconds":60}`)
	f.waitConsole(t, j.ID, `"started"`)
	rel := filepath.Join(f.agent.Releases.WorkDir, f.rel.SHA256)
	for path, want := range map[string]os.FileMode{rel: 0o555, filepath.Join(rel, worker.BinaryName): 0o555, filepath.Join(rel, "config.yaml"): 0o444} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode().Perm(), err, want)
		}
	}
	b, err := os.ReadFile(f.agent.file(j.ID, ".pid"))
	if err != nil {
		t.Fatal(err)
	}
	work := f.agent.file(j.ID, ".d")
	if cwd, err := os.Readlink("/proc/" + strings.TrimSpace(string(b)) + "/cwd"); err != nil || cwd != work {
		t.Errorf("the job's working directory = %q, %v; want %s", cwd, err, work)
	}
	if target, err := os.Readlink(filepath.Join(work, "config.yaml")); err != nil || target != filepath.Join(rel, "config.yaml") {
		t.Errorf("config.yaml in the working directory links to %q, %v; want the release's", target, err)
	}
	env, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/environ")
	if !strings.Contains("\x00"+string(env)+"\x00", "\x00SYNAPSE_PLUGIN_DIR="+rel+"\x00") {
		t.Errorf("the job's environment has no SYNAPSE_PLUGIN_DIR=%s", rel)
	}
	if err := f.agent.Stop(t.Context(), j.ID); err != nil {
		t.Fatal(err)
	}
	f.wait(t, j.ID)
	if _, err := os.Stat(work); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the job's working directory is left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rel, worker.BinaryName)); err != nil {
		t.Errorf("the release's binary went with the job: %v", err)
	}
}
