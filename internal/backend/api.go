package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// Agents lists the backend's agents: GET /agents/, every page.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	return listAll[Agent](ctx, c, "list agents", "/agents/", nil)
}

// Plugin reads a plugin by its code (or numeric ID): GET
// /plugins/{code}/. An unknown plugin is ErrNotFound.
func (c *Client) Plugin(ctx context.Context, code string) (*Plugin, error) {
	op := "get plugin " + code
	if code == "" {
		return nil, errors.New("get plugin: no plugin code")
	}
	var p Plugin
	if err := c.get(ctx, op, "/plugins/"+seg(code)+"/", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePlugin creates a plugin from p's Code, Name, Category and
// Description: POST /plugins/ {code, name, category, description}. A code
// in use is an *HTTPError whose detail says it "already exists". (A first
// PublishRelease creates its plugin; this is for a plugin with no release
// yet.)
func (c *Client) CreatePlugin(ctx context.Context, p Plugin) (*Plugin, error) {
	op := "create plugin " + p.Code
	if p.Code == "" {
		return nil, errors.New("create plugin: no plugin code")
	}
	body := map[string]string{"code": p.Code, "name": p.Name, "category": p.Category, "description": p.Description}
	if p.Name == "" {
		body["name"] = p.Code
	}
	var out Plugin
	r := request{op: op, method: http.MethodPost, path: "/plugins/", in: body,
		check: fmt.Sprintf("whether plugin %s exists (synapse plugin publish creates it too)", p.Code)}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PublishRelease uploads a release: POST /plugin_releases/ as multipart
// form data, exactly as the Python SDK sends it: the fields plugin (the
// code), version, config (the JSON text) and debug ("True" or "False"),
// then the file part "file" named plugin.zip. A version that exists is an
// *HTTPError matching ErrVersionExists (its text says "already exists")
// unless u.Debug and that version is a debug release too, which it
// replaces (synapse server refuses a debug publish over a published,
// non-debug release, with ErrVersionExists as well).
func (c *Client) PublishRelease(ctx context.Context, u ReleaseUpload) (*Release, error) {
	op := fmt.Sprintf("publish release %s@%s", u.Plugin, u.Version)
	switch {
	case u.Plugin == "":
		return nil, errors.New("publish release: no plugin code")
	case u.Version == "":
		return nil, fmt.Errorf("publish release %s: no version", u.Plugin)
	case len(u.Config) > 0 && !json.Valid(u.Config):
		return nil, fmt.Errorf("%s: the config is not valid JSON", op)
	}
	// The form around the zip is built in memory; the zip is sent as it is.
	var head, tail bytes.Buffer
	sw := &switchWriter{w: &head}
	mw := multipart.NewWriter(sw)
	fields := [][2]string{{"plugin", u.Plugin}, {"version", u.Version}}
	if len(u.Config) > 0 {
		fields = append(fields, [2]string{"config", string(u.Config)})
	}
	fields = append(fields, [2]string{"debug", pyBool(u.Debug)})
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	if u.Zip != nil {
		// As Python's requests sends a file: a Content-Disposition and no
		// Content-Type.
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="plugin.zip"`)
		if _, err := mw.CreatePart(h); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	sw.w = &tail
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ctype := mw.FormDataContentType()
	r := request{op: op, method: http.MethodPost, path: "/plugin_releases/",
		check: fmt.Sprintf("whether release %s@%s exists (synapse plugin publish --dry-run does not call the backend; the backend's release list does)", u.Plugin, u.Version),
		body: func() (io.Reader, int64, string) {
			size := int64(head.Len() + len(u.Zip) + tail.Len())
			return io.MultiReader(bytes.NewReader(head.Bytes()), bytes.NewReader(u.Zip), bytes.NewReader(tail.Bytes())), size, ctype
		}}
	var out Release
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// switchWriter writes to w, which may be changed between writes.
type switchWriter struct{ w io.Writer }

// Write writes p to the current writer.
func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// pyBool is a bool as Python's str(bool) writes it.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// Release reads the release of plugin code at version: GET
// /plugin_releases/{code@version}/. An unknown one is ErrNotFound.
func (c *Client) Release(ctx context.Context, code, version string) (*Release, error) {
	op := fmt.Sprintf("get release %s@%s", code, version)
	if code == "" || version == "" {
		return nil, fmt.Errorf("%s: want a plugin code and a version", op)
	}
	var out Release
	if err := c.get(ctx, op, "/plugin_releases/"+seg(code)+"@"+seg(version)+"/", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Run runs an action of plugin code: POST /plugins/{code}/run/
// {"agent", "action", "params", "debug", "version"?, "language"?}, and
// returns the job it created (PENDING or RUNNING). Params the release
// refuses are an *HTTPError (400) with Fields. A lost answer is an
// *UncertainError (the job may exist): Run never retries.
func (c *Client) Run(ctx context.Context, code string, req RunRequest) (*Job, error) {
	op := fmt.Sprintf("run plugin %s", code)
	if req.Action != "" {
		op += " action " + req.Action
	}
	switch {
	case code == "":
		return nil, errors.New("run plugin: no plugin code")
	case req.Action == "":
		return nil, fmt.Errorf("%s: no action", op)
	}
	params := req.Params
	if len(nonNull(params)) == 0 {
		params = json.RawMessage(`{}`)
	} else if !json.Valid(params) {
		return nil, fmt.Errorf("%s: the params are not valid JSON", op)
	}
	body := struct {
		Agent    *int            `json:"agent,omitempty"`
		Action   string          `json:"action"`
		Params   json.RawMessage `json:"params"`
		Debug    bool            `json:"debug"`
		Version  string          `json:"version,omitempty"`
		Language string          `json:"language,omitempty"`
	}{Action: req.Action, Params: params, Debug: req.Debug, Version: req.Version, Language: req.Language}
	if req.Agent != 0 {
		body.Agent = &req.Agent
	}
	var raw json.RawMessage
	r := request{op: op, method: http.MethodPost, path: "/plugins/" + seg(code) + "/run/", in: body, check: "`synapse plugin job list`"}
	if err := c.do(ctx, r, &raw); err != nil {
		return nil, err
	}
	var job Job
	if err := json.Unmarshal(raw, &job); err != nil || job.ID == "" {
		return nil, fmt.Errorf("%s: the backend answered without a job (no id), so nothing can be followed: %s", op, c.secrets.scrub(snippet(raw)))
	}
	return &job, nil
}

// Job reads a job: GET /jobs/{id}/. An unknown job is ErrNotFound.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	op := "get job " + id
	if id == "" {
		return nil, errors.New("get job: no job ID")
	}
	var j Job
	if err := c.get(ctx, op, "/jobs/"+seg(id)+"/", nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Jobs lists jobs newest first: GET /v2/jobs/?status=&action=&per_page=
// &cursor=, following meta.next_cursor until f.Limit jobs (all when 0).
func (c *Client) Jobs(ctx context.Context, f JobsFilter) ([]Job, error) {
	const op = "list jobs"
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", strings.ToUpper(f.Status))
	}
	if f.Action != "" {
		q.Set("action", f.Action)
	}
	if f.PerPage > 0 {
		q.Set("per_page", strconv.Itoa(f.PerPage))
	}
	var all []Job
	seen := map[string]bool{}
	for cursor := f.Cursor; ; {
		if cursor != "" {
			if seen[cursor] {
				return nil, fmt.Errorf("%s: the backend gave the cursor %q twice: stopped", op, cursor)
			}
			seen[cursor] = true
			q.Set("cursor", cursor)
		}
		var env envelope
		if err := c.get(ctx, op, "/v2/jobs/", q, &env); err != nil {
			return nil, err
		}
		var page []Job
		if err := json.Unmarshal(env.Data, &page); err != nil {
			return nil, fmt.Errorf("%s: the answer's data is not a list of jobs: %v", op, err)
		}
		all = append(all, page...)
		if f.Limit > 0 && len(all) >= f.Limit {
			return all[:f.Limit], nil
		}
		if env.Meta.NextCursor == nil || *env.Meta.NextCursor == "" || len(page) == 0 {
			return all, nil
		}
		cursor = *env.Meta.NextCursor
	}
}

// ConsoleLogs reads a job's console log: GET /jobs/{id}/console_logs/, a
// JSON list of lines (older backends' {"results": [{"message"}]} is read
// too).
func (c *Client) ConsoleLogs(ctx context.Context, id string) ([]string, error) {
	op := "get console log of job " + id
	if id == "" {
		return nil, errors.New("get console log: no job ID")
	}
	var raw json.RawMessage
	if err := c.get(ctx, op, "/jobs/"+seg(id)+"/console_logs/", nil, &raw); err != nil {
		return nil, err
	}
	var lines []string
	if json.Unmarshal(raw, &lines) == nil {
		return lines, nil
	}
	var page struct {
		Results []struct {
			Message string `json:"message"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, fmt.Errorf("%s: the answer is not a list of lines: %s", op, c.secrets.scrub(snippet(raw)))
	}
	lines = make([]string, len(page.Results))
	for i, r := range page.Results {
		lines[i] = strings.TrimSuffix(r.Message, "\n")
	}
	return lines, nil
}

// Stop stops a job: POST /v2/jobs/{id}/stop/, the only call that stops a
// run (a PATCH of the status to STOPPED only records one). It returns the
// job, STOPPED. A job that has already ended is ErrConflict.
func (c *Client) Stop(ctx context.Context, id string) (*Job, error) {
	op := "stop job " + id
	if id == "" {
		return nil, errors.New("stop job: no job ID")
	}
	var env envelope
	r := request{op: op, method: http.MethodPost, path: "/v2/jobs/" + seg(id) + "/stop/", check: "`synapse plugin job list`"}
	if err := c.do(ctx, r, &env); err != nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal(env.Data, &j); err != nil || j.ID == "" {
		return nil, fmt.Errorf("%s: the answer's data is not a job: %s", op, c.secrets.scrub(snippet(env.Data)))
	}
	return &j, nil
}

// seg escapes a path segment.
func seg(s string) string { return url.PathEscape(s) }

// page is a v1 (DRF) list page.
type page[T any] struct {
	Count   int     `json:"count"`
	Next    *string `json:"next"`
	Results []T     `json:"results"`
}

// listAll reads every page of a v1 list, following next links on this
// client's host only (a link to another host is followed by its path and
// query, so the token never goes elsewhere).
func listAll[T any](ctx context.Context, c *Client, op, path string, query url.Values) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	for range maxPages {
		var p page[T]
		if err := c.get(ctx, op, path, query, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Results...)
		if p.Next == nil || *p.Next == "" || len(p.Results) == 0 {
			return all, nil
		}
		var err error
		if path, query, err = c.nextPage(path, *p.Next); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		key := path + "?" + query.Encode()
		if seen[key] {
			return nil, fmt.Errorf("%s: the backend's next link %q repeats a page: stopped", op, *p.Next)
		}
		seen[key] = true
	}
	return nil, fmt.Errorf("%s: more than %d pages: stopped", op, maxPages)
}

// nextPage reads a next link (absolute, or relative to the page at path)
// as an API path on this client's host and its query.
func (c *Client) nextPage(path, next string) (string, url.Values, error) {
	ref, err := url.Parse(next)
	if err != nil {
		return "", nil, fmt.Errorf("the backend's next link %q is not a URL", next)
	}
	cur, err := url.Parse(c.url(path, nil))
	if err != nil {
		return "", nil, err
	}
	u := cur.ResolveReference(ref)
	p := u.EscapedPath()
	if prefix := c.base.EscapedPath(); prefix != "" && strings.HasPrefix(p, prefix+"/") {
		p = strings.TrimPrefix(p, prefix)
	}
	return p, u.Query(), nil
}
