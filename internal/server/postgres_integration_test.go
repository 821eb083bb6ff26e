//go:build integration

package server

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// TestIntegrationServeOnPostgres runs the server on PostgreSQL (the
// integration suite's, in a schema of its own) end to end: publish, run,
// the job's report, the console log.
func TestIntegrationServeOnPostgres(t *testing.T) {
	dsn := os.Getenv("SYNAPSE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Fatal("SYNAPSE_TEST_POSTGRES_DSN is not set: make test-integration starts PostgreSQL (scripts/postgres.sh)")
	}
	schema := fmt.Sprintf("srv_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	zip := releaseZip(t)
	base, printed, stop := serve(t, Config{DataDir: t.TempDir(), DB: u.String()})
	defer stop()
	if !strings.Contains(printed, "store: postgres") {
		t.Errorf("the server says %q, want it on postgres", printed)
	}
	token := regexp.MustCompile(`syn_[0-9a-f]{40}`).FindString(printed)
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Synapse-Access-Token", "Token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := publishTo(t, base, token, map[string]string{"plugin": "conformance", "version": "1.0", "config": conformanceConfig, "debug": "True"}, zip)
	if status != 201 {
		t.Fatalf("publish = %d %s", status, body)
	}
	status, body = call("POST", "/plugins/conformance/run/", `{"agent":1,"action":"context","debug":true}`)
	if status != 201 {
		t.Fatalf("run = %d %s", status, body)
	}
	id := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(body)[1]
	deadline := time.Now().Add(time.Minute)
	for {
		_, body = call("GET", "/jobs/"+id+"/", "")
		if strings.Contains(body, `"status":"SUCCEEDED"`) && strings.Contains(body, `"overall":100`) {
			break
		}
		if time.Now().After(deadline) || strings.Contains(body, `"status":"FAILED"`) {
			t.Fatalf("job = %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The job may end (the binary reports it) before its agent has written
	// the last console lines: wait for them.
	for !strings.Contains(body, "__SYNAPSE_RESULT_START__") {
		if time.Now().After(deadline) {
			t.Fatalf("console log = %.300s", body)
		}
		time.Sleep(50 * time.Millisecond)
		_, body = call("GET", "/jobs/"+id+"/console_logs/", "")
	}
	var n int
	if err := admin.QueryRow("SELECT COUNT(*) FROM " + schema + ".job_logs").Scan(&n); err != nil || n == 0 {
		t.Errorf("job_logs rows in PostgreSQL: %d, %v", n, err)
	}
}

// TestIntegrationServeDatabaseInUse: two servers on one PostgreSQL
// database (different data directories, so the data-directory lock does
// not see them) would settle each other's jobs; the second is refused,
// naming the database, and may start once the first has stopped.
func TestIntegrationServeDatabaseInUse(t *testing.T) {
	dsn := os.Getenv("SYNAPSE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Fatal("SYNAPSE_TEST_POSTGRES_DSN is not set: make test-integration starts PostgreSQL (scripts/postgres.sh)")
	}
	schema := fmt.Sprintf("srv_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	_, _, stop := serve(t, Config{DataDir: t.TempDir(), DB: u.String()})
	err = Serve(t.Context(), Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), DB: u.String()}, io.Discard)
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "another synapse server uses the database postgres://") || !strings.Contains(err.Error(), "(schema "+schema+")") {
		t.Errorf("second server on the same database: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, _, stop = serve(t, Config{DataDir: t.TempDir(), DB: u.String()})
	if err := stop(); err != nil {
		t.Errorf("restart on the freed database: %v", err)
	}
}
