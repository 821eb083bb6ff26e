package remote

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/server"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/plugintest"
)

// serve starts a real synapse server (SQLite in a fresh data directory;
// by default one process agent, "local") on a free port, and returns it as
// a Backend with its admin token. It stops with the test.
func serve(t *testing.T, agents ...server.AgentSpec) Backend {
	t.Helper()
	return serveConfig(t, server.Config{Agents: agents})
}

// serveConfig is serve with a server configuration (its address and data
// directory are the test's).
func serveConfig(t *testing.T, cfg server.Config) Backend {
	t.Helper()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- server.Serve(ctx, cfg, pw)
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
	var b Backend
	for b.Host == "" && sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if b.Token == "" {
			b.Token = secret.FindString(sc.Text())
		}
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			b.Host = m[1]
		}
	}
	if b.Host == "" || b.Token == "" {
		t.Fatalf("the server did not start, or printed no admin token:\n%s", out.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return b
}

// conformance loads the executortest plugin; it is skipped with -short
// (it builds the plugin binary, twice: for this machine and for linux).
func conformance(t *testing.T) *plugin.Plugin {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a plugin binary and runs a synapse server; skipped with -short")
	}
	p, err := plugin.Load(executortest.PluginDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// published starts a server and publishes the executortest plugin to it.
func published(t *testing.T, agents ...server.AgentSpec) (*plugin.Plugin, Backend) {
	t.Helper()
	return publishedConfig(t, server.Config{Agents: agents})
}

var (
	packOnce sync.Once
	packed   *Package
	packErr  error
)

// publishedConfig is published with a server configuration. The package
// is built once for the test binary (Pack is slow under -race) and
// uploaded as Publish uploads it; TestPublish tests Publish itself.
func publishedConfig(t *testing.T, cfg server.Config) (*plugin.Plugin, Backend) {
	t.Helper()
	p := conformance(t)
	b := serveConfig(t, cfg)
	packOnce.Do(func() { packed, packErr = Pack(context.Background(), p, "") })
	if packErr != nil {
		t.Fatal(packErr)
	}
	c, err := b.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishRelease(t.Context(), backend.ReleaseUpload{Plugin: packed.Plugin, Version: packed.Version, Config: packed.Config, Zip: packed.Data}); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// TestConformance runs the executor suite against remote mode on a real
// synapse server with a process agent: every run is a job of the published
// release, run by the agent as the release's plugin binary.
func TestConformance(t *testing.T) {
	p, b := published(t)
	executortest.RunLimited(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
		e, err := NewExecutor(p, Options{Backend: b}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}, executortest.Limits{NoEnv: true, NoJobID: true})
}

func TestPublish(t *testing.T) {
	p := conformance(t)
	b := serve(t)
	ctx := t.Context()

	pkg, err := Pack(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(pkg.Files))
	for i, f := range pkg.Files {
		names[i] = f.Name
	}
	if pkg.Plugin != "conformance" || pkg.Version != "1.0" || pkg.Arch != "amd64" || pkg.Size != int64(len(pkg.Data)) ||
		!slices.Contains(names, "synapse-plugin") || !slices.Contains(names, "config.yaml") || !slices.Contains(names, "main.go") {
		t.Errorf("package = %s@%s %s, %d bytes, files %q", pkg.Plugin, pkg.Version, pkg.Arch, pkg.Size, names)
	}
	if !strings.Contains(string(pkg.Config), `"FROM_CONFIG":"yes"`) || !strings.Contains(string(pkg.Config), `"code":"conformance"`) {
		t.Errorf("config = %s", pkg.Config)
	}

	rel, err := Publish(ctx, p, PublishOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if rel.ID == 0 || rel.Plugin != "conformance" || rel.Version != "1.0" || rel.Debug || rel.Size != pkg.Size || len(rel.Checksum) != 64 || rel.Package == nil {
		t.Errorf("release = %+v", rel)
	}

	_, err = Publish(ctx, p, PublishOptions{Backend: b})
	var ve *VersionExistsError
	if !errors.Is(err, ErrVersionExists) || !errors.Is(err, backend.ErrVersionExists) || !errors.As(err, &ve) ||
		err.Error() != "publish plugin conformance: release 1.0 already exists: bump `version` in config.yaml, or publish with --debug to replace it" {
		t.Errorf("second publish: %v", err)
	}

	// A debug publish never replaces a published release (synapse server
	// refuses it), and the error says to bump the version only.
	_, err = Publish(ctx, p, PublishOptions{Backend: b, Debug: true})
	if !errors.As(err, &ve) || !ve.Published || !strings.Contains(err.Error(), "is a published (non-debug) release, which a debug publish does not replace: bump `version` in config.yaml") {
		t.Errorf("debug publish over a published release: %v", err)
	}
	// (A debug publish over a debug release replaces it: the server's
	// TestPublishDebugOverProduction.)

	for _, tt := range []struct {
		name string
		opts PublishOptions
		want string
	}{
		{"arch", PublishOptions{Backend: b, Arch: "mips"}, `remote: option Arch: must be amd64 or arm64 (got "mips")`},
		{"no token", PublishOptions{Backend: Backend{Host: b.Host}}, "remote: option Backend.Token: no access token: run `synapse login`"},
		{"bad token", PublishOptions{Backend: Backend{Host: b.Host, Token: "syn_wrong0000000000000000"}}, "the access token is invalid or expired: run `synapse login`"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvToken, "")
			_, err := Publish(ctx, p, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "syn_wrong0000000000000000") {
				t.Errorf("the token leaked: %v", err)
			}
		})
	}
}

func TestNewExecutorErrors(t *testing.T) {
	p := conformance(t)
	b := Backend{Host: "http://127.0.0.1:9", Token: "syn_0123456789abcdef"}
	for _, tt := range []struct {
		name string
		p    *plugin.Plugin
		opts Options
		o    []synapse.Option
		want string
	}{
		{"no host", p, Options{Backend: Backend{Token: b.Token}}, nil, "remote: option Backend.Host: no backend host"},
		{"host without scheme", p, Options{Backend: Backend{Host: "127.0.0.1:8080", Token: b.Token}}, nil, `invalid host "127.0.0.1:8080": it has no http:// or https://`},
		{"no token", p, Options{Backend: Backend{Host: b.Host}}, nil, "remote: option Backend.Token"},
		{"no plugin", nil, Options{Backend: b}, nil, "remote: option Plugin: remote mode needs a plugin code"},
		{"negative agent", p, Options{Backend: b, Agent: -1}, nil, "remote: option Agent: want an agent ID"},
		{"env", p, Options{Backend: b}, []synapse.Option{synapse.WithEnv(synapse.NewEnv(map[string]any{"B": 1, "A": 2}))}, "remote: option WithEnv: the backend sets a remote job's environment (config.yaml env of the release); A, B cannot be passed"},
		{"job ID", p, Options{Backend: b}, []synapse.Option{synapse.WithJobID("mine")}, `remote: option WithJobID: the backend names its jobs (a UUID); a job ID ("mine") cannot be given`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvHost, "")
			t.Setenv(EnvToken, "")
			_, err := NewExecutor(tt.p, tt.opts, tt.o...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) || coder.ExitCode() != 2 {
				t.Errorf("%v is not a usage error", err)
			}
		})
	}
	// An empty WithEnv (the CLI passes one) and the language are fine.
	e, err := NewExecutor(p, Options{Backend: b}, synapse.WithEnv(synapse.NewEnv(nil)), synapse.WithLanguage("ko"))
	if err != nil || e.lang != "ko" || e.Plugin() != "conformance" {
		t.Errorf("NewExecutor = %+v, %v", e, err)
	}
}

// TestWithoutPluginDir runs a published plugin by its code alone: the
// backend checks the params, and its refusals are the same typed errors.
func TestWithoutPluginDir(t *testing.T) {
	_, b := published(t)
	ctx := t.Context()
	e, err := NewExecutor(nil, Options{Backend: b, Plugin: "conformance"}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Run(ctx, "echo", map[string]any{"n": 2})
	if err != nil || got.(map[string]any)["text"] != "hi" {
		t.Fatalf("Run = %v, %v", got, err)
	}

	_, err = e.Run(ctx, "echo", map[string]any{"n": 0})
	var ve *synapse.ValidationError
	var he *backend.HTTPError
	if !errors.As(err, &ve) || ve.Action != "echo" || len(ve.Fields) != 1 || ve.Fields[0].String() != "n: must be >= 1 (got 0)" || !errors.As(err, &he) || he.Status != 400 {
		t.Errorf("bad params: %v", err)
	}

	_, err = e.Run(ctx, "ecoh", nil)
	var ne *synapse.ActionNotFoundError
	if !errors.As(err, &ne) || ne.Suggestion != "echo" || !slices.Contains(ne.Available, "wait") {
		t.Errorf("unknown action: %v", err)
	}

	other, err := NewExecutor(nil, Options{Backend: b, Plugin: "nope"}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Run(ctx, "echo", nil)
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("a plugin that is not published: %v", err)
	}

	noRelease, err := NewExecutor(nil, Options{Backend: b, Plugin: "conformance", Release: "9.9"}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = noRelease.Run(ctx, "echo", nil)
	if !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), `no release "9.9"`) {
		t.Errorf("a release that is not published: %v", err)
	}
}

// TestRunPlugin runs through synapse.RunPlugin: options given, and none
// (the backend from SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN), by directory
// and by plugin code.
func TestRunPlugin(t *testing.T) {
	_, b := published(t)
	for _, tt := range []struct {
		name, plugin string
		opts         any
	}{
		{"options", executortest.PluginDir(), Options{Backend: b}},
		{"options pointer", executortest.PluginDir(), &Options{Backend: b}},
		{"environment", executortest.PluginDir(), nil},
		{"plugin code", "conformance", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvHost, b.Host)
			t.Setenv(EnvToken, b.Token)
			opts := []synapse.RunOption{synapse.WithMode(synapse.ModeRemote), synapse.WithLogger(synapse.DiscardLogger)}
			if tt.opts != nil {
				opts = append(opts, synapse.WithModeOptions(tt.opts))
			}
			got, err := synapse.RunPlugin(t.Context(), tt.plugin, "scalar", nil, opts...)
			if err != nil || got != float64(42) {
				t.Errorf("RunPlugin = %v, %v", got, err)
			}
		})
	}
	_, err := synapse.RunPlugin(t.Context(), executortest.PluginDir(), "scalar", nil, synapse.WithMode(synapse.ModeRemote), synapse.WithModeOptions(struct{}{}))
	if err == nil || !strings.Contains(err.Error(), "mode options must be remote.Options (got struct {})") {
		t.Errorf("wrong options: %v", err)
	}
}

// TestSubmitFollowStop: a job submitted and followed outlives its
// follower; it is found by ID and in the list, stopped, and its result
// says so.
func TestSubmitFollowStop(t *testing.T) {
	p, b := published(t)
	ctx := t.Context()
	e, err := NewExecutor(p, Options{Backend: b}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.Submit(ctx, "wait", map[string]any{"seconds": 120})
	if err != nil {
		t.Fatal(err)
	}
	j := job.(*Job)
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(j.ID()) || j.DashboardURL() != b.Host+"/ui/jobs/"+j.ID()+"/" || j.Action() != "wait" {
		t.Errorf("job %q, %q, %q", j.ID(), j.DashboardURL(), j.Action())
	}

	// Follow until the action has started, then stop following.
	followCtx, stopFollowing := context.WithCancel(ctx)
	rec := plugintest.NewRecorder()
	err = j.Follow(followCtx, synapse.LoggerFunc(func(e synapse.Event) {
		rec.Handle(e)
		if e.Type == synapse.EventLog && e.Event == "started" {
			stopFollowing()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow = %v, want it cancelled", err)
	}
	if logs := rec.Logs("started"); len(logs) != 1 || logs[0].JobID != j.ID() {
		t.Errorf("started events = %+v", logs)
	}
	if st, err := j.Status(ctx); err != nil || st != synapse.JobRunning {
		t.Fatalf("status after the follower left = %s, %v; want RUNNING", st, err)
	}

	opened, err := OpenJob(ctx, b, j.ID())
	if err != nil {
		t.Fatal(err)
	}
	info, err := opened.Info(ctx)
	if err != nil || info.Status != synapse.JobRunning || info.Plugin != "conformance" || info.Release != "1.0" || info.Action != "wait" || info.AgentName != "local" || info.Started.IsZero() {
		t.Errorf("info = %+v, %v", info, err)
	}
	list, err := ListJobs(ctx, b, JobFilter{Status: synapse.JobRunning})
	if err != nil || len(list) != 1 || list[0].ID != j.ID() {
		t.Errorf("running jobs = %+v, %v", list, err)
	}

	if err := opened.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := j.Status(ctx); err != nil || st != synapse.JobStopped {
		t.Errorf("status after Stop = %s, %v", st, err)
	}
	if err := opened.Stop(ctx); err != nil {
		t.Errorf("Stop of an ended job = %v, want nil", err)
	}
	_, err = opened.Result(ctx)
	var xe *synapse.ExecutionError
	if !errors.Is(err, synapse.ErrJobStopped) || !errors.As(err, &xe) || xe.Action != "wait" || xe.JobID != j.ID() {
		t.Errorf("Result of a stopped job = %v", err)
	}

	_, err = OpenJob(ctx, b, "00000000-0000-0000-0000-000000000000")
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("OpenJob of an unknown job = %v", err)
	}
}

// TestResultWithoutFollow reads the outcome of jobs nobody followed from
// the backend's record and console log: the typed error of a failed
// action, with a panic's stack.
func TestResultWithoutFollow(t *testing.T) {
	p, b := published(t)
	ctx := t.Context()
	e, err := NewExecutor(p, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		action string
		check  func(t *testing.T, v any, err error)
	}{
		{"echo", func(t *testing.T, v any, err error) {
			if err != nil || v.(map[string]any)["n"] != float64(1) {
				t.Errorf("echo = %v, %v", v, err)
			}
		}},
		{"fail", func(t *testing.T, _ any, err error) {
			var xe *synapse.ExecutionError
			if !errors.As(err, &xe) || xe.Action != "fail" || xe.Err.Error() != "disk full" || xe.JobID == "" {
				t.Errorf("fail = %v", err)
			}
		}},
		{"crash", func(t *testing.T, _ any, err error) {
			var xe *synapse.ExecutionError
			if !errors.As(err, &xe) || !xe.Panicked() || !strings.Contains(xe.Stack, "goroutine") {
				t.Errorf("crash = %v", err)
			}
		}},
	} {
		t.Run(tt.action, func(t *testing.T) {
			j, err := e.SubmitJob(ctx, tt.action, nil)
			if err != nil {
				t.Fatal(err)
			}
			opened, err := OpenJob(ctx, b, j.ID())
			if err != nil {
				t.Fatal(err)
			}
			v, err := opened.Result(ctx)
			tt.check(t, v, err)
		})
	}
}

// TestAgents: with several agents the executor needs one named, and the
// error lists them.
func TestAgents(t *testing.T) {
	p, b := published(t, server.AgentSpec{Name: "one"}, server.AgentSpec{Name: "two"})
	ctx := t.Context()
	e, err := NewExecutor(p, Options{Backend: b}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(ctx, "scalar", nil)
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Field != "Agent" || !strings.Contains(err.Error(), "has 2 agents; choose one (--agent ID, or synapse agent select): 1 one (process, connected); 2 two (process, connected)") {
		t.Errorf("err = %v", err)
	}
	e, err = NewExecutor(p, Options{Backend: b, Agent: 2}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.SubmitJob(ctx, "scalar", nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := j.Result(ctx); err != nil || v != float64(42) {
		t.Fatalf("Result = %v, %v", v, err)
	}
	if info, err := j.Info(ctx); err != nil || info.AgentID != 2 || info.AgentName != "two" {
		t.Errorf("info = %+v, %v", info, err)
	}
}

// recorder collects events for tests of Follow.
type recorder struct {
	mu     sync.Mutex
	events []synapse.Event
}

func (r *recorder) Handle(e synapse.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []synapse.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor polls cond until it holds or a minute has passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scriptPlugin is a release whose synapse-plugin is a shell script, as a
// plugin that is not a Go binary: its console lines are plain text, and it
// reports progress, metrics and its end through the backend's API only.
// It waits for the file $MARK between its two progress reports.
const scriptPlugin = `#!/bin/sh
[ "$1" = validate ] && exit 0
[ "$1" = actions ] && { echo '[{"name":"train"}]'; exit 0; }
patch() {
	curl -sf -X PATCH -H "Synapse-Access-Token: Token $SYNAPSE_ACCESS_TOKEN" -H 'Content-Type: application/json' \
		"$SYNAPSE_HOST/jobs/$SYNAPSE_JOB_ID/" -d "$1" >/dev/null || echo "patch failed: $1"
}
echo "starting $SYNAPSE_ACTION_ENTRYPOINT"
patch '{"status":"RUNNING","progress_record":{"record":{"steps":{"train":{"proportion":100,"percent":50,"order":0}}},"current_progress":{"overall":50,"step":"train","percent":50}}}'
while [ ! -e "$MARK" ]; do sleep 0.05; done
patch '{"progress_record":{"record":{"steps":{"train":{"proportion":100,"percent":100,"order":0}}},"current_progress":{"overall":100,"step":"train","percent":100}},"metrics_record":{"record":{"steps":{"train":{"loss":0.25}}}}}'
echo "done"
patch '{"status":"SUCCEEDED","result":{"ok":true}}'
`

// TestFollowWithoutEvents follows a job whose console log carries no
// events: its lines become messages of category Category, and the job's
// progress_record and metrics_record (polled) become the events the
// other modes give, so progress bars and a ProgressTracker work the same.
func TestFollowWithoutEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a synapse server; skipped with -short")
	}
	b := serve(t)
	ctx := t.Context()
	mark := filepath.Join(t.TempDir(), "go-on")
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, f := range []struct {
		name string
		mode os.FileMode
		data string
	}{
		{"synapse-plugin", 0o755, scriptPlugin},
		{"config.yaml", 0o644, "code: script\nname: Script\nversion: 0.1.0\nactions:\n  train: {}\n"},
	} {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := b.client()
	if err != nil {
		t.Fatal(err)
	}
	config := `{"code":"script","name":"Script","version":"0.1.0","env":{"MARK":` + strconv.Quote(mark) + `},"actions":{"train":{}}}`
	if _, err := c.PublishRelease(ctx, backend.ReleaseUpload{Plugin: "script", Version: "0.1.0", Config: json.RawMessage(config), Zip: zbuf.Bytes()}); err != nil {
		t.Fatal(err)
	}

	e, err := NewExecutor(nil, Options{Backend: b, Plugin: "script"})
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.SubmitJob(ctx, "train", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	tracker := synapse.NewProgressTracker()
	followed := make(chan error, 1)
	go func() { followed <- j.Follow(ctx, synapse.MultiLogger(rec, tracker)) }()
	waitFor(t, "the first progress event", func() bool {
		return slices.ContainsFunc(rec.all(), func(e synapse.Event) bool { return e.Type == synapse.EventProgress && e.Percent == 50 })
	})
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	// The console lines in order, and the events from the records in order
	// (the two arrive on their own paths).
	var lines, records []string
	for _, e := range rec.all() {
		if e.JobID != j.ID() {
			t.Errorf("event of job %q: %+v", e.JobID, e)
		}
		switch e.Type {
		case synapse.EventMessage:
			lines = append(lines, e.Category+": "+e.Message)
		case synapse.EventProgress:
			records = append(records, fmt.Sprintf("progress %s %v%% (%d/%d)", e.Category, e.Percent, e.Current, e.Total))
		case synapse.EventMetrics:
			records = append(records, fmt.Sprintf("metrics %s %v", e.Category, e.Values))
		case synapse.EventSteps:
			records = append(records, fmt.Sprintf("plan %+v", e.Steps))
		default:
			records = append(records, "unexpected "+string(e.Type))
		}
	}
	if want := []string{"remote: starting train", "remote: done"}; !slices.Equal(lines, want) {
		t.Errorf("messages = %q, want %q", lines, want)
	}
	want := []string{
		"plan [{Name:train Order:0 Proportion:100}]",
		"progress train 50% (50/100)",
		"progress train 100% (100/100)",
		"metrics train map[loss:0.25]",
	}
	if !slices.Equal(records, want) {
		t.Errorf("events from the records:\n  %s\nwant:\n  %s", strings.Join(records, "\n  "), strings.Join(want, "\n  "))
	}
	if r := tracker.Record(); r.Current.Overall != 100 || r.Steps["train"].Percent != 100 {
		t.Errorf("record rebuilt from the events = %+v", r)
	}
	if v, err := j.Result(ctx); err != nil || !reflect.DeepEqual(v, map[string]any{"ok": true}) {
		t.Errorf("Result = %v, %v", v, err)
	}
}

// TestFollowQueued: a job waiting for a slot on its agent says where it is
// in the queue, then runs once the slot is free.
func TestFollowQueued(t *testing.T) {
	p, b := publishedConfig(t, server.Config{MaxJobs: 1})
	ctx := t.Context()
	e, err := NewExecutor(p, Options{Backend: b}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.SubmitJob(ctx, "wait", map[string]any{"seconds": 120})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.SubmitJob(ctx, "scalar", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	followed := make(chan error, 1)
	go func() { followed <- second.Follow(ctx, rec) }()
	want := "job " + second.ID() + " is waiting for a slot on its agent: position 1 (slots_full)"
	waitFor(t, "the queue note", func() bool {
		return slices.ContainsFunc(rec.all(), func(e synapse.Event) bool { return e.Message == want && e.Category == Category })
	})
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if v, err := second.Result(ctx); err != nil || v != float64(42) {
		t.Errorf("Result = %v, %v", v, err)
	}
	notes := 0
	for _, e := range rec.all() {
		if e.Category == Category {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d queue notes, want 1 (no repeats): %+v", notes, rec.all())
	}
}

// TestFollowFill: a backend whose console stream never says "complete"
// (or fails) once the job has ended: Follow completes the console log from
// the stored one (GET console_logs/), each line once. synapse server
// always completes its streams, so a fake backend plays this one.
func TestFollowFill(t *testing.T) {
	defer func(g time.Duration) { endGrace = g }(endGrace)
	endGrace = 50 * time.Millisecond
	const id = "6f1c1b1e-0000-4000-8000-000000000001"
	for _, tt := range []struct {
		name string
		tail http.HandlerFunc
	}{
		{"no complete", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"type\":\"connected\"}\n\ndata: {\"type\":\"log\",\"message\":\"line one\"}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // open until the client leaves, no complete
		}},
		{"stream refused", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"detail":"gone"}`, http.StatusGone)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /jobs/{id}/{$}", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"id":%q,"status":"SUCCEEDED","action":"train","result":{"ok":1}}`, id)
			})
			mux.HandleFunc("GET /jobs/{id}/tail_console_logs/{$}", tt.tail)
			mux.HandleFunc("GET /jobs/{id}/console_logs/{$}", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `["line one","line two"]`)
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			j, err := OpenJob(t.Context(), Backend{Host: srv.URL, Token: "syn_test"}, id)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			if err := j.Follow(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, e := range rec.all() {
				lines = append(lines, e.Category+": "+e.Message)
			}
			if want := []string{"remote: line one", "remote: line two"}; !slices.Equal(lines, want) {
				t.Errorf("lines = %q, want %q", lines, want)
			}
			if v, err := j.Result(t.Context()); err != nil || !reflect.DeepEqual(v, map[string]any{"ok": float64(1)}) {
				t.Errorf("Result = %v, %v", v, err)
			}
		})
	}
}

// TestSecretsMasked: printing options in any form never shows the token.
func TestSecretsMasked(t *testing.T) {
	const token = "syn_0123456789abcdef0123456789abcdef01234567"
	b := Backend{Host: "http://h:1", Token: token, Tenant: "tenant-secret-value"}
	for _, v := range []any{b, &b, Options{Backend: b, Plugin: "p"}, PublishOptions{Backend: b, Arch: "arm64"}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, token) || strings.Contains(out, "tenant-secret-value") || !strings.Contains(out, "syn_****4567") {
				t.Errorf("%s of %T = %s", verb, v, out)
			}
		}
	}
	if got := fmt.Sprint(Options{Backend: b, Plugin: "p", Agent: 2}); got != `remote.Options{Backend: remote.Backend{Host: "http://h:1", Token: "syn_****4567", Tenant: "****alue"}, Plugin: "p", Agent: 2, Release: "", Debug: false, Language: ""}` {
		t.Errorf("Options = %s", got)
	}
}

// TestRunCancelStopsJob: Run owns its job, so cancelling it stops the job
// on the backend (not only the follower).
func TestRunCancelStopsJob(t *testing.T) {
	p, b := published(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e, err := NewExecutor(p, Options{Backend: b}, synapse.WithLogger(synapse.LoggerFunc(func(e synapse.Event) {
		if e.Type == synapse.EventLog && e.Event == "started" {
			cancel()
		}
	})))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(ctx, "wait", map[string]any{"seconds": 120})
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || !errors.Is(err, context.Canceled) || xe.JobID == "" || !strings.HasSuffix(err.Error(), "context canceled: job "+xe.JobID+" was stopped") {
		t.Fatalf("Run = %v", err)
	}
	j, err := OpenJob(t.Context(), b, xe.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := j.Status(t.Context()); err != nil || st != synapse.JobStopped {
		t.Errorf("status = %s, %v; want STOPPED", st, err)
	}
}

// TestRunJobThatCannotStart: a release the agent cannot start (its plugin
// binary is no binary of this machine) fails the job; Run returns an *ExecutionError with the
// backend's reason (meta.error). The server closes such a job's console
// log, so Run does not need its fallback for a stream that never
// completes (turned off here: without the close, Run would wait for the
// server's 10-minute grace and miss the test's deadline).
func TestRunJobThatCannotStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a synapse server; skipped with -short")
	}
	defer func(g time.Duration) { endGrace = g }(endGrace)
	endGrace = time.Hour
	b := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("config.yaml")
	_, _ = io.WriteString(w, "code: empty\nname: Empty\nversion: 0.1.0\nactions:\n  train: {}\n")
	h := &zip.FileHeader{Name: "synapse-plugin", Method: zip.Deflate}
	h.SetMode(0o755)
	w, _ = zw.CreateHeader(h)
	_, _ = io.WriteString(w, "\x7fELF not a binary of any machine") // publish takes it (a binary of another platform is checked by its agent)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := b.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishRelease(ctx, backend.ReleaseUpload{Plugin: "empty", Version: "0.1.0", Config: json.RawMessage(`{"code":"empty","name":"Empty","actions":{"train":{}}}`), Zip: zbuf.Bytes()}); err != nil {
		t.Fatal(err)
	}
	e, err := NewExecutor(nil, Options{Backend: b, Plugin: "empty"}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(ctx, "train", nil)
	var xe *synapse.ExecutionError
	if !errors.As(err, &xe) || xe.Action != "train" || !strings.Contains(err.Error(), "failed (start): start job ") || !strings.Contains(err.Error(), "exec format error") {
		t.Errorf("Run = %v", err)
	}
}

// TestNotAnAction reads the action list of both forms of synapse server's
// "not an action" answer.
func TestNotAnAction(t *testing.T) {
	for _, detail := range []string{
		`action: "ecoh" is not an action of conformance 1.0 (actions: echo, fail, wait)`,
		`action: "ecoh" is not an action of conformance 1.0 (actions: [echo fail wait])`,
	} {
		err := runError("ecoh", &backend.HTTPError{Status: 400, Detail: detail})
		var ne *synapse.ActionNotFoundError
		if !errors.As(err, &ne) || !slices.Equal(ne.Available, []string{"echo", "fail", "wait"}) || ne.Suggestion != "echo" {
			t.Errorf("runError(%q) = %#v", detail, err)
		}
	}
}
