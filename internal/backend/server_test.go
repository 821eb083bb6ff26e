package backend

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/server"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// testConfig is the executortest plugin's config.yaml as JSON.
const testConfig = `{"code":"conformance","name":"Executor Conformance","version":"1.0","env":{"LAYER":"config","FROM_CONFIG":"yes"},` +
	`"actions":{"echo":{},"job":{},"scalar":{},"wrapped":{},"report":{},"context":{},"env":{},"fail":{},"crash":{},"wait":{}}}`

var (
	zipOnce sync.Once
	zipData []byte
	zipErr  error
)

// releaseZip is the executortest plugin as a job-mode package: a static
// plugin binary and the plugin's files (as internal/server's tests build
// it).
func releaseZip(t *testing.T) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a plugin binary; skipped with -short")
	}
	zipOnce.Do(func() {
		built, err := build.Build(context.Background(), build.Options{Dir: executortest.PluginDir(), CacheDir: filepath.Join(os.TempDir(), "synapse-server-test-cache"), Static: true})
		if err != nil {
			zipErr = err
			return
		}
		pkg, err := pack.Build(pack.Options{Dir: executortest.PluginDir(), Binary: built.Binary, BinaryName: worker.BinaryName})
		if err != nil {
			zipErr = err
			return
		}
		zipData = pkg.Data
	})
	if zipErr != nil {
		t.Fatal(zipErr)
	}
	return zipData
}

// serve starts a real synapse server (one process agent, "local") on a
// free port with a fresh data directory, and returns its URL and admin
// token. It stops with the test.
func serve(t *testing.T) (url, token string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	dataDir := t.TempDir()
	t.Cleanup(func() {
		// The server keeps releases read-only; not running as root, the
		// temporary directory's removal needs its directories writable.
		_ = filepath.WalkDir(filepath.Join(dataDir, "work"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(path, 0o700)
			}
			return nil
		})
	})
	go func() {
		errc <- server.Serve(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dataDir}, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	sc := bufio.NewScanner(pr)
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	secret := regexp.MustCompile(`syn_[0-9a-f]{40}`)
	var out strings.Builder
	for url == "" && sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if token == "" {
			token = secret.FindString(sc.Text())
		}
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" || token == "" {
		t.Fatalf("the server did not start, or printed no admin token:\n%s", out.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return url, token
}

// newClient is a client of url whose retries wait little.
func newClient(t *testing.T, url, token string, opts ...Option) *Client {
	t.Helper()
	c, err := New(url, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.retryFirst, c.retryMax = 5*time.Millisecond, 20*time.Millisecond
	c.tailFirst, c.tailMax = 5*time.Millisecond, 50*time.Millisecond
	return c
}

// waitJob polls a job until it has ended.
func waitJob(t *testing.T, c *Client, id string) *Job {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		j, err := c.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Ended() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end within a minute (%s)", id, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail collects a job's console lines through TailConsole.
func tail(ctx context.Context, c *Client, id string, after int64) ([]Line, error) {
	var lines []Line
	err := c.TailConsole(ctx, id, after, func(l Line) error {
		lines = append(lines, l)
		return nil
	})
	return lines, err
}

// configVersion is testConfig with its version set to v (a release's
// version must be its config's).
func configVersion(t *testing.T, v string) json.RawMessage {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal([]byte(testConfig), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["version"] = v
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServer runs the client against a real synapse server: every call's
// happy path and the error answers the server gives.
func TestServer(t *testing.T) {
	zip := releaseZip(t)
	url, token := serve(t)
	c := newClient(t, url, token)
	ctx := t.Context()

	t.Run("agents", func(t *testing.T) {
		agents, err := c.Agents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(agents) != 1 || agents[0].ID != 1 || agents[0].Name != "local" || agents[0].Kind != "process" || !agents[0].Connected() {
			t.Errorf("agents = %+v", agents)
		}
	})

	sum := sha256.Sum256(zip)
	publish := []struct {
		name    string
		upload  ReleaseUpload
		wantErr string
		is      error
	}{
		{"first", ReleaseUpload{Plugin: "conformance", Version: "1.0", Config: json.RawMessage(testConfig), Zip: zip}, "", nil},
		{"duplicate version", ReleaseUpload{Plugin: "conformance", Version: "1.0", Config: json.RawMessage(testConfig), Zip: zip}, "already exists", ErrVersionExists},
		{"debug over a published release", ReleaseUpload{Plugin: "conformance", Version: "1.0", Config: json.RawMessage(testConfig), Debug: true, Zip: zip}, "is a published (non-debug) release", ErrVersionExists},
		{"debug", ReleaseUpload{Plugin: "conformance", Version: "1.2", Config: configVersion(t, "1.2"), Debug: true, Zip: zip}, "", nil},
		{"debug replaces debug", ReleaseUpload{Plugin: "conformance", Version: "1.2", Config: configVersion(t, "1.2"), Debug: true, Zip: zip}, "", nil},
		{"second version", ReleaseUpload{Plugin: "conformance", Version: "1.1", Config: configVersion(t, "1.1"), Zip: zip}, "", nil},
		{"version not the config's", ReleaseUpload{Plugin: "conformance", Version: "1.3", Config: json.RawMessage(testConfig), Zip: zip}, `version: "1.3" is not config.version "1.0"`, nil},
		{"config of another plugin", ReleaseUpload{Plugin: "other", Version: "1.0", Config: json.RawMessage(testConfig), Zip: zip}, `config.code: "conformance" is not the plugin "other"`, nil},
		{"not a zip", ReleaseUpload{Plugin: "conformance", Version: "2.0", Config: configVersion(t, "2.0"), Zip: []byte("not a zip")}, "not a zip archive", nil},
	}
	for _, tt := range publish {
		t.Run("publish/"+tt.name, func(t *testing.T) {
			rel, err := c.PublishRelease(ctx, tt.upload)
			if tt.wantErr != "" {
				var he *HTTPError
				if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "publish release "+tt.upload.Plugin+"@"+tt.upload.Version+": ") {
					t.Fatalf("err = %v, want a 400 containing %q", err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
				}
				if tt.is == nil && errors.Is(err, ErrVersionExists) {
					t.Errorf("%v matches ErrVersionExists", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotCfg, wantCfg any
			_ = json.Unmarshal(rel.Config, &gotCfg)
			_ = json.Unmarshal(tt.upload.Config, &wantCfg)
			if rel.ID == 0 || rel.Plugin != "conformance" || rel.Version != tt.upload.Version || rel.Debug != tt.upload.Debug ||
				rel.Checksum != hex.EncodeToString(sum[:]) || rel.Size != int64(len(zip)) || rel.Created.IsZero() || !jsonEqual(gotCfg, wantCfg) {
				t.Errorf("release = %+v", rel)
			}
		})
	}

	t.Run("release", func(t *testing.T) {
		rel, err := c.Release(ctx, "conformance", "1.1")
		if err != nil || rel.Version != "1.1" || rel.Plugin != "conformance" || rel.Checksum == "" {
			t.Errorf("release = %+v, %v", rel, err)
		}
		if _, err := c.Release(ctx, "conformance", "9.9"); !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "get release conformance@9.9: ") {
			t.Errorf("an unknown version: %v", err)
		}
	})

	t.Run("plugins", func(t *testing.T) {
		p, err := c.Plugin(ctx, "conformance")
		if err != nil || p.Code != "conformance" || p.Name != "Executor Conformance" || p.ID == 0 || p.Created.IsZero() {
			t.Errorf("plugin = %+v, %v", p, err)
		}
		if _, err := c.Plugin(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown plugin: %v", err)
		}
		p, err = c.CreatePlugin(ctx, Plugin{Code: "fresh", Name: "Fresh", Category: "neural_net", Description: "d"})
		if err != nil || p.Code != "fresh" || p.Name != "Fresh" || p.Category != "neural_net" || p.Description != "d" || p.ID == 0 {
			t.Errorf("created = %+v, %v", p, err)
		}
		_, err = c.CreatePlugin(ctx, Plugin{Code: "fresh"})
		if err == nil || !strings.Contains(err.Error(), "already exists") || errors.Is(err, ErrVersionExists) {
			t.Errorf("a code in use: %v", err)
		}
	})

	var echoID string
	runs := []struct {
		name    string
		code    string
		req     RunRequest
		status  string // the final status; "" for an error
		result  string
		wantErr string
		is      error
		fields  []string
	}{
		{"echo", "conformance", RunRequest{Agent: 1, Action: "echo", Params: json.RawMessage(`{"n":2,"text":"yo"}`), Language: "en"}, StatusSucceeded, `{"n":2,"text":"yo"}`, "", nil, nil},
		{"scalar, no agent named", "conformance", RunRequest{Action: "scalar", Version: "1.0", Debug: true}, StatusSucceeded, `{"result":42}`, "", nil, nil},
		{"fail", "conformance", RunRequest{Agent: 1, Action: "fail"}, StatusFailed, `{"error":`, "", nil, nil},
		{"bad params", "conformance", RunRequest{Agent: 1, Action: "echo", Params: json.RawMessage(`{"n":0,"text":7}`)}, "", "", "run plugin conformance action echo: ", nil, []string{"n", "text"}},
		{"unknown action", "conformance", RunRequest{Agent: 1, Action: "nope"}, "", "", `"nope" is not an action`, nil, nil},
		{"unknown agent", "conformance", RunRequest{Agent: 7, Action: "echo"}, "", "", `no agent "7"`, nil, nil},
		{"unknown plugin", "nope", RunRequest{Agent: 1, Action: "echo"}, "", "", `run plugin nope action echo: no plugin with ID or code "nope" (GET /plugins/ lists the plugins)`, ErrNotFound, nil},
		{"unknown version", "conformance", RunRequest{Agent: 1, Action: "echo", Version: "9"}, "", "", `has no release "9"`, ErrNotFound, nil},
	}
	for _, tt := range runs {
		t.Run("run/"+tt.name, func(t *testing.T) {
			j, err := c.Run(ctx, tt.code, tt.req)
			if tt.status == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
				}
				var he *HTTPError
				errors.As(err, &he)
				var fields []string
				for _, f := range he.Fields {
					fields = append(fields, f.Field)
				}
				slices.Sort(fields)
				if !slices.Equal(fields, tt.fields) {
					t.Errorf("fields = %+v, want %v", he.Fields, tt.fields)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.ID == "" || j.Ended() || j.Action != tt.req.Action || j.Release.Plugin != "conformance" || j.Agent.Name != "local" || j.Agent.ID != 1 || j.Created.IsZero() {
				t.Errorf("run answered %+v", j)
			}
			j = waitJob(t, c, j.ID)
			if j.Status != tt.status || !strings.HasPrefix(string(j.Result), tt.result) || j.Started == nil || j.Completed == nil {
				t.Errorf("job = %s %s (started %v, completed %v), want %s %s…", j.Status, j.Result, j.Started, j.Completed, tt.status, tt.result)
			}
			if tt.status == StatusFailed && (j.Meta.Error == nil || j.Meta.Error.Message == "") {
				t.Errorf("a failed job's meta.error = %+v", j.Meta.Error)
			}
			if tt.name == "echo" {
				echoID = j.ID
				if j.Meta.Language != "en" || len(j.ProgressRecord) == 0 {
					t.Errorf("meta = %+v, progress record %s", j.Meta, j.ProgressRecord)
				}
			}
		})
	}
	if echoID == "" {
		t.Fatal("the echo run did not succeed")
	}

	t.Run("console logs and tail", func(t *testing.T) {
		logs, err := c.ConsoleLogs(ctx, echoID)
		if err != nil || len(logs) < 2 || !strings.Contains(strings.Join(logs, "\n"), `"started"`) {
			t.Fatalf("console logs = %q, %v", logs, err)
		}
		for _, after := range []int64{0, 1, int64(len(logs))} {
			lines, err := tail(ctx, c, echoID, after)
			if err != nil {
				t.Fatalf("tail after %d: %v", after, err)
			}
			var texts []string
			for i, l := range lines {
				texts = append(texts, l.Text)
				if l.Seq != after+int64(i)+1 {
					t.Errorf("tail after %d: line %d has number %d", after, i, l.Seq)
				}
			}
			if !slices.Equal(texts, logs[after:]) {
				t.Errorf("tail after %d = %q, want %q", after, texts, logs[after:])
			}
		}
	})

	t.Run("tail a running job to its end", func(t *testing.T) {
		j, err := c.Run(ctx, "conformance", RunRequest{Agent: 1, Action: "echo", Params: json.RawMessage(`{"n":3}`)})
		if err != nil {
			t.Fatal(err)
		}
		lines, err := tail(ctx, c, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		logs, err := c.ConsoleLogs(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != len(logs) || len(lines) == 0 || lines[len(lines)-1].Text != logs[len(logs)-1] {
			t.Errorf("tail = %+v, console logs %q", lines, logs)
		}
		if j, err := c.Job(ctx, j.ID); err != nil || !j.Ended() {
			t.Errorf("after complete the job is %+v, %v", j, err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		j, err := c.Run(ctx, "conformance", RunRequest{Agent: 1, Action: "wait", Params: json.RawMessage(`{"seconds":60}`)})
		if err != nil {
			t.Fatal(err)
		}
		// Follow it until it runs its action ("started"), then stop
		// following: the context ends the tail promptly.
		tctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- c.TailConsole(tctx, j.ID, 0, func(l Line) error {
				if strings.Contains(l.Text, `"started"`) {
					close(started)
				}
				return nil
			})
		}()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("the tail ended before the action started: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("the action did not start within a minute")
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "tail console log of job "+j.ID+": ") {
				t.Errorf("a cancelled tail: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the tail did not end within 2s of its context")
		}

		stopped, err := c.Stop(ctx, j.ID)
		if err != nil || stopped.ID != j.ID || stopped.Status != StatusStopped {
			t.Fatalf("stop = %+v, %v", stopped, err)
		}
		if j, err := c.Job(ctx, j.ID); err != nil || j.Status != StatusStopped {
			t.Errorf("after stop: %+v, %v", j, err)
		}
		_, err = c.Stop(ctx, j.ID)
		var he *HTTPError
		if !errors.Is(err, ErrConflict) || !errors.As(err, &he) || he.Code != "INVALID_STATE" || he.RequestID == "" || !strings.Contains(err.Error(), "has already ended") {
			t.Errorf("stop again: %v (%+v)", err, he)
		}
		if _, err := tail(ctx, c, j.ID, 0); err != nil {
			t.Errorf("tail of a stopped job: %v", err)
		}
	})

	t.Run("jobs", func(t *testing.T) {
		all, err := c.Jobs(ctx, JobsFilter{PerPage: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 5 { // echo, scalar, fail, echo, wait
			t.Fatalf("jobs = %d, want 5: %+v", len(all), all)
		}
		if all[0].Action != "wait" || all[len(all)-1].Action != "echo" {
			t.Errorf("not newest first: %s … %s", all[0].Action, all[len(all)-1].Action)
		}
		tests := []struct {
			f    JobsFilter
			want int
		}{
			{JobsFilter{Limit: 3, PerPage: 2}, 3},
			{JobsFilter{Status: "succeeded", PerPage: 1}, 3},
			{JobsFilter{Status: StatusStopped}, 1},
			{JobsFilter{Cursor: all[1].ID}, 3},
		}
		for _, tt := range tests {
			got, err := c.Jobs(ctx, tt.f)
			if err != nil || len(got) != tt.want {
				t.Errorf("jobs %+v = %d jobs, %v; want %d", tt.f, len(got), err, tt.want)
			}
		}
	})

	t.Run("error answers", func(t *testing.T) {
		bad := newClient(t, url, "syn_"+strings.Repeat("0", 40))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + l.Addr().String()
		l.Close()
		down := newClient(t, closed, token)
		const unknown = "00000000-0000-4000-8000-000000000000"
		tests := []struct {
			name string
			call func() error
			is   error
			want string
		}{
			{"unknown job", func() error { _, err := c.Job(ctx, unknown); return err }, ErrNotFound, "get job " + unknown + ": no job " + unknown + " (GET /jobs/ lists the jobs) (HTTP 404, GET /jobs/" + unknown + "/)"},
			{"unknown job's console", func() error { _, err := c.ConsoleLogs(ctx, unknown); return err }, ErrNotFound, "get console log of job " + unknown + ": no job " + unknown + " (GET /jobs/ lists the jobs)"},
			{"unknown job's tail", func() error { _, err := tail(ctx, c, unknown, 0); return err }, ErrNotFound, "tail console log of job " + unknown + ": no job " + unknown + " (GET /jobs/ lists the jobs)"},
			{"stop an unknown job", func() error { _, err := c.Stop(ctx, unknown); return err }, ErrNotFound, "stop job " + unknown + ": no job " + unknown + " (GET /jobs/ lists the jobs)"},
			{"bad token", func() error { _, err := bad.Agents(ctx); return err }, ErrUnauthorized, "list agents: "},
			{"bad token, run", func() error { _, err := bad.Run(ctx, "conformance", RunRequest{Action: "echo"}); return err }, ErrUnauthorized, "run `synapse login`"},
			{"bad token, tail", func() error { _, err := tail(ctx, bad, echoID, 0); return err }, ErrUnauthorized, "run `synapse login`"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want %v containing %q", err, tt.is, tt.want)
				}
				if strings.Contains(err.Error(), token) {
					t.Errorf("the error holds the token: %v", err)
				}
			})
		}
		for _, call := range []func() error{
			func() error { _, err := down.Agents(ctx); return err },
			func() error { _, err := down.Run(ctx, "conformance", RunRequest{Action: "echo"}); return err },
			func() error { _, err := tail(ctx, down, echoID, 0); return err },
		} {
			down.tailOutage = 100 * time.Millisecond
			err := call()
			var ue *UnreachableError
			if !errors.As(err, &ue) || ue.Host != closed || !strings.Contains(err.Error(), "cannot reach the synapse backend at "+closed) {
				t.Errorf("a closed port: %v", err)
			}
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
