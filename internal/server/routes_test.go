package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
