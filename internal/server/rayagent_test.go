package server

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// TestRayAgentRefusesBadReleases: a release zip damaged on disk, or one
// without the plugin binary, is refused before anything reaches Ray.
func TestRayAgentRefusesBadReleases(t *testing.T) {
	dashboard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the agent called Ray: %s %s", r.Method, r.URL)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer dashboard.Close()
	client, err := ray.NewClient(dashboard.URL)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	releases := &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")}
	thawOnCleanup(t, releases.WorkDir)
	agent := &RayAgent{Releases: releases, Client: client}
	save := func(data []byte) store.Release {
		sum := sha256.Sum256(data)
		rel := store.Release{ID: 7, SHA256: hex.EncodeToString(sum[:])}
		if err := os.WriteFile(filepath.Join(dir, rel.SHA256+".zip"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return rel
	}
	zipOf := func(names ...string) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for _, n := range names {
			w, _ := zw.Create(n)
			_, _ = io.WriteString(w, "x")
		}
		_ = zw.Close()
		return b.Bytes()
	}
	damaged := save(zipOf(worker.BinaryName))
	if err := os.WriteFile(filepath.Join(dir, damaged.SHA256+".zip"), zipOf(worker.BinaryName, "extra"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rel  store.Release
		want string
	}{
		{"damaged", damaged, "does not match its SHA-256"},
		{"no binary", save(zipOf("config.yaml")), "has no " + worker.BinaryName},
		{"missing", store.Release{ID: 9, SHA256: strings.Repeat("0", 64)}, "read release 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := agent.Start(t.Context(), store.Job{ID: "j"}, tt.rel, []string{"SYNAPSE_ACTION_PARAMS={}"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWithFile(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range []string{"a", ".synapse_params.json"} {
		w, _ := zw.Create(n)
		_, _ = io.WriteString(w, "old "+n)
	}
	_ = zw.Close()
	out, err := withFile(b.Bytes(), ".synapse_params.json", []byte(`{"big":1}`))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		c, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = string(c)
	}
	if len(got) != 2 || got["a"] != "old a" || got[".synapse_params.json"] != `{"big":1}` {
		t.Errorf("entries = %v", got)
	}
}

// TestAgentsProbe: GET /agents/ shows a Ray agent whose dashboard does not
// answer as disconnected, with the reason (naming the server's --agent
// flag), without waiting long for it; the answer is reused for a while.
func TestAgentsProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there: a dashboard that is down
	var hits atomic.Int32
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-r.Context().Done() // a dashboard that accepts and never answers
	}))
	defer hung.Close()
	rayAgent := func(name, addr string) Runner {
		c, err := ray.NewClient(addr, ray.WithAddressHint("check the address in --agent "+name+"=ray:ADDRESS"))
		if err != nil {
			t.Fatal(err)
		}
		return &RayAgent{Client: c}
	}
	f := newAPI(t, func(a *API) {
		a.Agents = append(a.Agents, Agent{ID: 2, Name: "down", Kind: "ray"}, Agent{ID: 3, Name: "hung", Kind: "ray"})
		a.Runners = map[string]Runner{"down": rayAgent("down", down), "hung": rayAgent("hung", hung.URL)}
	})
	tests := []struct {
		name, status, reason string
	}{
		{"local", "connected", ""},
		{"down", "disconnected", "cannot reach the Ray dashboard at http://" + down},
		{"hung", "disconnected", "did not answer within 2s"},
	}
	for round := range 2 {
		start := time.Now()
		_, v := f.call(t, "GET", "/agents/", f.admin, "")
		if took := time.Since(start); took > probeTimeout+time.Second {
			t.Errorf("round %d: GET /agents/ took %s", round, took)
		}
		results := v.(map[string]any)["results"].([]any)
		for i, tt := range tests {
			got := results[i].(map[string]any)
			reason, _ := got["status_reason"].(string)
			if got["name"] != tt.name || got["status"] != tt.status || !strings.Contains(reason, tt.reason) || tt.reason == "" && reason != "" {
				t.Errorf("round %d: agent %v, want %s %s with reason %q", round, got, tt.name, tt.status, tt.reason)
			}
			if strings.Contains(reason, "--ray-address") || tt.name == "down" && !strings.Contains(reason, "--agent down=ray:ADDRESS") {
				t.Errorf("round %d: agent %s: the reason names no flag of the server: %s", round, tt.name, reason)
			}
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the hung dashboard was probed %d times in two listings, want 1 (the answer is reused)", n)
	}
}

// TestRayFailure: a Ray job that failed without a result is said in one
// short line, as the process agent's, without the log Ray quotes.
func TestRayFailure(t *testing.T) {
	long := "Job entrypoint command failed with exit code 3, last available logs (truncated to 20,000 chars):\n" + strings.Repeat("a log line\n", 2000)
	tests := []struct{ message, status, want string }{
		{long, "FAILED", "the Ray job failed: Job entrypoint command failed (exit status 3)"},
		{"Job entrypoint command failed with exit code -9", "FAILED", "the Ray job failed: Job entrypoint command failed (exit status -9)"},
		{"Failed to set up runtime environment.\nTraceback …", "FAILED", "the Ray job failed: Failed to set up runtime environment."},
		{"  ", "FAILED", "the Ray job failed"},
		{"Failed to set up runtime environment.\nCollecting x\nERROR: No matching distribution found for nosuch-pkg\nTraceback …", "FAILED",
			"the Ray job failed: Failed to set up runtime environment: ERROR: No matching distribution found for nosuch-pkg"},
		{long + "ERROR: the plugin's own line\n", "FAILED", "the Ray job failed: Job entrypoint command failed (exit status 3)"},
	}
	lines := rayMessageLines("a\r\n" + strings.Repeat("b\n", maxRayMessageLines) + "c")
	if len(lines) != maxRayMessageLines || lines[0] != "ray: b" || lines[len(lines)-1] != "ray: c" {
		t.Errorf("rayMessageLines kept %d lines, %q … %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if rayMessageLines(" \n") != nil {
		t.Error("rayMessageLines of a blank message is not nil")
	}
	for _, tt := range tests {
		if got := rayFailure(tt.message, tt.status); got != tt.want {
			t.Errorf("rayFailure(%.60q) = %q, want %q", tt.message, got, tt.want)
		}
	}
}
