package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

type apiFixture struct {
	srv   *httptest.Server
	store *store.Store
	admin string
	job   store.Job
	jobTk string
}

func newAPI(t *testing.T, configure ...func(*API)) *apiFixture {
	t.Helper()
	ctx := t.Context()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	admin, _, err := s.CreateToken(ctx, "admin", store.TokenAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.CreatePlugin(ctx, store.Plugin{Code: "yolo", Name: "YOLO"})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := s.CreateRelease(ctx, store.Release{PluginID: p.ID, Version: "1.0.0", Config: json.RawMessage(`{"code":"yolo"}`), SHA256: "x", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	job, err := s.CreateJob(ctx, store.Job{ReleaseID: rel.ID, Agent: "local", Action: "train", Params: json.RawMessage(`{"epochs":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	jobTk, _, err := s.CreateToken(ctx, "job "+job.ID, store.TokenJob, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	api := &API{Store: s, Agents: []Agent{{ID: 1, Name: "local", Kind: "process"}}, Host: "http://" + srv.Listener.Addr().String()}
	for _, c := range configure {
		c(api)
	}
	if api.Releases != nil {
		thawOnCleanup(t, api.Releases.WorkDir)
	}
	srv.Config.Handler = api.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return &apiFixture{srv: srv, store: s, admin: admin, job: job, jobTk: jobTk}
}

// call sends a request with token (in the Python v1 client's header form)
// and returns the status and the decoded JSON body.
func (f *apiFixture) call(t *testing.T, method, path, token, body string) (int, any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Synapse-Access-Token", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %s", method, path, b)
	}
	return resp.StatusCode, v
}

func TestAPIAuthAndReads(t *testing.T) {
	f := newAPI(t)
	jobPath := "/jobs/" + f.job.ID + "/"
	tests := []struct {
		name, method, path, token string
		status                    int
	}{
		{"health needs no token", "GET", "/health/", "", 200},
		{"agents without a token", "GET", "/agents/", "", 401},
		{"agents", "GET", "/agents/", f.admin, 200},
		{"agents with a job token", "GET", "/agents/", f.jobTk, 403},
		{"job", "GET", jobPath, f.admin, 200},
		{"unknown job", "GET", "/jobs/00000000-0000-0000-0000-000000000000/", f.admin, 404},
		{"not a UUID", "GET", "/jobs/12/", f.admin, 404},
		{"jobs", "GET", "/jobs/?page_size=1", f.admin, 200},
		{"bad page size", "GET", "/jobs/?page_size=0", f.admin, 400},
		{"v2 job", "GET", "/v2" + jobPath, f.admin, 200},
		{"v2 jobs", "GET", "/v2/jobs/?per_page=5", f.admin, 200},
		{"v2 bad cursor", "GET", "/v2/jobs/?cursor=nope", f.admin, 400},
		{"console logs", "GET", jobPath + "console_logs/", f.admin, 200},
	}
	for _, tt := range tests {
		status, _ := f.call(t, tt.method, tt.path, tt.token, "")
		if status != tt.status {
			t.Errorf("%s: %s %s = %d, want %d", tt.name, tt.method, tt.path, status, tt.status)
		}
	}
	_, v := f.call(t, "GET", "/agents/", f.admin, "")
	agents := v.(map[string]any)
	if agents["count"] != 1.0 || agents["results"].([]any)[0].(map[string]any)["status"] != "connected" {
		t.Errorf("agents = %v", v)
	}
	_, v = f.call(t, "GET", jobPath, f.admin, "")
	j := v.(map[string]any)
	if j["id"] != f.job.ID || j["status"] != "PENDING" || j["plugin_release"].(map[string]any)["plugin"] != "yolo" ||
		j["agent"].(map[string]any)["id"] != 1.0 || j["params"].(map[string]any)["epochs"] != 2.0 || j["started"] != nil {
		t.Errorf("job = %v", j)
	}
	_, v = f.call(t, "GET", "/v2/jobs/?cursor=nope", f.admin, "")
	if e := v.(map[string]any)["error"].(map[string]any); e["code"] != "INVALID_CURSOR" {
		t.Errorf("v2 error envelope = %v", v)
	}
}

func TestAPIPatchJobAsTheWorker(t *testing.T) {
	f := newAPI(t)
	path := "/jobs/" + f.job.ID + "/"
	steps := []struct {
		name, token, body string
		status            int
	}{
		{"running", f.jobTk, `{"status":"RUNNING"}`, 200},
		{"progress", f.jobTk, `{"progress_record":{"current_progress":{"overall":50}},"console_logs":"line 1\nline 2\n"}`, 200},
		{"unknown field", f.jobTk, `{"stauts":"RUNNING"}`, 400},
		{"bad status", f.jobTk, `{"status":"DONE"}`, 400},
		{"back to pending", f.jobTk, `{"status":"PENDING"}`, 400},
		{"another job's token", "syn_nope", `{"status":"FAILED"}`, 401},
		{"finish", f.jobTk, `{"status":"SUCCEEDED","result":{"ok":true}}`, 200},
		{"the job token ends with the job", f.jobTk, `{"status":"SUCCEEDED"}`, 401},
		{"same final status again (admin)", f.admin, `{"status":"SUCCEEDED"}`, 200},
	}
	for _, s := range steps {
		status, v := f.call(t, "PATCH", path, s.token, s.body)
		if status != s.status {
			t.Errorf("%s: %d %v, want %d", s.name, status, v, s.status)
		}
	}
	_, v := f.call(t, "GET", path, f.admin, "")
	j := v.(map[string]any)
	if j["status"] != "SUCCEEDED" || j["result"].(map[string]any)["ok"] != true || j["started"] == nil || j["completed"] == nil ||
		j["progress_record"].(map[string]any)["current_progress"].(map[string]any)["overall"] != 50.0 {
		t.Errorf("job = %v", j)
	}
	_, v = f.call(t, "GET", path+"console_logs/", f.admin, "")
	if lines, _ := v.([]any); len(lines) != 2 || lines[1] != "line 2" {
		t.Errorf("console logs = %v", v)
	}
	status, v := f.call(t, "GET", "/v2"+path+"console_logs/", f.admin, "")
	v2, _ := v.(map[string]any)
	data, _ := v2["data"].(map[string]any)
	meta, _ := v2["meta"].(map[string]any)
	if lines, _ := data["logs"].([]any); status != 200 || len(lines) != 2 || lines[0] != "line 1" || meta["request_id"] == nil {
		t.Errorf("v2 console logs = %d %v, want {data: {logs: [line 1, line 2]}, meta: {request_id}}", status, v)
	}

	// A job token cannot touch another job.
	other, err := f.store.CreateJob(t.Context(), store.Job{ReleaseID: f.job.ReleaseID, Agent: "local", Action: "x"})
	if err != nil {
		t.Fatal(err)
	}
	tk, _, err := f.store.CreateToken(t.Context(), "job", store.TokenJob, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := f.call(t, "PATCH", path, tk, `{"meta":{}}`); status != 403 {
		t.Errorf("job token on another job: %d, want 403", status)
	}
}

func TestAPILogs(t *testing.T) {
	f := newAPI(t)
	one := `{"event":"message","data":{"content":"hi"},"datetime":"2026-12-04T10:00:00+00:00","job":"` + f.job.ID + `","level":"success"}`
	two := `[` + one + `,{"event":"metric","data":{"category":"train","key":"loss","value":0.5},"datetime":"2026-12-04T10:00:01+00:00","job":"` + f.job.ID + `","step":"train"}]`
	steps := []struct {
		name, token, body string
		status            int
	}{
		{"one entry with the job token", f.jobTk, one, 201},
		{"a list", f.jobTk, two, 201},
		{"no token", "", one, 401},
		{"not JSON", f.jobTk, `{`, 400},
		{"empty list", f.jobTk, `[]`, 400},
		{"no job", f.jobTk, `{"event":"x"}`, 400},
		{"two jobs in one request", f.admin, `[` + one + `,{"event":"x","job":"00000000-0000-0000-0000-000000000000"}]`, 400},
		{"an unknown job (admin)", f.admin, `{"event":"x","job":"00000000-0000-0000-0000-000000000000"}`, 404},
	}
	for _, s := range steps {
		if status, v := f.call(t, "POST", "/logs/", s.token, s.body); status != s.status {
			t.Errorf("%s: %d %v, want %d", s.name, status, v, s.status)
		}
	}
	status, v := f.call(t, "GET", "/v2/job-logs/?job="+f.job.ID+"&per_page=2", f.admin, "")
	page := v.(map[string]any)
	data := page["data"].([]any)
	if status != 200 || len(data) != 2 || data[0].(map[string]any)["level"] != "success" || page["meta"].(map[string]any)["next_cursor"] == nil {
		t.Fatalf("first page = %d %v", status, v)
	}
	_, v = f.call(t, "GET", "/v2/job-logs/?job="+f.job.ID+"&cursor="+page["meta"].(map[string]any)["next_cursor"].(string), f.admin, "")
	if rest := v.(map[string]any)["data"].([]any); len(rest) != 1 || rest[0].(map[string]any)["step"] != "train" {
		t.Errorf("second page = %v", v)
	}
	if status, _ := f.call(t, "GET", "/v2/job-logs/?job="+f.job.ID, f.jobTk, ""); status != 403 {
		t.Errorf("reading logs with a job token: %d, want 403", status)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// jsonText is v as compact JSON (or as is when it is a string).
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestJobPluginCode: plugin_release.plugin is the plugin's code, whatever
// the release's config says (its code is optional).
func TestJobPluginCode(t *testing.T) {
	f := newAPI(t)
	ctx := t.Context()
	p, err := f.store.GetPlugin(ctx, "yolo")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []string{`{}`, `{"code":"something-else"}`} {
		rel, err := f.store.CreateRelease(ctx, store.Release{PluginID: p.ID, Version: "2.0.0", Config: json.RawMessage(cfg), Debug: true, SHA256: "x", Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		job, err := f.store.CreateJob(ctx, store.Job{ReleaseID: rel.ID, Agent: "local", Action: "train"})
		if err != nil {
			t.Fatal(err)
		}
		_, v := f.call(t, "GET", "/jobs/"+job.ID+"/", f.admin, "")
		if got := v.(map[string]any)["plugin_release"].(map[string]any)["plugin"]; got != "yolo" {
			t.Errorf("config %s: plugin_release.plugin = %v, want yolo", cfg, got)
		}
	}
}

// TestListJobsV1Count pages through more jobs than a page: count is the
// number of jobs the status selects on every page (DRF's count), and an
// unknown status is a 400 naming the statuses.
func TestListJobsV1Count(t *testing.T) {
	f := newAPI(t)
	for range 4 { // 5 PENDING jobs with the fixture's
		if _, err := f.store.CreateJob(t.Context(), store.Job{ReleaseID: f.job.ReleaseID, Agent: "local", Action: "train"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Status: store.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query      string
		count, all int
	}{
		{"page_size=2", 5, 5},
		{"page_size=2&status=PENDING", 4, 4},
		{"page_size=2&status=RUNNING", 1, 1},
		{"status=FAILED", 0, 0},
	}
	for _, tt := range tests {
		seen := 0
		for next := "/jobs/?" + tt.query; next != ""; {
			status, v := f.call(t, "GET", next, f.admin, "")
			p := v.(map[string]any)
			if status != 200 || p["count"] != float64(tt.count) {
				t.Fatalf("%s: GET %s = %d count %v, want count %d", tt.query, next, status, p["count"], tt.count)
			}
			seen += len(p["results"].([]any))
			next, _ = p["next"].(string)
		}
		if seen != tt.all {
			t.Errorf("%s: the pages held %d jobs, want %d", tt.query, seen, tt.all)
		}
	}
	for _, path := range []string{"/jobs/?status=bogus", "/v2/jobs/?status=running"} {
		status, v := f.call(t, "GET", path, f.admin, "")
		if want := `status: \"`; status != 400 || !strings.Contains(jsonText(v), want) || !strings.Contains(jsonText(v), "PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED") {
			t.Errorf("GET %s = %d %s, want 400 naming the statuses", path, status, jsonText(v))
		}
	}
}

// thawOnCleanup makes the read-only release directories under dir (see
// freeze) writable again when the test ends, before t.TempDir removes
// them: not running as root, the removal fails otherwise. Call it after
// the t.TempDir that holds dir.
func thawOnCleanup(t testing.TB, dir string) { t.Cleanup(func() { thaw(dir) }) }

// TestWorkerInputChecked: PATCH records and meta must be JSON objects, meta
// is merged key by key (null removes a key), and POST /logs/ entries are
// checked field by field, each error naming the entry and field; what the
// Python SDK's JobLogger sends passes.
func TestWorkerInputChecked(t *testing.T) {
	f := newAPI(t)
	path := "/jobs/" + f.job.ID + "/"
	if _, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Meta: json.RawMessage(`{"language":"ko","error":{"message":"x"}}`)}); err != nil {
		t.Fatal(err)
	}
	entry := func(extra string) string {
		return `{"event":"message","data":{"content":"hi"},"datetime":"2026-06-11T03:04:05.123456+00:00","job":"` + f.job.ID + `"` + extra + `}`
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		text                     string
	}{
		{"progress a string", "PATCH", path, `{"progress_record":"notanobject"}`, 400, "progress_record: want a JSON object, got a string"},
		{"metrics a list", "PATCH", path, `{"metrics_record":[1]}`, 400, "metrics_record: want a JSON object, got a list"},
		{"meta a number", "PATCH", path, `{"meta":5}`, 400, "meta: want a JSON object, got a number"},
		{"meta merged", "PATCH", path, `{"meta":{"a":1,"error":null}}`, 200, `"meta":{"a":1,"language":"ko"}`},
		{"the SDK's entry", "POST", "/logs/", entry(`,"level":"warning","step":"train"`), 201, `"created":1`},
		{"SDK time without fraction", "POST", "/logs/", `[` + entry(`,"datetime":"2026-06-11T03:04:05+00:00"`) + `]`, 201, `"created":1`},
		{"a data URI file", "POST", "/logs/", entry(`,"file":"data:image/png;base64,aGk="`), 201, `"created":1`},
		{"bad datetime", "POST", "/logs/", entry(`,"datetime":"yesterday"`), 400, `datetime: \"yesterday\" is not an RFC 3339 time`},
		{"bad level in a list", "POST", "/logs/", `[` + entry("") + `,` + entry("") + `,` + entry("") + `,` + entry(`,"level":"loud"`) + `]`, 400, `entries[3].level: want one of debug, info, success, warning, danger, error, critical (got \"loud\")`},
		{"bad file", "POST", "/logs/", entry(`,"file":"notadatauri"`), 400, "file: want a base64 data URI"},
		{"level a number in a list", "POST", "/logs/", `[` + entry("") + `,` + entry(`,"level":5`) + `]`, 400, "entries[1].level: want a string, got a number (fields: event"},
		{"unknown job", "POST", "/logs/", `{"event":"x","job":"00000000-0000-4000-8000-000000000000"}`, 404, "job: no job 00000000-0000-4000-8000-000000000000 (GET /jobs/ lists the jobs)"},
		{"unknown job in a list", "POST", "/logs/", `[{"event":"x","job":"00000000-0000-4000-8000-000000000000"}]`, 404, "entries[0].job: no job 00000000-0000-4000-8000-000000000000"},
	}
	for _, tt := range tests {
		status, v := f.call(t, tt.method, tt.path, f.admin, tt.body)
		if text := jsonText(v); status != tt.status || !strings.Contains(text, tt.text) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, status, text, tt.status, tt.text)
		}
	}
	_, v := f.call(t, "GET", path, f.admin, "")
	j := v.(map[string]any)
	if j["progress_record"] != nil || j["metrics_record"] != nil {
		t.Errorf("refused records were stored: %v", j)
	}
}
