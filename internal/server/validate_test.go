package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// scriptRelease publishes, as a zip in a's release directory, a release
// whose plugin binary is the shell script script.
func scriptRelease(t *testing.T, a *API, script string) store.Release {
	t.Helper()
	z := zipWith(t, zipEntry{name: worker.BinaryName, mode: 0o755, body: "#!/bin/sh\n" + script})
	sum := sha256.Sum256(z)
	rel := store.Release{ID: 1, SHA256: hex.EncodeToString(sum[:])}
	if err := os.MkdirAll(a.Releases.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Releases.Dir, rel.SHA256+".zip"), z, 0o600); err != nil {
		t.Fatal(err)
	}
	return rel
}

// alive reports whether process pid runs (a zombie does not).
func alive(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(fields) > 0 && fields[0] != "Z"
	} else if _, err := os.Stat("/proc/self"); err == nil {
		return false // no such process
	}
	return syscall.Kill(pid, 0) == nil
}

// readPID waits for the script to write file in dir and returns the PID.
func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script wrote no %s", filepath.Base(path))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestParamsCheckBounded: the params check (the release binary's validate
// command) is killed with its whole process group when it takes too long
// (a 504, not a hang) or the request ends, and what it leaves holding its
// output does not hold up the run.
func TestParamsCheckBounded(t *testing.T) {
	const hang = "echo $$ > PIDDIR/leader.pid\nsleep 300 &\necho $! > PIDDIR/child.pid\nwait\n"
	tests := []struct {
		name   string
		script string
		cancel bool // end the request once the script runs
		status int  // of the *apiError; 0: nil; -1: the request's context error
		text   string
		pids   bool // the script writes leader.pid and child.pid in PIDDIR (the release's directory is read-only)
	}{
		{"passes", "cat >/dev/null\nexit 0\n", false, 0, "", false},
		{"field errors", `echo '{"kind":"validation","message":"invalid params","fields":[{"field":"n","message":"must be >= 1"}]}'` + "\nexit 2\n", false, http.StatusBadRequest, "invalid params", false},
		{"hangs, with a child", hang, false, http.StatusGatewayTimeout, "params: the params check (synapse-plugin validate echo) did not finish within 1s, so nothing ran", true},
		{"the request ends", hang, true, -1, "", true},
		{"exits, leaving a child holding its output", "echo $$ > PIDDIR/leader.pid\nsleep 300 &\necho $! > PIDDIR/child.pid\nexit 0\n", false, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := &API{Releases: &Releases{Dir: filepath.Join(dir, "releases"), WorkDir: filepath.Join(dir, "work")}, ParamsCheckTimeout: time.Second}
			thawOnCleanup(t, a.Releases.WorkDir)
			pidDir := t.TempDir()
			rel := scriptRelease(t, a, strings.ReplaceAll(tt.script, "PIDDIR", pidDir))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.validate(ctx, rel, "echo", json.RawMessage(`{"n":0}`)) }()
			var pids []int
			if tt.pids {
				pids = []int{readPID(t, filepath.Join(pidDir, "leader.pid")), readPID(t, filepath.Join(pidDir, "child.pid"))}
			}
			if tt.cancel {
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the params check hangs")
			}
			var ae *apiError
			var ve *validationError
			switch {
			case tt.status == 0 && err != nil:
				t.Errorf("validate = %v, want it to pass", err)
			case tt.status == -1 && !errors.Is(err, context.Canceled):
				t.Errorf("validate = %v, want the request's cancellation", err)
			case tt.status == http.StatusBadRequest && (!errors.As(err, &ve) || !strings.Contains(ve.message, tt.text)):
				t.Errorf("validate = %v, want field errors", err)
			case tt.status > 400 && (!errors.As(err, &ae) || ae.status != tt.status || ae.code != "PARAMS_CHECK_TIMEOUT" || !strings.Contains(ae.message, tt.text)):
				t.Errorf("validate = %#v, want %d %q", err, tt.status, tt.text)
			}
			for _, pid := range pids {
				deadline := time.Now().Add(10 * time.Second)
				for alive(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("process %d of the params check still runs", pid)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}
