package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// requirePostgres is set by the integration build: there, a PostgreSQL
// DSN must be given (scripts/test-integration.sh starts one).
var requirePostgres = false

// stores returns an empty store of each database this run can reach:
// SQLite always, PostgreSQL when SYNAPSE_TEST_POSTGRES_DSN names one (each
// test in a schema of its own, dropped afterwards).
func stores(t *testing.T) map[string]*Store {
	t.Helper()
	out := map[string]*Store{}
	lite, err := Open(t.Context(), filepath.Join(t.TempDir(), "data", "synapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	out["sqlite"] = lite

	dsn := os.Getenv("SYNAPSE_TEST_POSTGRES_DSN")
	if dsn == "" {
		if requirePostgres {
			t.Fatal("SYNAPSE_TEST_POSTGRES_DSN is not set: the integration suite must run the store against a real PostgreSQL (make test-integration starts one)")
		}
		return out
	}
	schema := fmt.Sprintf("t_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema on %s: %v", dsn, err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pg, err := Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	out["postgres"] = pg
	return out
}

// each runs fn as a subtest against every store.
func each(t *testing.T, fn func(t *testing.T, s *Store)) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) { fn(t, s) })
	}
}

func TestTokens(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		secret, tok, err := s.CreateToken(ctx, "admin", TokenAdmin, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, "syn_") || len(secret) != 44 {
			t.Errorf("secret = %q", secret)
		}
		got, err := s.LookupToken(ctx, secret)
		if err != nil || got.ID != tok.ID || got.Kind != TokenAdmin || !got.CreatedAt.Equal(tok.CreatedAt) {
			t.Errorf("LookupToken = %+v, %v; want %+v", got, err, tok)
		}
		if _, err := s.LookupToken(ctx, secret+"x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown secret: %v", err)
		}
		var stored string
		if err := s.db.QueryRowContext(ctx, `SELECT hash FROM tokens WHERE id = $1`, tok.ID).Scan(&stored); err != nil || strings.Contains(stored, secret) || stored != hashToken(secret) {
			t.Errorf("stored %q: the secret must be kept only as its hash", stored)
		}
		jobSecret, _, err := s.CreateToken(ctx, "job", TokenJob, "job-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "job-1"); err != nil { // by job ID
			t.Fatal(err)
		}
		if _, err := s.LookupToken(ctx, jobSecret); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked job token still works: %v", err)
		}
		if err := s.RevokeToken(ctx, "job-1"); err != nil {
			t.Errorf("revoking again: %v", err)
		}
		if err := s.RevokeToken(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke unknown: %v", err)
		}
		list, err := s.ListTokens(ctx)
		if err != nil || len(list) != 2 || list[0].RevokedAt != nil || list[1].RevokedAt == nil {
			t.Errorf("ListTokens = %+v, %v", list, err)
		}
	})
}

func newRelease(t *testing.T, s *Store, code, version string, debug bool) Release {
	t.Helper()
	p, err := s.GetPlugin(t.Context(), code)
	if errors.Is(err, ErrNotFound) {
		p, err = s.CreatePlugin(t.Context(), Plugin{Code: code, Name: code})
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRelease(t.Context(), Release{PluginID: p.ID, Version: version, Config: json.RawMessage(`{"code":"` + code + `"}`), Debug: debug, SHA256: "ab", Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPluginsAndReleases(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		p, err := s.CreatePlugin(ctx, Plugin{Code: "yolo", Name: "YOLO", Category: "neural_net"})
		if err != nil || p.ID == 0 {
			t.Fatalf("CreatePlugin = %+v, %v", p, err)
		}
		if _, err := s.CreatePlugin(ctx, Plugin{Code: "yolo", Name: "again"}); !errors.Is(err, ErrExists) {
			t.Errorf("duplicate code: %v", err)
		}
		if _, err := s.GetPlugin(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown plugin: %v", err)
		}
		clock := time.Now()
		s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
		r1 := newRelease(t, s, "yolo", "1.0.0", false)
		if _, err := s.CreateRelease(ctx, Release{PluginID: p.ID, Version: "1.0.0", Config: json.RawMessage(`{}`)}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("duplicate non-debug version: %v", err)
		}
		if _, err := s.CreateRelease(ctx, Release{PluginID: p.ID, Version: "1.0.0", Config: json.RawMessage(`{}`), Debug: true}); !errors.Is(err, ErrPublished) || !errors.Is(err, ErrExists) {
			t.Errorf("debug over a published version: %v, want ErrPublished", err)
		}
		d1 := newRelease(t, s, "yolo", "1.1.0-dev", true)
		d2, err := s.CreateRelease(ctx, Release{PluginID: p.ID, Version: "1.1.0-dev", Config: json.RawMessage(`{"v":2}`), Debug: true, SHA256: "cd", Size: 20})
		if err != nil || d2.ID != d1.ID {
			t.Fatalf("debug re-publish = %+v, %v; want the same ID %d replaced", d2, err, d1.ID)
		}
		got, err := s.GetRelease(ctx, d1.ID)
		if err != nil || got.SHA256 != "cd" || string(got.Config) != `{"v":2}` || !got.Debug {
			t.Errorf("replaced release = %+v, %v", got, err)
		}
		newest, err := s.FindRelease(ctx, p.ID, "", false)
		if err != nil || newest.ID != r1.ID {
			t.Errorf("newest non-debug = %+v, %v; want %d", newest, err, r1.ID)
		}
		newest, err = s.FindRelease(ctx, p.ID, "", true)
		if err != nil || newest.ID != d1.ID {
			t.Errorf("newest with debug = %+v, %v; want %d", newest, err, d1.ID)
		}
		if byVersion, err := s.FindRelease(ctx, p.ID, "1.0.0", false); err != nil || byVersion.ID != r1.ID {
			t.Errorf("by version = %+v, %v", byVersion, err)
		}
		if _, err := s.FindRelease(ctx, p.ID, "9.9", false); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown version: %v", err)
		}
	})
}

func TestListReleases(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		clock := time.Now()
		s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
		a1 := newRelease(t, s, "a", "1", false)
		b1 := newRelease(t, s, "b", "1", false)
		a2 := newRelease(t, s, "a", "2", true)
		a, err := s.GetPlugin(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		ids := func(rs []Release) []int64 {
			out := []int64{}
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		tests := []struct {
			name   string
			filter ReleaseFilter
			want   []int64
			total  int
		}{
			{"all, newest first", ReleaseFilter{}, []int64{a2.ID, b1.ID, a1.ID}, 3},
			{"one plugin's", ReleaseFilter{PluginID: a.ID}, []int64{a2.ID, a1.ID}, 2},
			{"a page", ReleaseFilter{Offset: 1, Limit: 1}, []int64{b1.ID}, 3},
			{"past the end", ReleaseFilter{Offset: 5, Limit: 2}, []int64{}, 3},
			{"a plugin without releases", ReleaseFilter{PluginID: 999}, []int64{}, 0},
		}
		for _, tt := range tests {
			got, total, err := s.ListReleases(ctx, tt.filter)
			if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) || total != tt.total {
				t.Errorf("%s: %v (total %d), %v; want %v (total %d)", tt.name, ids(got), total, err, tt.want, tt.total)
			}
		}
		if got, _, _ := s.ListReleases(ctx, ReleaseFilter{PluginID: a.ID, Limit: 1}); len(got) != 1 || string(got[0].Config) != `{"code":"a"}` || !got[0].Debug {
			t.Errorf("release fields = %+v", got)
		}
	})
}

func TestJobLifecycle(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "local", Action: "train", Params: json.RawMessage(`{"epochs":3}`)})
		if err != nil || j.Status != StatusPending || len(j.ID) != 36 {
			t.Fatalf("CreateJob = %+v, %v", j, err)
		}
		tests := []struct {
			name    string
			update  JobUpdate
			status  string
			wantErr error
		}{
			{"pending to succeeded needs no running, but here we run first", JobUpdate{Status: StatusRunning}, StatusRunning, nil},
			{"progress while running", JobUpdate{ProgressRecord: json.RawMessage(`{"current_progress":{"overall":50}}`)}, StatusRunning, nil},
			{"back to pending", JobUpdate{Status: StatusPending}, "", ErrTransition},
			{"finish", JobUpdate{Status: StatusSucceeded, Result: json.RawMessage(`{"ok":true}`)}, StatusSucceeded, nil},
			{"same final status again is a no-op", JobUpdate{Status: StatusSucceeded}, StatusSucceeded, nil},
			{"another final status", JobUpdate{Status: StatusFailed}, "", ErrTransition},
			{"changes after the end", JobUpdate{Result: json.RawMessage(`{}`)}, "", ErrTransition},
		}
		for _, tt := range tests {
			got, err := s.UpdateJob(ctx, j.ID, tt.update)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s: error = %v, want %v", tt.name, err, tt.wantErr)
				}
				continue
			}
			if err != nil || got.Status != tt.status {
				t.Errorf("%s: = %s, %v; want %s", tt.name, got.Status, err, tt.status)
			}
		}
		got, err := s.GetJob(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Result) != `{"ok":true}` || string(got.ProgressRecord) != `{"current_progress":{"overall":50}}` || string(got.Params) != `{"epochs":3}` ||
			got.StartedAt == nil || got.CompletedAt == nil || got.CompletedAt.Before(*got.StartedAt) || got.MetricsRecord != nil {
			t.Errorf("job = %+v", got)
		}
		if _, err := s.UpdateJob(ctx, "00000000-0000-0000-0000-000000000000", JobUpdate{Status: StatusRunning}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown job: %v", err)
		}
		p, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "local", Action: "train"})
		if err != nil {
			t.Fatal(err)
		}
		if stopped, err := s.UpdateJob(ctx, p.ID, JobUpdate{Status: StatusStopped}); err != nil || stopped.StartedAt != nil || stopped.CompletedAt == nil {
			t.Errorf("stop a pending job = %+v, %v", stopped, err)
		}
	})
}

// TestReportAndSettle: a run's own terminal report is recorded while the
// job runs on, and used when its agent settles the run's end.
func TestReportAndSettle(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		ok, fail := json.RawMessage(`{"ok":true}`), json.RawMessage(`{"error":"boom"}`)
		exit0 := JobUpdate{Status: StatusSucceeded, Result: json.RawMessage(`{"printed":1}`)}
		tests := []struct {
			name    string
			pending bool        // the job has not been marked RUNNING
			reports []JobUpdate // ReportJob calls, in order
			stop    bool        // UpdateJob STOPPED before the end
			settle  JobUpdate   // the agent's view of the end
			// after the reports:
			reportErr error
			// after the settle:
			status string
			result json.RawMessage
		}{
			{"no report: the agent's outcome", false, nil, false, exit0, nil, StatusSucceeded, exit0.Result},
			{"reported SUCCEEDED wins over exit 0", false, []JobUpdate{{Status: StatusSucceeded, Result: ok}}, false, exit0, nil, StatusSucceeded, ok},
			{"reported FAILED wins over exit 0", false, []JobUpdate{{Status: StatusFailed, Result: fail}}, false, exit0, nil, StatusFailed, fail},
			{"reported SUCCEEDED wins over a crash", false, []JobUpdate{{Status: StatusSucceeded, Result: ok}}, false, JobUpdate{Status: StatusFailed, Result: fail}, nil, StatusSucceeded, ok},
			{"a report of a PENDING job", true, []JobUpdate{{Status: StatusSucceeded, Result: ok}}, false, exit0, nil, StatusSucceeded, ok},
			{"the same report again", false, []JobUpdate{{Status: StatusSucceeded, Result: fail}, {Status: StatusSucceeded, Result: ok}}, false, exit0, nil, StatusSucceeded, ok},
			{"another report", false, []JobUpdate{{Status: StatusSucceeded, Result: ok}, {Status: StatusFailed, Result: fail}}, false, exit0, ErrTransition, StatusSucceeded, ok},
			{"a stop wins over a report, discarding it", false, []JobUpdate{{Status: StatusSucceeded, Result: ok}}, true, JobUpdate{Status: StatusStopped}, nil, StatusStopped, nil},
			{"a stop the agent settles discards a report", false, []JobUpdate{{Status: StatusSucceeded, Result: ok}}, false, JobUpdate{Status: StatusStopped}, nil, StatusStopped, nil},
			{"a report after a stop changes nothing", false, nil, true, JobUpdate{Status: StatusStopped}, nil, StatusStopped, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "local", Action: "x"})
				if err != nil {
					t.Fatal(err)
				}
				if !tt.pending {
					if _, err := s.UpdateJob(ctx, j.ID, JobUpdate{Status: StatusRunning}); err != nil {
						t.Fatal(err)
					}
				}
				var reportErr error
				for _, u := range tt.reports {
					if _, err := s.ReportJob(ctx, j.ID, u); err != nil {
						reportErr = err
					}
				}
				if !errors.Is(reportErr, tt.reportErr) {
					t.Errorf("reports: %v, want %v", reportErr, tt.reportErr)
				}
				got, err := s.GetJob(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(tt.reports) > 0 && (got.Status != StatusRunning || got.CompletedAt != nil || got.StartedAt == nil || got.Reported != tt.reports[0].Status) {
					t.Errorf("after the report: %s reported %q, started %v completed %v; want RUNNING, not completed", got.Status, got.Reported, got.StartedAt, got.CompletedAt)
				}
				if tt.stop {
					if _, err := s.UpdateJob(ctx, j.ID, JobUpdate{Status: StatusStopped}); err != nil {
						t.Fatal(err)
					}
					if got, err := s.ReportJob(ctx, j.ID, JobUpdate{Status: StatusFailed, Result: fail}); err != nil || got.Status != StatusStopped {
						t.Errorf("a report after the stop: %s, %v; want STOPPED, no error", got.Status, err)
					}
				}
				if _, err := s.SettleJob(ctx, j.ID, tt.settle); err != nil && !errors.Is(err, ErrTransition) {
					t.Fatal(err)
				}
				got, err = s.GetJob(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != tt.status || string(got.Result) != string(tt.result) || got.CompletedAt == nil {
					t.Errorf("settled: %s %s (completed %v), want %s %s", got.Status, got.Result, got.CompletedAt, tt.status, tt.result)
				}
			})
		}
	})
}

func TestListJobsPages(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		clock := time.Now()
		s.now = func() time.Time { return clock } // equal times: the ID breaks ties
		for i := range 7 {
			if i == 4 {
				clock = clock.Add(time.Second)
			}
			if _, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: []string{"a", "b"}[i%2], Action: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		after := ""
		for page := 0; ; page++ {
			jobs, next, err := s.ListJobs(ctx, JobFilter{Limit: 3, After: after})
			if err != nil {
				t.Fatal(err)
			}
			for i, j := range jobs {
				seen = append(seen, j.ID)
				if i > 0 && j.CreatedAt.After(jobs[i-1].CreatedAt) {
					t.Errorf("page %d not newest first", page)
				}
			}
			if next == "" {
				break
			}
			after = next
		}
		if len(seen) != 7 || len(unique(seen)) != 7 {
			t.Errorf("pages gave %d jobs (%d distinct), want all 7 once", len(seen), len(unique(seen)))
		}
		jobs, _, err := s.ListJobs(ctx, JobFilter{Agent: "a"})
		if err != nil || len(jobs) != 4 {
			t.Errorf("agent a: %d jobs, %v", len(jobs), err)
		}
		if _, _, err := s.ListJobs(ctx, JobFilter{After: "nope"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("bad cursor: %v", err)
		}
		if _, err := s.UpdateJob(ctx, jobs[0].ID, JobUpdate{Status: StatusRunning}); err != nil {
			t.Fatal(err)
		}
		counts := []struct {
			filter JobFilter
			want   int
		}{
			{JobFilter{}, 7},
			{JobFilter{Limit: 3, After: seen[2]}, 7}, // the page does not matter
			{JobFilter{Agent: "a"}, 4},
			{JobFilter{Status: StatusPending}, 6},
			{JobFilter{Status: StatusRunning, Agent: "a"}, 1},
			{JobFilter{Status: StatusRunning, Agent: "b"}, 0},
		}
		for _, tt := range counts {
			if n, err := s.CountJobs(ctx, tt.filter); err != nil || n != tt.want {
				t.Errorf("CountJobs(%+v) = %d, %v; want %d", tt.filter, n, err, tt.want)
			}
		}
	})
}

func unique(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

func TestConsoleConcurrentAppends(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "a", Action: "x"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 10 {
					if _, err := s.AppendConsole(ctx, j.ID, []string{fmt.Sprintf("w%d-%d", w, i), "x"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		lines, err := s.Console(ctx, j.ID, 0, 1000)
		if err != nil || len(lines) != 80 {
			t.Fatalf("%d lines, %v; want 80", len(lines), err)
		}
		for i, l := range lines {
			if l.Seq != int64(i+1) {
				t.Fatalf("line %d has seq %d", i, l.Seq)
			}
		}
		if _, err := s.AppendConsole(ctx, "00000000-0000-0000-0000-000000000000", []string{"x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("append to an unknown job: %v", err)
		}
		if err := s.CloseConsole(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetJob(ctx, j.ID); err != nil || !got.ConsoleClosed || got.ConsoleSeq != 80 {
			t.Errorf("console not closed, or its last line not 80: %+v, %v", got, err)
		}
		rest, err := s.Console(ctx, j.ID, 75, 10)
		if err != nil || len(rest) != 5 || rest[0].Seq != 76 {
			t.Errorf("after 75: %+v, %v", rest, err)
		}
	})
}

// TestWatchJob: a subscriber hears of each committed change of its job
// (lines, the log closed, the record updated), changes coalesce while it
// does not read, another job's changes and failed ones are not heard, and
// stop ends the subscription.
func TestWatchJob(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "a", Action: "x"})
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "a", Action: "x"})
		if err != nil {
			t.Fatal(err)
		}
		changed, stop := s.WatchJob(j.ID)
		changed2, stop2 := s.WatchJob(j.ID)
		defer stop2()
		heard := func(ch <-chan struct{}) bool {
			select {
			case <-ch:
				return true
			default:
				return false
			}
		}
		for _, tt := range []struct {
			name   string
			change func() error
			heard  bool
		}{
			{"lines", func() error { _, err := s.AppendConsole(ctx, j.ID, []string{"a"}); return err }, true},
			{"lines at an offset", func() error { _, err := s.AppendConsoleAt(ctx, j.ID, []string{"b"}, 10); return err }, true},
			{"status", func() error { _, err := s.UpdateJob(ctx, j.ID, JobUpdate{Status: StatusRunning}); return err }, true},
			{"report", func() error { _, err := s.ReportJob(ctx, j.ID, JobUpdate{Status: StatusSucceeded}); return err }, true},
			{"settled", func() error { _, err := s.SettleJob(ctx, j.ID, JobUpdate{Status: StatusFailed}); return err }, true},
			{"log closed", func() error { return s.CloseConsole(ctx, j.ID) }, true},
			{"another job's lines", func() error { _, err := s.AppendConsole(ctx, other.ID, []string{"c"}); return err }, false},
			{"a refused change", func() error {
				if _, err := s.UpdateJob(ctx, j.ID, JobUpdate{Status: StatusRunning}); !errors.Is(err, ErrTransition) {
					return fmt.Errorf("RUNNING after SUCCEEDED: %v, want ErrTransition", err)
				}
				return nil
			}, false},
		} {
			if err := tt.change(); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got := heard(changed); got != tt.heard {
				t.Errorf("%s: heard %v, want %v", tt.name, got, tt.heard)
			}
		}
		// The second subscriber did not read: its changes coalesced into one.
		if !heard(changed2) || heard(changed2) {
			t.Error("a subscriber that did not read: want one pending change, not none or more")
		}
		stop()
		stop() // again: a no-op
		if _, err := s.AppendConsole(ctx, j.ID, []string{"d"}); err != nil {
			t.Fatal(err)
		}
		if heard(changed) {
			t.Error("heard a change after stop")
		}
		if n := s.watching(); n != 1 {
			t.Errorf("%d jobs watched with one subscriber left, want 1", n)
		}
		stop2()
		if n := s.watching(); n != 0 {
			t.Errorf("%d jobs watched after every stop, want 0", n)
		}
	})
}

func TestSchemaVersions(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var v int
		if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion() {
			t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion())
		}
		if err := s.migrate(ctx); err != nil { // already current: nothing to do
			t.Errorf("migrate again: %v", err)
		}
		// A database of schema 1 (before job_logs, console_offset,
		// reported_status, ui_sessions, agents and report) is brought up to date.
		for _, q := range []string{`DROP TABLE agents`, `DROP TABLE ui_sessions`, `DROP TABLE job_logs`, `ALTER TABLE jobs DROP COLUMN console_offset`, `ALTER TABLE jobs DROP COLUMN reported_status`, `ALTER TABLE jobs DROP COLUMN report`, `DELETE FROM schema_version WHERE version > 1`} {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.migrate(ctx); err != nil {
			t.Fatalf("migrate from 1: %v", err)
		}
		if _, err := s.Logs(ctx, "x", 0, 1); err != nil {
			t.Errorf("job_logs after migrating from 1: %v", err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET console_offset = 1, reported_status = 'SUCCEEDED', report = '{}' WHERE id = 'x'`); err != nil {
			t.Errorf("console_offset, reported_status and report after migrating from 1: %v", err)
		}
		if _, err := s.AgentIDs(ctx, []string{"local"}); err != nil {
			t.Errorf("agents after migrating from 1: %v", err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		err := s.migrate(ctx)
		var se *SchemaError
		if !errors.As(err, &se) || se.Database != SchemaVersion()+1 || !strings.Contains(err.Error(), "upgrade synapse") {
			t.Errorf("newer database: %v", err)
		}
	})
}

func TestSQLiteFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(t.Context(), filepath.Join(dir, "synapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "synapse.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("postgres://u:secret@h:5432/db"); got != "postgres://u:***@h:5432/db" || strings.Contains(got, "secret") {
		t.Errorf("redact = %q", got)
	}
	if _, err := Open(t.Context(), "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error leaks the password or succeeded: %v", err)
	}
}

func TestLogs(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "a", Action: "x"})
		if err != nil {
			t.Fatal(err)
		}
		entries := []LogEntry{
			{JobID: j.ID, Event: "message", Data: json.RawMessage(`{"content":"hi"}`), Datetime: "2026-12-04T10:00:00+00:00", Level: "success"},
			{JobID: j.ID, Event: "visualization", Data: json.RawMessage(`{"group":"g","index":0}`), Datetime: "2026-12-04T10:00:01+00:00", Step: "val", File: "data:image/png;base64,AA=="},
		}
		if err := s.AddLogs(ctx, entries); err != nil {
			t.Fatal(err)
		}
		bad := append(entries[:1:1], LogEntry{JobID: "00000000-0000-0000-0000-000000000000", Event: "x", Datetime: "t"})
		if err := s.AddLogs(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("entry of an unknown job: %v", err)
		}
		got, err := s.Logs(ctx, j.ID, 0, 100)
		if err != nil || len(got) != 2 {
			t.Fatalf("Logs = %+v, %v; want the 2 entries (the failed batch added none)", got, err)
		}
		if got[0].Level != "success" || string(got[0].Data) != `{"content":"hi"}` || got[1].File != "data:image/png;base64,AA==" || got[1].Step != "val" || got[1].ID <= got[0].ID {
			t.Errorf("entries = %+v", got)
		}
		if rest, err := s.Logs(ctx, j.ID, got[0].ID, 100); err != nil || len(rest) != 1 || rest[0].Event != "visualization" {
			t.Errorf("after the first: %+v, %v", rest, err)
		}
	})
}

func TestConsoleOffset(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "a", Action: "x"})
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			lines  []string
			offset int64
			want   int64
		}{
			{[]string{"a", "b"}, 4, 4},
			{[]string{"c"}, -1, 4},  // AppendConsole-style: unchanged
			{nil, 1 << 40, 1 << 40}, // past 32 bits
			{[]string{"d"}, 1<<40 + 2, 1<<40 + 2},
		}
		for i, st := range steps {
			if _, err := s.AppendConsoleAt(ctx, j.ID, st.lines, st.offset); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got, err := s.GetJob(ctx, j.ID)
			if err != nil || got.ConsoleOffset != st.want {
				t.Fatalf("step %d: offset %d, %v; want %d", i, got.ConsoleOffset, err, st.want)
			}
		}
		lines, err := s.Console(ctx, j.ID, 0, 10)
		if err != nil || len(lines) != 4 || lines[3].Line != "d" {
			t.Errorf("lines %+v, %v", lines, err)
		}
	})
}

// TestLock: one server at a time per database. A second store on the same
// database (the second server) is refused while the first holds the lock,
// and gets it once the first lets go.
func TestLock(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		unlock, err := s.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		other, err := Open(ctx, s.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		_, err = other.Lock(ctx)
		var iu *InUseError
		if !errors.As(err, &iu) || !errors.Is(err, ErrInUse) {
			t.Fatalf("second Lock = %v, want an InUseError", err)
		}
		if !strings.Contains(err.Error(), "another synapse server uses the database ") {
			t.Errorf("error = %q, want it to say another server uses the database", err)
		}
		if s.dialect == "postgres" && (!strings.Contains(err.Error(), "--db") || !strings.Contains(err.Error(), "(schema t_")) {
			t.Errorf("error = %q, want the schema and --db", err)
		}
		unlock()
		unlock2, err := other.Lock(ctx)
		if err != nil {
			t.Fatalf("Lock after the first unlocked: %v", err)
		}
		unlock2()
	})
}

// TestAgentIDs: an agent's ID is assigned once per name and kept, whatever
// the order of the names later; agents of old jobs get one too.
func TestAgentIDs(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		if _, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "old", Action: "x"}); err != nil {
			t.Fatal(err)
		}
		first, err := s.AgentIDs(ctx, []string{"local", "gpu"})
		if err != nil {
			t.Fatal(err)
		}
		if first["local"] != 1 || first["gpu"] != 2 || first["old"] != 3 {
			t.Errorf("first IDs = %v, want local 1, gpu 2 (in order), old 3", first)
		}
		again, err := s.AgentIDs(ctx, []string{"cluster", "gpu"})
		if err != nil {
			t.Fatal(err)
		}
		if again["gpu"] != 2 || again["local"] != 1 || again["old"] != 3 || again["cluster"] != 4 {
			t.Errorf("IDs after reordering = %v, want the first ones kept and cluster 4", again)
		}
	})
}

// TestJobJSONChecked: an update whose result, records or meta is not JSON
// changes nothing (ErrInvalidJSON), and a job stored with such a value
// (a database written before results were checked) reads with null there
// and meta.invalid_json naming it, so the list of jobs still works.
func TestJobJSONChecked(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		r := newRelease(t, s, "p", "1", false)
		j, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "local", Action: "train"})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			u     JobUpdate
			field string
		}{
			{"result", JobUpdate{Status: StatusSucceeded, Result: json.RawMessage("{\"data\":\"a\nb\"}")}, "result"},
			{"meta", JobUpdate{Meta: json.RawMessage(`{"a":`)}, "meta"},
			{"progress_record", JobUpdate{ProgressRecord: json.RawMessage(`nope`)}, "progress_record"},
		}
		for _, tt := range tests {
			for name, update := range map[string]func(context.Context, string, JobUpdate) (Job, error){"update": s.UpdateJob, "settle": s.SettleJob, "report": s.ReportJob} {
				_, err := update(ctx, j.ID, tt.u)
				var ie *InvalidJSONError
				if !errors.Is(err, ErrInvalidJSON) || !errors.As(err, &ie) || ie.Field != tt.field {
					t.Errorf("%s %s: err = %v, want an InvalidJSONError for %s", name, tt.name, err, tt.field)
				}
			}
		}
		if got, err := s.GetJob(ctx, j.ID); err != nil || got.Status != StatusPending || got.Result != nil {
			t.Errorf("after refused updates: %+v, %v", got, err)
		}

		// A row stored broken heals on read.
		good, err := s.CreateJob(ctx, Job{ReleaseID: r.ID, Agent: "local", Action: "train"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = $1, result = $2, meta = $3 WHERE id = $4`, StatusSucceeded, "{\"data\":\"a\nb\"}", `{"queue":1}`, j.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetJob(ctx, j.ID)
		if err != nil || got.Result != nil || string(got.Meta) != `{"invalid_json":["result"],"queue":1}` {
			t.Errorf("GetJob = result %s meta %s, %v; want result null, meta noting it", got.Result, got.Meta, err)
		}
		list, _, err := s.ListJobs(ctx, JobFilter{})
		if err != nil || len(list) != 2 {
			t.Fatalf("ListJobs = %d jobs, %v", len(list), err)
		}
		for _, l := range list {
			if b, err := json.Marshal(l); err != nil {
				t.Errorf("job %s does not encode: %v (%s)", l.ID, err, b)
			}
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET meta = $1 WHERE id = $2`, `{"a":`, good.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetJob(ctx, good.ID); err != nil || string(got.Meta) != `{"invalid_json":["meta"]}` {
			t.Errorf("GetJob = meta %s, %v; want only the note", got.Meta, err)
		}
	})
}
