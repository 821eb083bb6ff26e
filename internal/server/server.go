package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// Config is how `synapse server` runs.
type Config struct {
	// Addr is the listen address (default 127.0.0.1:8080).
	Addr string
	// DataDir holds the SQLite database (unless DB is set), the release
	// zips and their unpacked files; created 0700.
	DataDir string
	// DB is a postgres:// URL, or "" for SQLite in DataDir.
	DB string
	// Agents are the agents' names, each a process agent (default one,
	// "local").
	Agents []string
	// MaxJobs is how many jobs each agent runs at once (default 4).
	MaxJobs int
}

// DefaultDataDir is $XDG_DATA_HOME/synapse-go/server, else
// ~/.local/share/synapse-go/server.
func DefaultDataDir() string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "synapse-go", "server")
}

// OpenStore opens the server's database: cfg.DB, else DataDir/synapse.db.
func OpenStore(ctx context.Context, cfg Config) (*store.Store, error) {
	if cfg.DB != "" {
		return store.Open(ctx, cfg.DB)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return store.Open(ctx, filepath.Join(cfg.DataDir, "synapse.db"))
}

// Serve runs the server until ctx is cancelled, then shuts down: it stops
// accepting, ends the console log streams, stops the jobs still running
// (STOPPED) and closes the store. On its first start (no tokens yet) it
// creates an admin token and prints it once to out.
func Serve(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if len(cfg.Agents) == 0 {
		cfg.Agents = []string{"local"}
	}
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("start server: %w (use --addr for another address)", err)
	}
	host := "http://" + ln.Addr().String()
	if err := reconcile(ctx, st); err != nil {
		ln.Close()
		return err
	}
	if toks, err := st.ListTokens(ctx); err != nil {
		ln.Close()
		return err
	} else if len(toks) == 0 {
		secret, _, err := st.CreateToken(ctx, "admin", store.TokenAdmin, "")
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(out, "Created the admin access token; it is shown only this once, keep it:\n\n  %s\n\nClients send it as the header Synapse-Access-Token: Token <token>. More tokens: synapse server token create.\n\n", secret)
	}
	releases := &Releases{Dir: filepath.Join(cfg.DataDir, "releases"), WorkDir: filepath.Join(cfg.DataDir, "work")}
	api := &API{Store: st, Releases: releases, Host: host, MaxJobs: cfg.MaxJobs, Runners: map[string]Runner{}}
	agents := map[string]*ProcessAgent{}
	for i, name := range cfg.Agents {
		a := &ProcessAgent{Store: st, Releases: releases, Done: api.JobDone}
		agents[name] = a
		api.Runners[name] = a
		api.Agents = append(api.Agents, Agent{ID: i + 1, Name: name, URL: host, Kind: "process"})
	}
	serveCtx, stopStreams := context.WithCancel(context.WithoutCancel(ctx))
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return serveCtx },
	}
	names := make([]string, len(cfg.Agents))
	for i, n := range cfg.Agents {
		names[i] = n + " (process)"
	}
	slots := cfg.MaxJobs
	if slots <= 0 {
		slots = 4
	}
	fmt.Fprintf(out, "synapse server listening on %s (store: %s; agents: %s; %d jobs at once per agent)\n", host, st.Dialect(), strings.Join(names, ", "), slots)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopStreams()
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "synapse server: shutting down")
	stopStreams() // SSE followers see their request end and close cleanly
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	for _, a := range agents {
		a.StopAll(shutCtx)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// reconcile settles the jobs a previous server left behind: their tokens
// are revoked, so they can never report again, and they become FAILED
// with the reason. A plugin process a killed server left running is not
// stopped here (its process group is not recorded yet): it runs to its
// end, its reports refused.
func reconcile(ctx context.Context, st *store.Store) error {
	for _, status := range []string{store.StatusRunning, store.StatusPending} {
		after := ""
		for {
			jobs, next, err := st.ListJobs(ctx, store.JobFilter{Status: status, After: after})
			if err != nil {
				return err
			}
			for _, j := range jobs {
				msg := "the server stopped while the job " + map[string]string{store.StatusRunning: "ran", store.StatusPending: "waited"}[status] + "; it can no longer report (a plugin process still running is not stopped)"
				meta := []byte(fmt.Sprintf(`{"error":{"error_type":"server_restart","message":%q}}`, msg))
				res := []byte(fmt.Sprintf(`{"error":%q}`, msg))
				_, _ = st.UpdateJob(ctx, j.ID, store.JobUpdate{Status: store.StatusFailed, Result: res, Meta: meta})
				_ = st.RevokeToken(ctx, j.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
	}
	return nil
}

// StopAll stops every job running on the agent.
func (p *ProcessAgent) StopAll(ctx context.Context) {
	p.mu.Lock()
	ids := make([]string, 0, len(p.running))
	for id := range p.running {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		_ = p.Stop(ctx, id)
	}
}
