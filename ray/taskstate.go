package ray

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/renameio/v2"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/cachedir"
	"github.com/synapse-sdk/synapse-go/internal/serve"
)

// stateSubdir holds, below the build cache, what task mode remembers
// between processes: per application config, the direct addresses of its
// workers (pruned by `synapse cache prune`).
const stateSubdir = serve.StateSubdir

// maxWorkers caps the direct addresses remembered per application.
const maxWorkers = 64

// unreachableFor is how long direct calls stay off for an application
// config after a worker could not be reached (a dial that timed out or
// found no route: the caller's network does not reach the nodes, as
// behind a port-forwarded dashboard), so later processes do not pay the
// dial timeout again.
const unreachableFor = time.Hour

// taskState is one file of stateSubdir.
type taskState struct {
	App         string   `json:"app"`
	RoutePrefix string   `json:"route_prefix,omitempty"`
	Workers     []string `json:"workers"`
	// Unreachable, when set, is until when direct calls are off.
	Unreachable time.Time `json:"unreachable_until,omitzero"`
}

// stateKey names the state of one application config on one cluster.
func stateKey(dashboard, proxy, appKey string) string {
	sum := sha256.Sum256([]byte(dashboard + "\x00" + proxy + "\x00" + appKey))
	return hex.EncodeToString(sum[:16])
}

// recall finds workers to call directly without asking Ray: those an
// earlier process learned for the same application config (each address
// names one worker process by its token, learned from an answer naming
// this config's fingerprint; a worker of another config refuses the call).
// The application itself is checked with Serve before any call through the
// proxy. The first time, it builds and packages the plugin (both cached).
func (t *TaskExecutor) recall(ctx context.Context) error {
	t.mu.Lock()
	done := t.app != nil || t.recalled
	t.mu.Unlock()
	if done {
		return nil // no wait behind another goroutine's deploy
	}
	t.deployMu.Lock()
	defer t.deployMu.Unlock()
	t.mu.Lock()
	done = t.app != nil || t.recalled
	t.mu.Unlock()
	if done {
		return nil
	}
	if _, err := t.prepare(ctx); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recalled = true
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
	if json.Unmarshal(b, &st) != nil || st.App != serve.AppName(t.spec.Code, t.spec.PackageName) {
		return nil // not ours to trust: Deploy finds out
	}
	t.unreachable = st.Unreachable
	for _, w := range st.Workers {
		if serve.CheckDirect(w) == w && !slices.Contains(t.workers, w) {
			t.workers = append(t.workers, w)
		}
	}
	if len(t.workers) > 1 {
		t.next = rand.IntN(len(t.workers)) // processes spread over the workers
	}
	return nil
}

// pickWorker returns a worker known to run with room for a call (fewer
// than MaxOngoingRequests of this executor's calls in flight), round
// robin, skipping those in tried, with the config fingerprint it must
// run; or "" for the proxy, with why when a worker was known. The call is
// counted until release.
//
// While fewer workers are known than TaskOptions.Replicas, every other
// call goes through the proxy, which names the worker Serve chose: so
// sequential calls learn the other replicas too.
func (t *TaskExecutor) pickWorker(tried map[string]bool) (addr, config, why string) {
	if t.opts.ProxyOnly {
		return "", "", ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.workers)
	if n == 0 {
		return "", "", ""
	}
	if time.Now().Before(t.unreachable) {
		return "", "", fmt.Sprintf("direct calls are off until %s: a worker could not be reached from here (--proxy-only skips them)", t.unreachable.UTC().Format("15:04 MST"))
	}
	if len(tried) == 0 && n < t.opts.Replicas {
		if t.explore = !t.explore; t.explore {
			return "", "", fmt.Sprintf("learning the other workers' addresses (%d of %d replicas known)", n, t.opts.Replicas)
		}
	}
	limit := max(t.opts.MaxOngoingRequests, 1)
	for i := range n {
		w := t.workers[(t.next+i)%n]
		if !tried[w] && t.inFlight[w] < limit {
			t.next = (t.next + i + 1) % n
			t.inFlight[w]++
			tried[w] = true
			return w, t.appKey, ""
		}
	}
	return "", "", ""
}

// outcome is how a direct call to a worker went, for release.
type outcome int

const (
	callDone    outcome = iota // the call reached the worker (whatever the run's outcome)
	callBusy                   // the worker had no free slot: keep it
	callGone                   // gone, replaced, another config, or its stream cut: forget it
	callNoRoute                // the network does not reach it: direct calls off for a while
)

// release ends a direct call to addr and records what it showed.
func (t *TaskExecutor) release(addr string, o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight[addr]--; t.inFlight[addr] <= 0 {
		delete(t.inFlight, addr)
	}
	switch o {
	case callGone:
		t.bad[addr] = true
		if i := slices.Index(t.workers, addr); i >= 0 {
			t.workers = slices.Delete(t.workers, i, i+1)
		}
	case callNoRoute:
		t.unreachable = time.Now().Add(unreachableFor)
	default:
		return
	}
	t.saveLocked()
}

// learnWorker remembers the direct address a call through the proxy
// reported, when the answer names this executor's config.
func (t *TaskExecutor) learnWorker(st *serve.Stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.Direct == "" || st.Config != t.appKey || t.bad[st.Direct] || slices.Contains(t.workers, st.Direct) {
		return
	}
	if len(t.workers) >= maxWorkers {
		t.workers = t.workers[1:]
	}
	t.workers = append(t.workers, st.Direct)
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

// saveLocked writes the state file, or removes it when there is nothing
// to remember. It is a cache: a write that fails only costs the next
// process a Serve check.
func (t *TaskExecutor) saveLocked() {
	if t.state == "" || t.spec == nil {
		return
	}
	if len(t.workers) == 0 && !time.Now().Before(t.unreachable) {
		_ = os.Remove(t.state)
		return
	}
	st := taskState{App: serve.AppName(t.spec.Code, t.spec.PackageName), Workers: t.workers}
	if t.app != nil {
		st.RoutePrefix = t.app.RoutePrefix
	}
	if time.Now().Before(t.unreachable) {
		st.Unreachable = t.unreachable
	}
	b, _ := json.Marshal(st)
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
