package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

// raw sends a request and returns the response with its body read.
func (f *apiFixture) raw(t *testing.T, method, path, token, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Synapse-Access-Token", "Token "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestRoutesAnswerJSON: a path with no route is 404 and a route asked with
// another method 405 with Allow, in the API's error shapes; a route ends
// at its last slash.
func TestRoutesAnswerJSON(t *testing.T) {
	f := newAPI(t)
	job := "/jobs/" + f.job.ID + "/"
	tests := []struct {
		name, method, path string
		status             int
		allow, message     string
		v2                 bool
	}{
		{"past a job", "GET", job + "foo/bar/", 404, "", "not found: no route GET " + job + "foo/bar/", false},
		{"past a v2 job", "GET", "/v2" + job + "foo/", 404, "", "no route GET /v2" + job + "foo/", true},
		{"past a plugin", "GET", "/plugins/yolo/x/", 404, "", "no route", false},
		{"past a release", "GET", "/plugin_releases/1/x/", 404, "", "no route", false},
		{"past health", "GET", "/health/x/", 404, "", "no route", false},
		{"past run", "POST", "/plugins/yolo/run/again/", 404, "", "no route", false},
		{"past the job's PATCH", "PATCH", job + "x/", 404, "", "no route", false},
		{"unknown path", "GET", "/nope/", 404, "", "no route GET /nope/", false},
		{"unknown v2 path", "GET", "/v2/nope/", 404, "", "no route", true},
		{"wrong method", "DELETE", job, 405, "GET, HEAD, PATCH", "method DELETE is not allowed on " + job + " (allowed: GET, HEAD, PATCH)", false},
		{"wrong v2 method", "GET", "/v2" + job + "stop/", 405, "POST", "method GET is not allowed", true},
		{"GET of run", "GET", "/plugins/yolo/run/", 405, "POST", "allowed: POST", false},
		{"PUT of releases", "PUT", "/plugin_releases/", 405, "GET, HEAD, POST", "allowed: GET, HEAD, POST", false},
	}
	for _, tt := range tests {
		resp, b := f.raw(t, tt.method, tt.path, f.admin, "", nil)
		var v1 struct {
			Detail string `json:"detail"`
		}
		var v2 struct {
			Error struct{ Code, Message string } `json:"error"`
			Meta  struct {
				RequestID string `json:"request_id"`
			} `json:"meta"`
		}
		message := ""
		if tt.v2 {
			if err := json.Unmarshal(b, &v2); err != nil || v2.Meta.RequestID == "" || v2.Error.Code == "" {
				t.Errorf("%s: %s is not the v2 error envelope (%v)", tt.name, b, err)
			}
			message = v2.Error.Message
		} else {
			if err := json.Unmarshal(b, &v1); err != nil {
				t.Errorf("%s: %s is not JSON: %v", tt.name, b, err)
			}
			message = v1.Detail
		}
		if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow || !strings.Contains(message, tt.message) ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %s %s = %d (Allow %q, %s) %s, want %d (Allow %q) containing %q", tt.name, tt.method, tt.path,
				resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), b, tt.status, tt.allow, tt.message)
		}
	}
	// A route still redirects to its slash.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/jobs/"+f.job.ID, nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != job {
		t.Errorf("without the slash: %d to %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), job)
	}
}

// TestBodyLimits: a JSON body over the limit is 413 naming it, on every
// route that takes one, and so is a publish over its own.
func TestBodyLimits(t *testing.T) {
	f := newAPI(t)
	big := `{"x":"` + strings.Repeat("a", maxBody) + `"}`
	tests := []struct {
		name, method, path, token, contentType string
		v2                                     bool
	}{
		{"report a job", "PATCH", "/jobs/" + f.job.ID + "/", f.jobTk, "", false},
		{"report a job (v2)", "PATCH", "/v2/jobs/" + f.job.ID + "/", f.jobTk, "", true},
		{"log entries", "POST", "/logs/", f.jobTk, "", false},
		{"create a plugin", "POST", "/plugins/", f.admin, "", false},
		{"run", "POST", "/plugins/yolo/run/", f.admin, "", false},
	}
	for _, tt := range tests {
		// With its length (refused before it is read), and without (chunked:
		// refused once the limit is read).
		for _, body := range []io.Reader{strings.NewReader(big), io.MultiReader(strings.NewReader(big))} {
			resp, b := f.raw(t, tt.method, tt.path, tt.token, tt.contentType, body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "request body over the limit of 8 MiB") {
				t.Errorf("%s: %d %.300s, want 413 naming the limit", tt.name, resp.StatusCode, b)
			}
			if tt.v2 && !strings.Contains(string(b), `"code":"TOO_LARGE"`) {
				t.Errorf("%s: %.300s, want the v2 envelope", tt.name, b)
			}
		}
	}
	// A publish takes up to 100 MiB of zip, and a little more of form.
	body := io.MultiReader(strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plugin.zip\"\r\n\r\n"),
		io.LimitReader(zeros{}, maxRelease+2<<20), strings.NewReader("\r\n--b--\r\n"))
	resp, b := f.raw(t, "POST", "/plugin_releases/", f.admin, "multipart/form-data; boundary=b", body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "file: the release zip is over the limit: a release zip may be at most 100 MiB (and the form around it 1 MiB)") {
		t.Errorf("a publish over the limit: %d %.300s, want 413", resp.StatusCode, b)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestStrictJSON: a JSON body is one JSON value, nothing after it; run's
// language is a language tag.
func TestStrictJSON(t *testing.T) {
	f := newAPI(t)
	tests := []struct {
		name, method, path, token, body string
		status                          int
		text                            string
	}{
		{"report, then garbage", "PATCH", "/jobs/" + f.job.ID + "/", f.jobTk, `{"status":"RUNNING"} x`, 400, "more data after the JSON value (from byte 20)"},
		{"report, then a second value", "PATCH", "/jobs/" + f.job.ID + "/", f.jobTk, `{"status":"RUNNING"}{"status":"FAILED"}`, 400, "more data after the JSON value"},
		{"report, then white space", "PATCH", "/jobs/" + f.job.ID + "/", f.jobTk, "{\"status\":\"RUNNING\"} \n", 200, ""},
		{"log entries, then garbage", "POST", "/logs/", f.jobTk, `{"event":"message","job":"` + f.job.ID + `"}]`, 400, "more data after the JSON value (from byte 64)"},
		{"plugin, then garbage", "POST", "/plugins/", f.admin, `{"code":"det"}}`, 400, "more data after the JSON value"},
		{"run, then garbage", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train"} trailing`, 400, "more data after the JSON value"},
		{"run, empty", "POST", "/plugins/yolo/run/", f.admin, ``, 400, "empty: want a JSON object (fields: agent, action"},
		{"run, unknown key", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","lang":"en"}`, 400, `unknown field \"lang\"`},
		{"run, bad language", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":"english please"}`, 400, `language: want a language tag such as en, ko or pt-BR (got \"english please\")`},
		{"run, language with an underscore", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":"pt_BR"}`, 400, "language: want a language tag"},
		{"run, language not a string", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":7}`, 400, "language"},
		// Good bodies go on to the route (the fixture has no runner).
		{"run, en", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":"en"}`, 400, "agent: no agent"},
		{"run, pt-BR", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":"pt-BR"}`, 400, "agent: no agent"},
		{"run, no language", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":null}`, 400, "agent: no agent"},
	}
	for _, tt := range tests {
		status, v := f.call(t, tt.method, tt.path, tt.token, tt.body)
		if status != tt.status || !strings.Contains(jsonText(v), tt.text) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, status, jsonText(v), tt.status, tt.text)
		}
	}
}

func TestValidLanguage(t *testing.T) {
	for tag, want := range map[string]bool{
		"en": true, "ko": true, "pt-BR": true, "zh-Hant-TW": true, "es-419": true, "fil": true, "de-CH-1996": true,
		"": false, "e": false, "english": false, "pt_BR": false, "en-": false, "-en": false, "en--US": false, "12": false,
		"en-toolongsubtag": false, "ko KR": false, "en-US-" + strings.Repeat("a", 30): false,
	} {
		if got := validLanguage(tag); got != want {
			t.Errorf("validLanguage(%q) = %v, want %v", tag, got, want)
		}
	}
}

// TestErrorsSayWhat: a JSON body of the wrong type is named in JSON's
// terms (never a Go type), a 404 says which plugin, job or release by
// what, and a 403 what the token is and may do.
func TestErrorsSayWhat(t *testing.T) {
	f := newAPI(t)
	unknownJob := "00000000-0000-4000-8000-000000000000"
	tests := []struct {
		name, method, path, token, body string
		status                          int
		text                            string
	}{
		{"debug a string", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","debug":"yes"}`, 400, "read body: field debug: want true or false, got a string (fields: agent"},
		{"action a number", "POST", "/plugins/yolo/run/", f.admin, `{"action":7}`, 400, "field action: want a string, got a number"},
		{"language a boolean", "POST", "/plugins/yolo/run/", f.admin, `{"action":"train","language":true}`, 400, "field language: want a string, got a boolean (true or false)"},
		{"a list, not an object", "POST", "/plugins/yolo/run/", f.admin, `["train"]`, 400, "the body: want an object, got a list"},
		{"status a number", "PATCH", "/jobs/" + f.job.ID + "/", f.jobTk, `{"status":1.5}`, 400, "field status: want a string, got a number"},
		{"code an object", "POST", "/plugins/", f.admin, `{"code":{}}`, 400, "field code: want a string, got an object"},
		{"not JSON", "POST", "/plugins/", f.admin, `{"code":x}`, 400, "read body: not valid JSON at byte 9: invalid character 'x'"},
		{"cut short", "POST", "/plugins/", f.admin, `{"code":"x"`, 400, "read body: the JSON ends too soon"},
		{"unknown plugin", "GET", "/plugins/nope/", f.admin, "", 404, `no plugin with ID or code \"nope\" (GET /plugins/ lists the plugins)`},
		{"unknown plugin by ID", "GET", "/plugins/99/", f.admin, "", 404, `no plugin with ID or code \"99\"`},
		{"run of an unknown plugin", "POST", "/plugins/nope/run/", f.admin, `{"action":"train"}`, 404, `no plugin with ID or code \"nope\"`},
		{"unknown job", "GET", "/jobs/" + unknownJob + "/", f.admin, "", 404, "no job " + unknownJob + " (GET /jobs/ lists the jobs)"},
		{"not a job ID", "GET", "/v2/jobs/42/", f.admin, "", 404, `no job \"42\": job IDs are UUIDs`},
		{"console of an unknown job", "GET", "/jobs/" + unknownJob + "/console_logs/", f.admin, "", 404, "no job " + unknownJob},
		{"stop an unknown job", "POST", "/v2/jobs/" + unknownJob + "/stop/", f.admin, "", 404, "no job " + unknownJob},
		{"report an unknown job", "PATCH", "/jobs/" + unknownJob + "/", f.admin, `{"status":"RUNNING"}`, 404, "no job " + unknownJob},
		{"unknown release by ID", "GET", "/plugin_releases/99/", f.admin, "", 404, "no release with ID 99 (GET /plugin_releases/ lists the releases)"},
		{"unknown version", "GET", "/plugin_releases/yolo@9.9/", f.admin, "", 404, `plugin yolo has no release \"9.9\" (GET /plugin_releases/?plugin=yolo lists its releases)`},
		{"release of an unknown plugin", "GET", "/plugin_releases/nope@1/", f.admin, "", 404, `no plugin with ID or code \"nope\"`},
		{"not a release key", "GET", "/plugin_releases/latest/", f.admin, "", 404, `no release \"latest\": want a release ID (a number) or CODE@VERSION`},
		{"a job token elsewhere", "GET", "/plugins/", f.jobTk, "", 403, "GET /plugins/: this is the job token of job " + f.job.ID + " (the SYNAPSE_ACCESS_TOKEN a job runs with): it may only report that job"},
	}
	for _, tt := range tests {
		status, v := f.call(t, tt.method, tt.path, tt.token, tt.body)
		text := jsonText(v)
		if status != tt.status || !strings.Contains(text, tt.text) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, status, text, tt.status, tt.text)
		}
		for _, goName := range []string{"Go struct", "runRequest", "json:", "struct {", "float64", "int64"} {
			if strings.Contains(text, goName) {
				t.Errorf("%s: %s names Go's %q", tt.name, text, goName)
			}
		}
	}
}

// TestErrorTextsPrecise: each error says what was wrong, where and how to
// fix it (issue 12 review): run/ without an action or with an unknown
// version, a non-JSON run/ body, params that are not an object, a cursor
// this server did not give, a change to a job that has ended, v2 details
// naming the field, 401s with WWW-Authenticate telling a missing token
// from an invalid one, and a run on a Ray agent whose dashboard is down.
func TestErrorTextsPrecise(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens there
	f := newRunServer(t, 4, func(a *API) {
		c, err := ray.NewClient(down, ray.WithAddressHint("check the address in --agent gpu=ray:ADDRESS"))
		if err != nil {
			t.Fatal(err)
		}
		a.Agents = append(a.Agents, Agent{ID: 2, Name: "gpu", Kind: "ray"})
		a.Runners["gpu"] = &RayAgent{Name: "gpu", Store: a.Store, Releases: a.Releases, Client: c, Done: a.JobDone}
	})
	ended, err := f.store.UpdateJob(t.Context(), f.job.ID, store.JobUpdate{Status: store.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	endedPath := "/jobs/" + ended.ID + "/"
	form := "--b\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\necho\r\n--b--\r\n"
	tests := []struct {
		name, method, path, token, contentType, body string
		status                                       int
		text                                         string
		header                                       string // WWW-Authenticate wanted
	}{
		{"run without action", "POST", "/plugins/conformance/run/", f.admin, "", `{"agent":1,"debug":true}`, 400, "action: required: the action to run, one of context, crash, echo, env, fail, job, scalar, wait (release conformance 1.0)", ""},
		{"run of an unknown version", "POST", "/plugins/conformance/run/", f.admin, "", `{"agent":1,"action":"echo","version":"9.9"}`, 404, `version: plugin conformance has no release \"9.9\" (GET /plugin_releases/?plugin=conformance lists its releases)`, ""},
		{"run with a multipart body", "POST", "/plugins/conformance/run/", f.admin, "multipart/form-data; boundary=b", form, 415, "the body must be a JSON object {agent, action, params, debug, version, language, job_id, storage_id} sent with Content-Type: application/json (got multipart/form-data)", ""},
		{"run with a body that is not JSON", "POST", "/plugins/conformance/run/", f.admin, "", `action=echo`, 400, "not valid JSON at byte 1: invalid character 'a' looking for beginning of value: the body must be a JSON object {agent, action, params, debug, version, language, job_id, storage_id} sent with Content-Type: application/json", ""},
		{"params a list", "POST", "/plugins/conformance/run/", f.admin, "", `{"agent":1,"action":"echo","params":[1,2],"debug":true}`, 400, "params: want a JSON object of the action's params by name, got a list", ""},
		{"a cursor of nothing", "GET", "/jobs/?cursor=zzz", f.admin, "", "", 400, `cursor: \"zzz\" is not a cursor this server gave (a cursor is the next or next_cursor of a page): start without it`, ""},
		{"v2 details name the field", "GET", "/v2/jobs/?per_page=0", f.admin, "", "", 400, `"details":[{"field":"per_page","message":"want a number from 1 to 1000 (got \"0\")"}]`, ""},
		{"a result for an ended job", "PATCH", endedPath, f.admin, "", `{"result":{"x":1}}`, 400, "the job has ended (SUCCEEDED): it takes no more progress_record, metrics_record, result or meta; only its final status again (a no-op) and console_logs may still be sent", ""},
		{"another status for an ended job", "PATCH", endedPath, f.admin, "", `{"status":"RUNNING"}`, 400, "status: invalid status transition: SUCCEEDED to RUNNING (a job goes PENDING → RUNNING → STOPPED, SUCCEEDED or FAILED)", ""},
		{"no token", "GET", "/jobs/", "", "", "", 401, "no access token: send one as Synapse-Access-Token: Token TOKEN, Synapse-Access-Token: TOKEN, Authorization: Token TOKEN or Authorization: Bearer TOKEN", `Token realm="synapse"`},
		{"an unknown token", "GET", "/v2/jobs/", "syn_nope", "", "", 401, "the access token is not valid: no token of this server has it, or it was revoked", `Token realm="synapse"`},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		resp, b := f.raw(t, tt.method, tt.path, tt.token, tt.contentType, body)
		if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.text) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, resp.StatusCode, b, tt.status, tt.text)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != tt.header {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tt.name, got, tt.header)
		}
		for _, goText := range []string{"dial tcp", `Get "http`, "json:", "struct {"} {
			if strings.Contains(string(b), goText) {
				t.Errorf("%s: %s holds Go's %q", tt.name, b, goText)
			}
		}
	}

	// A run on a Ray agent whose dashboard is down fails saying so.
	status, v := f.call(t, "POST", "/plugins/conformance/run/", f.admin, `{"agent":"gpu","action":"echo","debug":true}`)
	if status != 201 {
		t.Fatalf("run on gpu = %d %v", status, v)
	}
	j := f.waitJob(t, v.(map[string]any)["id"].(string), func(j map[string]any) bool { return store.Terminal(j["status"].(string)) })
	msg := jsonText(j["meta"].(map[string]any)["error"].(map[string]any)["message"])
	if want := "the Ray dashboard at http://" + down + " did not answer (connection refused): check --agent gpu=ray:ADDRESS"; j["status"] != "FAILED" || !strings.Contains(msg, want) || strings.Contains(msg, "dial tcp") {
		t.Errorf("run on a Ray agent that is down = %s %q, want FAILED with %q", j["status"], msg, want)
	}
}
