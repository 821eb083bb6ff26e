package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/synapse-sdk/synapse-go/internal/cli"
	"github.com/synapse-sdk/synapse-go/internal/server"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

// startTestServer runs a synapse server in this process with two process
// agents and returns its URL and an admin token.
func startTestServer(t *testing.T) (host, token string) {
	t.Helper()
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "data"),
		Agents: []server.AgentSpec{{Name: "a"}, {Name: "b"}}}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err = st.CreateToken(ctx, "test", store.TokenAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := &listenWriter{addr: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, cfg, out) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case host = <-out.addr:
	case err := <-done:
		t.Fatalf("the server did not start: %v\n%s", err, out.text())
	case <-time.After(time.Minute):
		t.Fatalf("the server did not start:\n%s", out.text())
	}
	return host, token
}

// terminal is a pseudo-terminal the CLI runs on: what it printed, and
// a way to type.
type terminal struct {
	t    *testing.T
	ptmx *os.File
	tty  *os.File
	mu   sync.Mutex
	seen bytes.Buffer
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	term := &terminal{t: t, ptmx: ptmx, tty: tty}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.seen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); ptmx.Close() })
	return term
}

// waitFor waits until the terminal shows s.
func (term *terminal) waitFor(s string) {
	term.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(term.text(), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	term.t.Fatalf("the terminal did not show %q; it shows:\n%s", s, term.text())
}

func (term *terminal) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.seen.String()
}

func (term *terminal) typeLine(s string) {
	term.t.Helper()
	if _, err := io.WriteString(term.ptmx, s+"\r"); err != nil {
		term.t.Fatal(err)
	}
}

// run runs the CLI on the terminal (stdin and stderr; stdout is returned).
func (term *terminal) run(args ...string) (code chan int, stdout *bytes.Buffer) {
	code = make(chan int, 1)
	stdout = &bytes.Buffer{}
	go func() { code <- cli.Run(args, &cli.IOStreams{In: term.tty, Out: stdout, ErrOut: term.tty}) }()
	return code, stdout
}

func wait(t *testing.T, code chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(time.Minute):
		t.Fatal("the command did not end within a minute")
		return -1
	}
}

// TestPrompts drives login, agent select and logout on a terminal: the
// host is asked with the resolved one as default, the token without
// echo, the agent from a table.
func TestPrompts(t *testing.T) {
	host, token := startTestServer(t)
	cfgFile := filepath.Join(t.TempDir(), "home", ".synapse", "config.json")
	t.Setenv("SYNAPSE_CONFIG_FILE", cfgFile)
	t.Setenv("SYNAPSE_HOST", host) // the host prompt's default
	t.Setenv("SYNAPSE_ACCESS_TOKEN", "")
	t.Setenv("SYNAPSE_PLUGIN_RUN_USER_TOKEN", "")
	t.Setenv("TERM", "xterm")

	term := newTerminal(t)
	code, _ := term.run("login")
	term.waitFor("Synapse host [" + host + "]: ")
	term.typeLine("") // keep the default
	term.waitFor("Access token for " + host + " (input hidden): ")
	term.typeLine(token)
	if c := wait(t, code); c != 0 {
		t.Fatalf("login exited %d:\n%s", c, term.text())
	}
	term.waitFor("Saved to " + cfgFile)
	if strings.Contains(term.text(), token) {
		t.Errorf("the token was echoed:\n%s", term.text())
	}
	var saved map[string]any
	b, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if saved["host"] != host || saved["access_token"] != token {
		t.Fatalf("saved %s", b)
	}

	// An empty token saves nothing new and says so (exit 2).
	term = newTerminal(t)
	code, _ = term.run("login", "--host", host)
	term.waitFor("(input hidden): ")
	term.typeLine("")
	if c := wait(t, code); c != 2 {
		t.Fatalf("login with an empty token exited %d, want 2:\n%s", c, term.text())
	}
	term.waitFor("Error: --token: no access token given: nothing was saved")

	// agent select without an ID: a table, then the ID typed.
	term = newTerminal(t)
	code, _ = term.run("agent", "select")
	term.waitFor("Agent ID: ")
	if txt := term.text(); !strings.Contains(txt, "NAME") || !strings.Contains(txt, " a ") || !strings.Contains(txt, " b ") {
		t.Fatalf("no agent table before the prompt:\n%s", txt)
	}
	term.typeLine("2")
	if c := wait(t, code); c != 0 {
		t.Fatalf("agent select exited %d:\n%s", c, term.text())
	}
	term.waitFor("Selected agent 2 (b)")
	b, _ = os.ReadFile(cfgFile)
	if !strings.Contains(string(b), `"name": "b"`) {
		t.Fatalf("the agent was not saved: %s", b)
	}

	// An unknown ID is exit 2 and keeps the selection.
	term = newTerminal(t)
	code, _ = term.run("agent", "select")
	term.waitFor("Agent ID: ")
	term.typeLine("9")
	if c := wait(t, code); c != 2 {
		t.Fatalf("agent select 9 exited %d, want 2:\n%s", c, term.text())
	}
	b, _ = os.ReadFile(cfgFile)
	if !strings.Contains(string(b), `"name": "b"`) {
		t.Fatalf("the selection was lost: %s", b)
	}
}

// TestPublishConfirm: on a terminal, publish asks before uploading; "n"
// sends nothing, Enter publishes.
func TestPublishConfirm(t *testing.T) {
	host, token := startTestServer(t)
	t.Setenv("SYNAPSE_CONFIG_FILE", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("SYNAPSE_HOST", host)
	t.Setenv("SYNAPSE_ACCESS_TOKEN", token)
	t.Setenv("SYNAPSE_PLUGIN_RUN_USER_TOKEN", "")
	t.Setenv("TERM", "xterm")
	dir := filepath.Join(sdkRoot(t), "examples", "train")

	term := newTerminal(t)
	code, _ := term.run("plugin", "publish", "--path", dir)
	term.waitFor("Publish example-train ")
	term.waitFor(" to " + host + "? [Y/n] ")
	term.typeLine("n")
	if c := wait(t, code); c != 0 {
		t.Fatalf("publish exited %d:\n%s", c, term.text())
	}
	term.waitFor("Cancelled; nothing was sent.")
	// Nothing was sent: the backend has no such plugin.
	term = newTerminal(t)
	code, _ = term.run("plugin", "run", "train", "--path", dir, "--mode", "remote", "--agent", "1")
	if c := wait(t, code); c != 1 {
		t.Fatalf("run of an unpublished plugin exited %d, want 1:\n%s", c, term.text())
	}
	term.waitFor("run synapse plugin publish")

	term = newTerminal(t)
	code, _ = term.run("plugin", "publish", "--path", dir)
	term.waitFor("[Y/n] ")
	term.typeLine("")
	if c := wait(t, code); c != 0 {
		t.Fatalf("publish exited %d:\n%s", c, term.text())
	}
	term.waitFor("Published release ")
}
