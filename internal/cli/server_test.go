package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/synapse-sdk/synapse-go/internal/server"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

// cmdStartServer starts a synapse server in this process, on a free port
// with its data in $WORK/server-data, and sets $HOST to its URL and $TOKEN
// to an admin token: `startserver [NAME=process|NAME=ray:ADDRESS ...]`
// (default one process agent, local). It stops when the script ends.
func cmdStartServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: startserver [AGENT...]")
	}
	// The Python scripts' shared environments serve the process agents too.
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(ts.Getenv("WORK"), "server-data"), MaxJobs: 2, VenvDir: ts.Getenv("SYNAPSE_VENV_DIR")}
	for _, a := range args {
		spec, err := server.ParseAgent(a)
		ts.Check(err)
		cfg.Agents = append(cfg.Agents, spec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := server.OpenStore(ctx, cfg)
	ts.Check(err)
	secret, _, err := st.CreateToken(ctx, "test", store.TokenAdmin, "")
	ts.Check(err)
	ts.Check(st.Close())
	out := &listenWriter{addr: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, cfg, out) }()
	ts.Defer(func() {
		cancel()
		if err := <-done; err != nil {
			ts.Logf("server: %v", err)
		}
	})
	select {
	case addr := <-out.addr:
		ts.Setenv("HOST", addr)
		ts.Setenv("TOKEN", secret)
	case err := <-done:
		ts.Fatalf("the server did not start: %v\n%s", err, out.text())
	case <-time.After(time.Minute):
		ts.Fatalf("the server did not start within a minute:\n%s", out.text())
	}
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// listenWriter is the server's output; it sends the URL the server
// listens on to addr.
type listenWriter struct {
	mu   sync.Mutex
	b    strings.Builder
	sent bool
	addr chan string
}

func (w *listenWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if m := listening.FindStringSubmatch(w.b.String()); m != nil && !w.sent {
		w.sent = true
		w.addr <- m[1]
	}
	return len(p), nil
}

func (w *listenWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// cmdFileMode checks a file's permission bits: `filemode 0600 PATH`.
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode MODE PATH")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	st, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := st.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s: mode %#o, want %#o", args[1], got, want)
	}
}

// cmdSetKey sets a string key of a JSON object file, as another tool
// would: `setkey FILE KEY VALUE`.
func cmdSetKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: setkey FILE KEY VALUE")
	}
	path := ts.MkAbs(args[0])
	var m map[string]any
	b, err := os.ReadFile(path)
	ts.Check(err)
	ts.Check(json.Unmarshal(b, &m))
	m[args[1]] = args[2]
	b, err = json.Marshal(m)
	ts.Check(err)
	ts.Check(os.WriteFile(path, b, 0o600))
}

// cmdEnvStdout sets an environment variable to the last command's
// standard output, trimmed: `envstdout NAME`.
func cmdEnvStdout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: envstdout NAME")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile("stdout")))
}

// cmdEnvMatch sets an environment variable to the first group of a
// regular expression in the last command's stdout or stderr: `envmatch
// NAME stdout|stderr REGEXP`.
func cmdEnvMatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 || args[1] != "stdout" && args[1] != "stderr" {
		ts.Fatalf("usage: envmatch NAME stdout|stderr REGEXP")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	if len(m) < 2 {
		ts.Fatalf("envmatch: no match of %s with a group in %s", args[2], args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdFakeBackend starts a fake Synapse backend for the answers the real
// server does not give, and sets $FAKE to its URL: `fakebackend
// forbidden|servererror|dropped`. forbidden answers 403 to everything;
// servererror answers 500 with a v2 error and a request ID; dropped lists
// one agent and drops the connection of a run request once it has read
// it (the answer is lost).
func cmdFakeBackend(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fakebackend forbidden|servererror|dropped")
	}
	var h http.HandlerFunc
	switch args[0] {
	case "forbidden":
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"detail": "You do not have permission to perform this action."}`))
		}
	case "servererror":
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error": {"code": "INTERNAL", "message": "database is down"}, "meta": {"request_id": "req-7f3a"}}`))
		}
	case "dropped":
		h = func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/agents/" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"count": 1, "next": null, "previous": null, "results": [{"id": 1, "name": "a", "status": "connected"}]}`))
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	default:
		ts.Fatalf("fakebackend: unknown scenario %q", args[0])
	}
	srv := httptest.NewServer(h)
	ts.Defer(srv.Close)
	ts.Setenv("FAKE", srv.URL)
}
