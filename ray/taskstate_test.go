package ray

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
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
	te.state = filepath.Join(t.TempDir(), stateSubdir, "k.json")
	te.recalled = true
	return te
}

const (
	w1 = "http://10.0.0.1:4001/aa/"
	w2 = "http://10.0.0.2:4002/bb/"
)

func TestPickWorker(t *testing.T) {
	te := newTestTask(t, TaskOptions{MaxOngoingRequests: 2})
	te.app = &serve.App{Name: "synapse-p-01234567", RoutePrefix: "/synapse-p-01234567"}
	if got := te.pickWorker(map[string]bool{}); got != "" {
		t.Fatalf("no worker known: got %q", got)
	}
	te.learnWorker(w1)
	te.learnWorker(w2)
	te.learnWorker(w1) // known already
	if !slices.Equal(te.workers, []string{w1, w2}) {
		t.Fatalf("workers = %v", te.workers)
	}
	// Round robin, at most MaxOngoingRequests of ours on each.
	var got []string
	for range 5 {
		got = append(got, te.pickWorker(map[string]bool{}))
	}
	if !slices.Equal(got, []string{w1, w2, w1, w2, ""}) {
		t.Fatalf("picks = %q, want w1 w2 w1 w2 then the proxy", got)
	}
	te.release(w1, false) // busy answer: kept
	if p := te.pickWorker(map[string]bool{}); p != w1 {
		t.Fatalf("after a release: %q, want w1", p)
	}
	// A call tries each worker once.
	tried := map[string]bool{w1: true}
	te.release(w1, false)
	te.release(w2, false)
	if p := te.pickWorker(tried); p != w2 {
		t.Fatalf("with w1 tried: %q", p)
	}
	// A worker that failed is dropped for good, even when the proxy names it again.
	te.release(w2, true)
	te.learnWorker(w2)
	if !slices.Equal(te.workers, []string{w1}) {
		t.Fatalf("workers after dropping w2 = %v", te.workers)
	}
	// ProxyOnly never picks one.
	te.opts.ProxyOnly = true
	if p := te.pickWorker(map[string]bool{}); p != "" {
		t.Fatalf("ProxyOnly picked %q", p)
	}
}

// What one executor learned, the next (another process) recalls; only
// well-formed addresses for the same application are trusted.
func TestRecallState(t *testing.T) {
	te := newTestTask(t, TaskOptions{})
	te.app = &serve.App{Name: serve.AppName("p", te.spec.PackageName), RoutePrefix: "/x"}
	te.learnWorker(w1)
	fi, err := os.Stat(te.state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}

	tests := []struct {
		name  string
		state string // "" keeps what te wrote
		want  []string
	}{
		{"written by the executor", "", []string{w1}},
		{"another application", `{"app":"synapse-p-ffffffff","route_prefix":"/x","workers":["` + w1 + `"]}`, nil},
		{"not JSON", `{"app":`, nil},
		{"bad addresses dropped", `{"app":"` + te.app.Name + `","route_prefix":"/x","workers":["https://10.0.0.9:1/x/","` + w2 + `","no"]}`, []string{w2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.state != "" {
				if err := os.WriteFile(te.state, []byte(tt.state), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			next := newTestTask(t, TaskOptions{})
			next.state, next.recalled = te.state, false
			next.spec = te.spec // prepare is skipped when spec is set
			if err := next.recall(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(next.workers, tt.want) || next.app != nil {
				t.Fatalf("recalled workers %v, app %v; want %v and no app (Serve checks it)", next.workers, next.app, tt.want)
			}
		})
	}

	// Dropping the last worker of an unknown app removes the file; forget
	// removes it too.
	te.forget(te.app)
	if _, err := os.Stat(te.state); !os.IsNotExist(err) {
		t.Fatalf("state after forget: %v", err)
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
			te.app = &serve.App{Name: serve.AppName("p", te.spec.PackageName), RoutePrefix: "/x"}
			te.learnWorker(w1)
			when := time.Now().Add(-tc.ago)
			if err := os.Chtimes(te.state, when, when); err != nil {
				t.Fatal(err)
			}
			next := newTestTask(t, TaskOptions{})
			next.state, next.recalled, next.spec = te.state, false, te.spec
			if err := next.recall(t.Context()); err != nil || !slices.Equal(next.workers, []string{w1}) {
				t.Fatalf("recall: %v, workers %v", err, next.workers)
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
