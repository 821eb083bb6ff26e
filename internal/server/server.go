package server

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/ray"
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
	// Agents are the agents (default one process agent, "local").
	Agents []AgentSpec
	// MaxJobs is how many jobs each agent runs at once (default 4).
	MaxJobs int
	// PublicURL is the server's URL as its jobs reach it (their
	// SYNAPSE_HOST), for Ray agents on other machines; default
	// http://ADDR.
	PublicURL string
	// VenvDir holds the process agents' Python environments (Python
	// releases); default DataDir/venvs.
	VenvDir string
	// ShutdownGrace is how long a stop waits for requests in flight (SSE
	// followers end at once) before it closes their connections (default
	// 3 s).
	ShutdownGrace time.Duration
}

// AgentSpec is one agent: a process agent, or a Ray agent when Ray is set.
type AgentSpec struct {
	// Name is the agent's name: 1 to 64 letters, digits, '-' or '_'.
	Name string
	// Ray is the Ray dashboard address of a Ray agent (see
	// ray.ResolveAddress), "" for a process agent.
	Ray string
}

// ParseAgent reads an --agent value: NAME=process or NAME=ray:ADDRESS
// (ADDRESS a Ray dashboard address as ray.ResolveAddress takes it, such
// as 127.0.0.1:8265 or http://head:8265).
func ParseAgent(v string) (AgentSpec, error) {
	name, kind, _ := strings.Cut(v, "=")
	if !validAgentName(name) {
		return AgentSpec{}, fmt.Errorf("want NAME=process or NAME=ray:ADDRESS, NAME of 1 to 64 letters, digits, '-' or '_' (got %q)", v)
	}
	switch {
	case kind == "process":
		return AgentSpec{Name: name}, nil
	case strings.HasPrefix(kind, "ray:"):
		addr, err := ray.ResolveAddress(strings.TrimPrefix(kind, "ray:"))
		if err != nil || strings.TrimPrefix(kind, "ray:") == "" {
			return AgentSpec{}, fmt.Errorf("agent %s: want ray:ADDRESS with the Ray dashboard address, such as ray:127.0.0.1:8265 (got %q)", name, kind)
		}
		return AgentSpec{Name: name, Ray: addr}, nil
	}
	return AgentSpec{}, fmt.Errorf("agent %s: want NAME=process or NAME=ray:ADDRESS (got %q)", name, v)
}

func validAgentName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
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

// CheckDB checks a --db value: "" (SQLite in the data directory) or a
// postgres:// or postgresql:// URL. Anything else is an error whose text
// shows the value with its password masked ("want a postgres:// URL (got
// mysql://u:***@h/db)"): it is never taken for an SQLite file's path.
func CheckDB(db string) error {
	if db == "" || store.IsPostgresURL(db) {
		return nil
	}
	return fmt.Errorf("want a postgres:// URL (got %s)", store.Redact(db))
}

// CheckAddr checks a listen address (--addr): HOST:PORT, HOST a name or
// IP address or empty (all interfaces), PORT 0 to 65535.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, such as 127.0.0.1:8080 or :8080 (got %q)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want HOST:PORT with PORT from 0 to 65535 (got %q)", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("want HOST:PORT with HOST a name or IP address (got %q)", addr)
	}
	return nil
}

// OpenStore opens the server's database: cfg.DB, else DataDir/synapse.db.
// A DB that is not a PostgreSQL URL is an error (see CheckDB).
func OpenStore(ctx context.Context, cfg Config) (*store.Store, error) {
	if err := CheckDB(cfg.DB); err != nil {
		return nil, fmt.Errorf("open store: --db: %w", err)
	}
	if cfg.DB != "" {
		return store.Open(ctx, cfg.DB)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return store.Open(ctx, filepath.Join(cfg.DataDir, "synapse.db"))
}

// Serve runs the server until ctx is cancelled, then shuts down: it stops
// accepting, ends the console log streams and stops following the jobs,
// which run on (a process agent's processes and a Ray agent's Ray jobs);
// the next start re-attaches to them (API.Recover). On its first start (no
// tokens yet) it creates an admin token and prints it once to out.
func Serve(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if len(cfg.Agents) == 0 {
		cfg.Agents = []AgentSpec{{Name: "local"}}
	}
	seen := map[string]bool{}
	for _, a := range cfg.Agents {
		if !validAgentName(a.Name) || seen[a.Name] {
			return fmt.Errorf("start server: agent %q: names must be unique, of 1 to 64 letters, digits, '-' or '_'", a.Name)
		}
		seen[a.Name] = true
	}
	if err := CheckAddr(cfg.Addr); err != nil {
		return fmt.Errorf("start server: --addr: %w", err)
	}
	if err := CheckDB(cfg.DB); err != nil {
		return fmt.Errorf("start server: --db: %w", err)
	}
	// Listen before anything is created: an address in use leaves no
	// data directory behind.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("start server: %w (use --addr for another address)", err)
	}
	defer ln.Close() // after Serve, a no-op
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	unlockDB, err := st.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlockDB()
	host := "http://" + ln.Addr().String()
	if cfg.PublicURL != "" {
		host = strings.TrimRight(cfg.PublicURL, "/")
	}
	if toks, err := st.ListTokens(ctx); err != nil {
		return err
	} else if len(toks) == 0 {
		secret, _, err := st.CreateToken(ctx, "admin", store.TokenAdmin, "")
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprint(out, firstStartText(host, secret))
	}
	releases := &Releases{Dir: filepath.Join(cfg.DataDir, "releases"), WorkDir: filepath.Join(cfg.DataDir, "work")}
	api := &API{Store: st, Releases: releases, Host: host, MaxJobs: cfg.MaxJobs, Runners: map[string]Runner{}, ProcessRunDir: filepath.Join(cfg.DataDir, "run")}
	var runners []Runner
	names := make([]string, len(cfg.Agents))
	for i, spec := range cfg.Agents {
		names[i] = spec.Name
	}
	// IDs by name, kept in the store: reordered flags change no ID, and the
	// jobs of an agent no longer configured keep theirs.
	ids, err := st.AgentIDs(ctx, names)
	if err != nil {
		return err
	}
	api.AgentIDs = ids
	for i, spec := range cfg.Agents {
		ag := Agent{ID: ids[spec.Name], Name: spec.Name, URL: host, Kind: "process"}
		var r Runner
		if spec.Ray == "" {
			r = &ProcessAgent{Store: st, Releases: releases, RunDir: filepath.Join(cfg.DataDir, "run", spec.Name), Done: api.JobDone,
				Venvs: &pyenv.Cache{Dir: cmp.Or(cfg.VenvDir, filepath.Join(cfg.DataDir, "venvs"))}}
			names[i] = spec.Name + " (process)"
		} else {
			client, err := ray.NewClient(spec.Ray, ray.WithAddressHint("check the address in --agent "+spec.Name+"=ray:ADDRESS"))
			if err != nil {
				ln.Close()
				return fmt.Errorf("start server: agent %s: %w", spec.Name, err)
			}
			r = &RayAgent{Name: spec.Name, Store: st, Releases: releases, Client: client, Done: api.JobDone}
			ag.Kind, ag.URL = "ray", client.Address()
			names[i] = spec.Name + " (ray " + client.Address() + ")"
			vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := client.Version(vctx); err != nil {
				fmt.Fprintf(out, "synapse server: warning: agent %s: the Ray dashboard does not answer yet: %v\n", spec.Name, err)
			}
			cancel()
		}
		runners = append(runners, r)
		api.Runners[spec.Name] = r
		api.Agents = append(api.Agents, ag)
	}
	closeRunners := func() {
		for _, r := range runners {
			r.Close()
		}
	}
	rec, err := api.Recover(ctx)
	if err != nil {
		ln.Close()
		closeRunners()
		return err
	}
	if rec != (Recovered{}) {
		stopped := ""
		if rec.Stopped > 0 {
			stopped = fmt.Sprintf(" (%d of them of an agent no longer configured, whose processes were stopped)", rec.Stopped)
		}
		fmt.Fprintf(out, "synapse server: jobs left by the previous run: %d re-attached, %d had ended and are settled, %d handed to their agents again, %d failed%s\n", rec.Attached, rec.Settled, rec.Queued, rec.Failed, stopped)
	}
	serveCtx, stopStreams := context.WithCancel(context.WithoutCancel(ctx))
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute, // keep-alive connections with no request

		BaseContext: func(net.Listener) context.Context { return serveCtx },
	}
	slots := cfg.MaxJobs
	if slots <= 0 {
		slots = 4
	}
	fmt.Fprintf(out, "synapse server: dashboard at %s/ui/ (sign in with an admin token)\n", host)
	fmt.Fprintf(out, "synapse server listening on %s (store: %s; agents: %s; %s at once per agent)\n", "http://"+ln.Addr().String(), st.Dialect(), strings.Join(names, ", "), count(slots, "job", "jobs"))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopStreams()
		closeRunners()
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "synapse server: shutting down; running jobs run on and are re-attached at the next start")
	stopStreams() // SSE followers see their request end and close cleanly
	grace := cfg.ShutdownGrace
	if grace <= 0 {
		grace = 3 * time.Second
	}
	// Shutdown closes the listener and the idle connections and waits for
	// the requests in flight; those still going after the grace (a client
	// that stalled mid-body) are closed: a stop is not an error.
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		fmt.Fprintf(out, "synapse server: requests still in flight after %s are cut off\n", grace)
		_ = srv.Close()
	}
	closeRunners()
	return nil
}

// firstStartText is what the first start prints: the admin token, once,
// with the synapse login command that uses it against host (the server's
// URL, --public-url when given).
func firstStartText(host, secret string) string {
	return fmt.Sprintf("Created the admin access token; it is shown only this once, keep it:\n\n  %s\n\nLog in with it:\n\n  synapse login --host %s -t %s\n\nOther clients send it as the header Synapse-Access-Token: Token <token>. More tokens: synapse server token create.\n\n", secret, host, secret)
}

// count is "1 job", "2 jobs": n with the singular or plural noun.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// lockDataDir takes DataDir/server.lock (flock, released when the process
// ends however it ends) and writes this process's ID in it: two servers on
// one data directory would both re-attach and run the same jobs.
func lockDataDir(dir string) (unlock func(), err error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("start server: --data-dir %s is not a directory: give a directory (a new one is created)", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	path := filepath.Join(dir, "server.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("start server: another synapse server (PID %s) uses %s: stop it, or give this one another --data-dir", strings.TrimSpace(string(b)), dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
