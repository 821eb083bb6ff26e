package ray

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/serve"
)

func newTestTask(t *testing.T, opts TaskOptions) *TaskExecutor {
	t.Helper()
	opts.Address = "http://127.0.0.1:8265"
	te, err := NewTaskExecutor(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	te.spec = &serve.Spec{Code: "p", PackageName: "_ray_pkg_0123456789abcdef.zip", BinaryName: "synapse-plugin"}
	te.appKey = serve.AppKey(*te.spec)
	te.state = filepath.Join(t.TempDir(), stateSubdir, "k.json")
	te.recalled = true
	return te
}

const (
	w1 = "http://10.0.0.1:4001/aa/"
	w2 = "http://10.0.0.2:4002/bb/"
)

// learn is what a call through the proxy reports: addr, for config key.
func learn(te *TaskExecutor, addr, key string) {
	te.learnWorker(&serve.Stream{Direct: addr, Config: key})
}

func TestPickWorker(t *testing.T) {
	te := newTestTask(t, TaskOptions{MaxOngoingRequests: 2})
	pick := func(tried map[string]bool) string {
		addr, key, _ := te.pickWorker(tried)
		if addr != "" && key != te.appKey {
			t.Fatalf("picked %s with config %q, want %q", addr, key, te.appKey)
		}
		return addr
	}
	if got := pick(map[string]bool{}); got != "" {
		t.Fatalf("no worker known: got %q", got)
	}
	learn(te, w1, te.appKey)
	learn(te, w2, te.appKey)
	learn(te, w1, te.appKey)                    // known already
	learn(te, "http://10.0.0.3:1/cc/", "other") // a worker of another config
	learn(te, "http://10.0.0.4:1/dd/", "")      // an answer naming no config
	if !slices.Equal(te.workers, []string{w1, w2}) {
		t.Fatalf("workers = %v", te.workers)
	}
	// Round robin, at most MaxOngoingRequests of ours on each.
	var got []string
	for range 5 {
		got = append(got, pick(map[string]bool{}))
	}
	if !slices.Equal(got, []string{w1, w2, w1, w2, ""}) {
		t.Fatalf("picks = %q, want w1 w2 w1 w2 then the proxy", got)
	}
	te.release(w1, callBusy) // busy answer: kept
	if p := pick(map[string]bool{}); p != w1 {
		t.Fatalf("after a release: %q, want w1", p)
	}
	// A call tries each worker once.
	tried := map[string]bool{w1: true}
	te.release(w1, callDone)
	te.release(w2, callDone)
	if p := pick(tried); p != w2 {
		t.Fatalf("with w1 tried: %q", p)
	}
	// A worker that failed is dropped for good, even when the proxy names
	// it again; the state keeps the others.
	te.release(w2, callGone)
	learn(te, w2, te.appKey)
	if !slices.Equal(te.workers, []string{w1}) {
		t.Fatalf("workers after dropping w2 = %v", te.workers)
	}
	if st := readState(t, te.state); !slices.Equal(st.Workers, []string{w1}) {
		t.Fatalf("state after dropping w2 = %+v", st)
	}
	// ProxyOnly never picks one.
	te.opts.ProxyOnly = true
	if p := pick(map[string]bool{}); p != "" {
		t.Fatalf("ProxyOnly picked %q", p)
	}
}

// A worker the network does not reach turns direct calls off, for this
// executor and, through the state, for the next processes.
func TestUnreachable(t *testing.T) {
	te := newTestTask(t, TaskOptions{})
	learn(te, w1, te.appKey)
	learn(te, w2, te.appKey)
	addr, _, _ := te.pickWorker(map[string]bool{})
	te.release(addr, callNoRoute)
	if p, _, why := te.pickWorker(map[string]bool{}); p != "" || !strings.Contains(why, "direct calls are off until") {
		t.Fatalf("picked %q (%q) after an unreachable worker", p, why)
	}
	st := readState(t, te.state)
	if time.Until(st.Unreachable) < 50*time.Minute || len(st.Workers) != 2 {
		t.Fatalf("state = %+v, want both workers and direct calls off for an hour", st)
	}
	next := recallFrom(t, te)
	if p, _, _ := next.pickWorker(map[string]bool{}); p != "" {
		t.Fatalf("the next process picked %q", p)
	}
	// Once the hour is over, they are tried again.
	st.Unreachable = time.Now().Add(-time.Minute)
	writeState(t, te.state, st)
	if p, _, _ := recallFrom(t, te).pickWorker(map[string]bool{}); p == "" {
		t.Fatal("direct calls still off after the hour")
	}
}

func readState(t *testing.T, path string) taskState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st taskState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func writeState(t *testing.T, path string, st taskState) {
	t.Helper()
	b, _ := json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// recallFrom is a new executor (another process) recalling te's state.
func recallFrom(t *testing.T, te *TaskExecutor) *TaskExecutor {
	t.Helper()
	next := newTestTask(t, TaskOptions{})
	next.state, next.recalled, next.spec, next.appKey = te.state, false, te.spec, te.appKey
	if err := next.recall(t.Context()); err != nil {
		t.Fatal(err)
	}
	return next
}

// While fewer workers are known than Replicas, every other call goes
// through the proxy to learn the others; then all go straight.
func TestPickWorkerLearnsReplicas(t *testing.T) {
	te := newTestTask(t, TaskOptions{Replicas: 2})
	learn(te, w1, te.appKey)
	var got []string
	for range 4 {
		addr, _, why := te.pickWorker(map[string]bool{})
		if addr == "" && !strings.Contains(why, "1 of 2 replicas known") {
			t.Fatalf("why = %q", why)
		}
		if addr != "" {
			te.release(addr, callDone)
		}
		got = append(got, addr)
	}
	if !slices.Equal(got, []string{"", w1, "", w1}) {
		t.Fatalf("picks = %q, want every other call through the proxy", got)
	}
	learn(te, w2, te.appKey)
	for i := range 4 {
		addr, _, _ := te.pickWorker(map[string]bool{})
		if addr == "" {
			t.Fatalf("call %d went through the proxy with both workers known", i)
		}
		te.release(addr, callDone)
	}
}

// What one executor learned, the next (another process) recalls; only
// well-formed addresses for the same application are trusted.
func TestRecallState(t *testing.T) {
	te := newTestTask(t, TaskOptions{})
	learn(te, w1, te.appKey)
	fi, err := os.Stat(te.state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}
	app := serve.AppName("p", te.spec.PackageName)
	tests := []struct {
		name  string
		state string // "" keeps what te wrote
		want  []string
	}{
		{"written by the executor", "", []string{w1}},
		{"another application", `{"app":"synapse-p-ffffffff","workers":["` + w1 + `"]}`, nil},
		{"not JSON", `{"app":`, nil},
		{"bad addresses dropped", `{"app":"` + app + `","workers":["https://10.0.0.9:1/x/","` + w2 + `","no"]}`, []string{w2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.state != "" {
				if err := os.WriteFile(te.state, []byte(tt.state), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			next := recallFrom(t, te)
			if !slices.Equal(next.workers, tt.want) || next.app != nil {
				t.Fatalf("recalled workers %v, app %v; want %v and no app (Serve checks it)", next.workers, next.app, tt.want)
			}
		})
	}

	// With no worker left the file goes.
	writeState(t, te.state, taskState{App: app, Workers: []string{w1}})
	next := recallFrom(t, te)
	addr, _, _ := next.pickWorker(map[string]bool{})
	next.release(addr, callGone)
	if _, err := os.Stat(te.state); !os.IsNotExist(err) {
		t.Fatalf("state after its last worker went: %v", err)
	}
}

// TestRecallRecordsUse: reading the state of an earlier process is a use
// of the cache entry: a file last used over an hour ago gets its
// modification time set to now (synapse cache prune keeps it).
func TestRecallRecordsUse(t *testing.T) {
	for _, tc := range []struct {
		ago     time.Duration
		touched bool
	}{{40 * 24 * time.Hour, true}, {30 * time.Minute, false}} {
		t.Run(tc.ago.String(), func(t *testing.T) {
			te := newTestTask(t, TaskOptions{})
			learn(te, w1, te.appKey)
			when := time.Now().Add(-tc.ago)
			if err := os.Chtimes(te.state, when, when); err != nil {
				t.Fatal(err)
			}
			if next := recallFrom(t, te); !slices.Equal(next.workers, []string{w1}) {
				t.Fatalf("recall: workers %v", next.workers)
			}
			fi, err := os.Stat(te.state)
			if err != nil {
				t.Fatal(err)
			}
			if touched := time.Since(fi.ModTime()) < time.Minute; touched != tc.touched {
				t.Errorf("last used %v ago: touched = %v, want %v", tc.ago, touched, tc.touched)
			}
		})
	}
}

func TestForgetApps(t *testing.T) {
	root := t.TempDir()
	t.Setenv("SYNAPSE_CACHE_DIR", root)
	dir := filepath.Join(root, stateSubdir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, app := range map[string]string{"a.json": "synapse-p-01234567", "b.json": "synapse-q-01234567"} {
		b, _ := json.Marshal(taskState{App: app, RoutePrefix: "/" + app, Workers: []string{w1}})
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	forgetApps([]string{"synapse-p-01234567"})
	left, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(left) != 1 || filepath.Base(left[0]) != "b.json" {
		t.Fatalf("left %v, want only b.json", left)
	}
}
