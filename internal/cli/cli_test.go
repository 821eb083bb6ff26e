package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/synapse-sdk/synapse-go/internal/cli"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"synapse":  func() { os.Exit(cli.Main()) },
		"exitcode": exitcodeMain,
	})
}

// exitcodeMain is `exitcode N PROG ARGS...`: it runs PROG, passing its
// output through and forwarding SIGINT/SIGTERM to it, and succeeds only if
// PROG exits with status N. (testscript's `! exec` cannot tell 1 from 2.)
func exitcodeMain() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: exitcode N PROG [ARGS...]")
		os.Exit(2)
	}
	want, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "exitcode: N must be a number")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "exitcode:", err)
		os.Exit(2)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			got = 128 + int(ws.Signal())
		}
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "exitcode:", err)
		os.Exit(2)
	}
	if got != want {
		fmt.Fprintf(os.Stderr, "exitcode: %s exited with %d, want %d\n", os.Args[2], got, want)
		os.Exit(1)
	}
}

// sdkRoot is the repository root (the SDK checkout the scripts build against).
func sdkRoot(t testing.TB) string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// goEnv returns the Go settings the scripts' builds need (testscript runs
// them with HOME=/no-home, where Go's defaults do not work).
func goEnv(t testing.TB) map[string]string {
	out, err := exec.Command("go", "env", "-json", "GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN", "GONOSUMDB", "GOPRIVATE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var env map[string]string
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "script", nil))
}

// scriptParams runs the scripts in testdata/DIR with the Go settings and
// this SDK checkout that their plugin builds need, one plugin build cache
// for all of them (each plugin builds once), and extra env set.
func scriptParams(t *testing.T, dir string, extra map[string]string) testscript.Params {
	sdk := sdkRoot(t)
	goenv := goEnv(t)
	cache := t.TempDir()
	return testscript.Params{
		Dir:                 filepath.Join("testdata", dir),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			for k, v := range goenv {
				if v != "" {
					env.Setenv(k, v)
				}
			}
			env.Setenv("SDK", sdk)
			env.Setenv("SYNAPSE_SDK_DIR", sdk)
			if goCmd, err := exec.LookPath("go"); err == nil {
				env.Setenv("REALGO", goCmd) // for scripts that put a fake go first in PATH
			}
			env.Setenv("SYNAPSE_CACHE_DIR", cache)
			for k, v := range extra {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sdkmod":      cmdSDKMod,
			"waitfile":    cmdWaitFile,
			"lastrun":     cmdLastRun,
			"startserver": cmdStartServer,
			"filemode":    cmdFileMode,
			"setkey":      cmdSetKey,
			"envstdout":   cmdEnvStdout,
			"envmatch":    cmdEnvMatch,
			"fakebackend": cmdFakeBackend,
			"freeport":    cmdFreePort,
			"waithttp":    cmdWaitHTTP,
			"jobtoken":    cmdJobToken,
			"age":         cmdAge,
			"flock":       cmdFlock,
		},
	}
}

// cmdSDKMod makes DIR (holding a plugin's sources) a module
// example.com/NAME that uses this SDK checkout: `sdkmod DIR NAME`.
func cmdSDKMod(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sdkmod DIR NAME")
	}
	sdk := ts.Getenv("SDK")
	dir := ts.MkAbs(args[0])
	gomod := fmt.Sprintf("module example.com/%s\n\ngo 1.26\n\nrequire github.com/synapse-sdk/synapse-go v0.0.0-00010101000000-000000000000\n\nreplace github.com/synapse-sdk/synapse-go => %s\n", args[1], sdk)
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Check(os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile(filepath.Join(sdk, "go.sum"))
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	// Complete go.mod from the plugin's imports, as a plugin author would.
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	if out, err := tidy.CombinedOutput(); err != nil {
		ts.Fatalf("go mod tidy in %s: %v\n%s", args[0], err, out)
	}
}

// cmdWaitFile waits up to a minute for a file to exist: `waitfile PATH`
// (PATH may be a glob pattern); `! waitfile PATH` waits until none does.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] waitfile PATH")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		matches, err := filepath.Glob(path)
		ts.Check(err)
		if len(matches) > 0 != neg {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	what := "did not appear"
	if neg {
		what = "was still there"
	}
	ts.Fatalf("waitfile: %s %s within a minute", strings.TrimPrefix(path, ts.Getenv("WORK")+"/"), what)
}

// cmdLastRun sets $RUNID to the name of the most recently modified
// directory in DIR (a pipeline's runs): `lastrun DIR`.
func cmdLastRun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: lastrun DIR")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var best string
	var bestTime time.Time
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && e.IsDir() && info.ModTime().After(bestTime) {
			best, bestTime = e.Name(), info.ModTime()
		}
	}
	if best == "" {
		ts.Fatalf("lastrun: no run directories in %s", args[0])
	}
	ts.Setenv("RUNID", best)
}

// cmdFreePort sets $VAR to a TCP port on 127.0.0.1 that was free a moment
// ago (the kernel picks it): `freeport VAR`.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ts.Check(ln.Close())
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdWaitHTTP waits up to a minute for URL to answer 200: `waithttp URL`.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waithttp URL")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("waithttp: %s did not answer 200 within a minute", args[0])
}

// cmdJobToken adds a job's own token (kind job, for a made-up job ID) to
// the server database at PATH, as a run does: `jobtoken PATH`.
func cmdJobToken(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jobtoken PATH")
	}
	st, err := store.Open(context.Background(), ts.MkAbs(args[0]))
	ts.Check(err)
	defer st.Close()
	id := uuid.NewString()
	_, _, err = st.CreateToken(context.Background(), "job "+id, store.TokenJob, id)
	ts.Check(err)
}
