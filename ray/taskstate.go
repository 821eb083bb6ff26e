package ray

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/renameio/v2"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/cachedir"

	"github.com/synapse-sdk/synapse-go/internal/serve"
)

// stateSubdir holds, below the build cache, what task mode remembers
// between processes: per application config, the application and the
// direct addresses of its workers (pruned by `synapse cache prune`).
const stateSubdir = serve.StateSubdir

// maxWorkers caps the direct addresses remembered per application.
const maxWorkers = 64

// taskState is one file of stateSubdir.
type taskState struct {
	App         string   `json:"app"`
	RoutePrefix string   `json:"route_prefix"`
	Workers     []string `json:"workers"`
}

// stateKey names the state of one application config on one cluster.
func stateKey(dashboard, proxy, appKey string) string {
	sum := sha256.Sum256([]byte(dashboard + "\x00" + proxy + "\x00" + appKey))
	return hex.EncodeToString(sum[:16])
}

// recall finds workers to call directly without asking Ray: those an
// earlier process learned for the same application config. Only their
// addresses are trusted (each names one worker process by its token, and
// was learned while the config was the one Deploy checked); the
// application itself is checked with Serve before any call through the
// proxy. The first time, it builds and packages the plugin (both cached).
func (t *TaskExecutor) recall(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.app != nil || t.recalled {
		return nil
	}
	t.recalled = true
	if _, err := t.prepare(ctx); err != nil {
		return err
	}
	// Reading it is a use of the cache entry (recorded once an hour).
	fi, err := os.Stat(t.state)
	if err != nil || !cachedir.Used(t.state, fi.ModTime()) {
		return nil // nothing remembered: Deploy finds out
	}
	b, err := os.ReadFile(t.state)
	if err != nil {
		return nil
	}
	var st taskState
	if json.Unmarshal(b, &st) != nil || st.App != serve.AppName(t.spec.Code, t.spec.PackageName) || st.RoutePrefix == "" {
		return nil // not ours to trust: Deploy finds out
	}
	for _, w := range st.Workers {
		if serve.CheckDirect(w) == w && !slices.Contains(t.workers, w) {
			t.workers = append(t.workers, w)
		}
	}
	return nil
}

// pickWorker returns a worker known to run with room for a call (fewer
// than MaxOngoingRequests of this executor's calls in flight), round
// robin, skipping those in tried, or "" for the proxy. The call is counted
// until release.
func (t *TaskExecutor) pickWorker(tried map[string]bool) string {
	if t.opts.ProxyOnly {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := max(t.opts.MaxOngoingRequests, 1)
	n := len(t.workers)
	for i := range n {
		w := t.workers[(t.next+i)%n]
		if !tried[w] && t.inFlight[w] < limit {
			t.next = (t.next + i + 1) % n
			t.inFlight[w]++
			tried[w] = true
			return w
		}
	}
	return ""
}

// release ends a direct call to addr; drop forgets the worker (gone,
// replaced, unreachable, or its stream cut) for good: a restarted worker
// has a new address.
func (t *TaskExecutor) release(addr string, drop bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight[addr]--; t.inFlight[addr] <= 0 {
		delete(t.inFlight, addr)
	}
	if !drop {
		return
	}
	t.bad[addr] = true
	if i := slices.Index(t.workers, addr); i >= 0 {
		t.workers = slices.Delete(t.workers, i, i+1)
		t.saveLocked()
	}
}

// learnWorker remembers the direct address a call through the proxy
// reported.
func (t *TaskExecutor) learnWorker(addr string) {
	if addr == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.app == nil || t.bad[addr] || slices.Contains(t.workers, addr) {
		return
	}
	if len(t.workers) >= maxWorkers {
		t.workers = t.workers[1:]
	}
	t.workers = append(t.workers, addr)
	t.saveLocked()
}

// forget drops app (gone from the cluster) and its workers.
func (t *TaskExecutor) forget(app *serve.App) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.app != app {
		return
	}
	t.app, t.workers = nil, nil
	t.saveLocked()
}

// saveLocked writes the state file (or removes it without an app). It is
// a cache: a write that fails only costs the next process a Serve check.
func (t *TaskExecutor) saveLocked() {
	if t.state == "" {
		return
	}
	if t.app == nil {
		_ = os.Remove(t.state)
		return
	}
	b, _ := json.Marshal(taskState{App: t.app.Name, RoutePrefix: t.app.RoutePrefix, Workers: t.workers})
	if err := os.MkdirAll(filepath.Dir(t.state), 0o700); err != nil {
		return
	}
	_ = renameio.WriteFile(t.state, b, 0o600)
}

// forgetApps removes the task state of the applications named (removed
// from the cluster) from the default build cache.
func forgetApps(names []string) {
	root, err := build.DefaultCacheDir()
	if err != nil || len(names) == 0 {
		return
	}
	files, _ := filepath.Glob(filepath.Join(root, stateSubdir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		var st taskState
		if err == nil && json.Unmarshal(b, &st) == nil && slices.Contains(names, st.App) {
			_ = os.Remove(f)
		}
	}
}
