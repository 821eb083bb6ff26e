package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// TestProcessAgentResultChecked: a plugin that prints, without a final
// PATCH, a result too big for the server (cut into 8 MiB console lines)
// or one that is not JSON ends FAILED with meta.error of error_type
// "result", and the job and the job lists still answer with JSON (issue
// 12: such a job was SUCCEEDED with a broken result, and every list
// answered 200 with an empty body).
func TestProcessAgentResultChecked(t *testing.T) {
	if testing.Short() {
		t.Skip("runs plugin processes; skipped with -short")
	}
	const printResult = "[ \"$1\" = validate ] && exit 0\n[ \"$1\" = actions ] && { echo '[{\"name\":\"train\"}]'; exit 0; }\necho " + worker.ResultStart + "\n"
	tests := []struct {
		name, script, message string
	}{
		{"over 8 MiB", printResult + "printf '{\"data\":\"'\nhead -c 20000000 /dev/zero | tr '\\0' a\nprintf '\"}\\n'\necho " + worker.ResultEnd + "\n",
			"the result is 20000013 bytes, over the 8 MiB a result may be: return a smaller result (store large outputs in files and return their paths)"},
		{"not JSON", printResult + "echo '{\"data\": [1, 2'\necho " + worker.ResultEnd + "\n",
			"the result the plugin printed is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			releases := &Releases{Dir: filepath.Join(dir, "releases"), WorkDir: filepath.Join(dir, "work")}
			f := newAPI(t, func(a *API) { a.Releases = releases })
			z := zipWith(t, zipEntry{name: worker.BinaryName, mode: 0o755, body: "#!/bin/sh\n" + tt.script})
			sum := sha256.Sum256(z)
			if err := os.MkdirAll(releases.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(releases.Dir, hex.EncodeToString(sum[:])+".zip"), z, 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := f.store.CreatePlugin(t.Context(), store.Plugin{Code: "big", Name: "big"})
			if err != nil {
				t.Fatal(err)
			}
			rel, err := f.store.CreateRelease(t.Context(), store.Release{PluginID: p.ID, Version: "1", Config: json.RawMessage(`{"code":"big","actions":{"train":{}}}`), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(z))})
			if err != nil {
				t.Fatal(err)
			}
			agent := &ProcessAgent{Store: f.store, Releases: releases, RunDir: filepath.Join(t.TempDir(), "run"), Grace: 2 * time.Second}
			af := &agentFixture{apiFixture: f, agent: agent, rel: rel}
			j := af.wait(t, af.start(t, "train", `{}`).ID)
			var meta struct {
				Error struct {
					ErrorType string `json:"error_type"`
					Message   string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(j.Meta, &meta); err != nil {
				t.Fatalf("meta %s: %v", j.Meta, err)
			}
			if j.Status != store.StatusFailed || meta.Error.ErrorType != "result" || !strings.HasPrefix(meta.Error.Message, tt.message) || !json.Valid(j.Result) {
				t.Errorf("job = %s, meta %s, result %.200s; want FAILED with meta.error {error_type: result, message: %q…}", j.Status, j.Meta, j.Result, tt.message)
			}
			for _, path := range []string{"/jobs/" + j.ID + "/", "/jobs/", "/jobs/?status=FAILED", "/v2/jobs/"} {
				if status, v := f.call(t, "GET", path, f.admin, ""); status != 200 || v == nil {
					t.Errorf("GET %s = %d %v, want 200 with a JSON body", path, status, v)
				}
			}
		})
	}
}

// TestWriteJSONEncodeError: a value that cannot be encoded is a 500 with
// a JSON error body, not a 200 with an empty or cut one.
func TestWriteJSONEncodeError(t *testing.T) {
	tests := []struct {
		name   string
		v      any
		status int
	}{
		{"encodes", map[string]any{"result": json.RawMessage(`{"ok":true}`)}, http.StatusOK},
		{"a raw value that is not JSON", map[string]any{"result": json.RawMessage(`{"data":"a` + "\n" + `b"}`)}, http.StatusInternalServerError},
		{"a list with one bad row", []any{map[string]any{"ok": 1}, json.RawMessage(`{`)}, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeJSON(w, http.StatusOK, tt.v)
			var body map[string]any
			if w.Code != tt.status || json.Unmarshal(w.Body.Bytes(), &body) != nil && tt.status != http.StatusOK {
				t.Errorf("writeJSON = %d %q, want %d with a JSON body", w.Code, w.Body.String(), tt.status)
			}
			if tt.status != http.StatusOK && !strings.Contains(body["detail"].(string), "could not be encoded") {
				t.Errorf("detail = %v", body["detail"])
			}
		})
	}
}
