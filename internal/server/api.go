package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

// Agent is a place jobs run (the Synapse backend's agent): a process agent
// on this machine or a Ray cluster.
type Agent struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
	Kind string `json:"kind"` // "process" or "ray"
}

// API serves the Synapse backend's HTTP routes (docs/server-api.md) from a
// store: health, agents, plugins and releases, run, jobs (v1 and v2: read,
// the worker's PATCH, stop), console logs and their SSE stream, and
// structured logs. Jobs run on its Runners, one per agent.
type API struct {
	Store  *store.Store
	Agents []Agent
	// TailPoll is how often the reader of a followed job's console log
	// looks at the job without being told of a change (default 1s): the
	// lines, status changes and log close this server stores wake it at
	// once; the look ends the followers of a job no agent closes the log
	// of (consoleGrace).
	TailPoll time.Duration
	// Releases keeps the release zips and their unpacked files.
	Releases *Releases
	// Host is the URL jobs report to (their SYNAPSE_HOST).
	Host string
	// Runners run the jobs of each agent, by agent name.
	Runners map[string]Runner
	// AgentIDs are the IDs of every agent the store knows, by name
	// (store.AgentIDs), configured or not: a job of an agent no longer
	// configured shows its agent's ID still.
	AgentIDs map[string]int
	// ProcessRunDir is where process agents keep their jobs' files, one
	// directory per agent name (DataDir/run): Recover stops the processes
	// of a process agent that is not configured any more. "" skips that.
	ProcessRunDir string
	// MaxJobs is how many jobs each agent runs at once (default 4); the
	// others wait, PENDING.
	MaxJobs int
	// MaxFollowers caps the console log followers of one job (default 100).
	MaxFollowers int
	// ParamsCheckTimeout bounds run/'s params check (default 10s,
	// paramsCheckTimeout).
	ParamsCheckTimeout time.Duration

	tails hubs
	jobs  dispatcher
}

// JobDone tells the API a job of one of its runners has ended, so the
// next waiting job of that agent can start. Runners call it (see
// ProcessAgent.Done).
func (a *API) JobDone(jobID string) { a.jobs.done(jobID) }

// maxBody bounds a JSON request body (PATCH /jobs/{id}/ carries records,
// POST /logs/ up to 1,000 entries): a larger one is 413.
const maxBody = 8 << 20

// paramsCheckTimeout bounds run/'s params check, the release binary's
// validate command (see API.validate): past it the command's process
// group is killed and the run refused with 504, nothing started.
const paramsCheckTimeout = 10 * time.Second

// Handler returns the API's routes. A path no route has is 404, and a
// route asked with another method 405 with Allow, both in the API's error
// shape (v2 paths in the v2 envelope); routes end at their last slash
// ({$}), so /jobs/{id}/anything/ is no job route.
func (a *API) Handler() http.Handler {
	a.jobs.api = a
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /agents/{$}", a.admin(a.listAgents))
	mux.HandleFunc("GET /jobs/{$}", a.admin(a.listJobsV1))
	mux.HandleFunc("GET /jobs/{id}/{$}", a.admin(a.getJobV1))
	mux.HandleFunc("GET /jobs/{id}/console_logs/{$}", a.admin(a.consoleV1))
	mux.HandleFunc("GET /v2/jobs/{id}/console_logs/{$}", a.admin(a.consoleV2))
	mux.HandleFunc("GET /jobs/{id}/tail_console_logs/{$}", a.admin(a.tail))
	mux.HandleFunc("GET /v2/jobs/{id}/tail_console_logs/{$}", a.admin(a.tail))
	mux.HandleFunc("PATCH /jobs/{id}/{$}", a.patchJob(false))
	mux.HandleFunc("GET /plugins/{$}", a.admin(a.listPlugins))
	mux.HandleFunc("POST /plugins/{$}", a.admin(a.createPlugin))
	mux.HandleFunc("GET /plugins/{id}/{$}", a.admin(a.getPlugin))
	mux.HandleFunc("POST /plugins/{id}/run/{$}", a.admin(a.run))
	mux.HandleFunc("POST /v2/jobs/{id}/stop/{$}", a.admin(a.stop))
	mux.HandleFunc("GET /plugin_releases/{$}", a.admin(a.listReleases))
	mux.HandleFunc("POST /plugin_releases/{$}", a.admin(a.createRelease))
	mux.HandleFunc("GET /plugin_releases/{id}/{$}", a.admin(a.getRelease))
	mux.HandleFunc("POST /logs/{$}", a.postLogs)
	mux.HandleFunc("GET /v2/job-logs/{$}", a.admin(a.listLogsV2))
	mux.HandleFunc("GET /v2/jobs/{$}", a.admin(a.listJobsV2))
	mux.HandleFunc("GET /v2/jobs/{id}/{$}", a.admin(a.getJobV2))
	mux.HandleFunc("PATCH /v2/jobs/{id}/{$}", a.patchJob(true))
	mux.Handle("/ui/", a.uiHandler()) // the dashboard (ui.go)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			a.noRoute(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// noRoute answers a request no route takes: 405 with Allow when the path
// has routes of other methods, else 404.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	h, _ := mux.Handler(r)
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r) // the mux's own answer, plain text: only its status and Allow are kept
	v2 := strings.HasPrefix(r.URL.Path, "/v2/")
	if rec.status == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		a.fail(w, r, v2, &apiError{http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)})
		return
	}
	a.fail(w, r, v2, &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("not found: no route %s %s (docs/server-api.md lists the routes)", r.Method, r.URL.Path)})
}

// statusRecorder keeps a response's status and header, dropping its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(status int)      { s.status = status }

// readBody reads r's body, at most limit bytes: a larger body is 413,
// naming the limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit { // refused before reading it
		return nil, bodyError(&http.MaxBytesError{Limit: limit})
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError is the answer to a body that could not be read: 413 when it
// is over its limit (an *http.MaxBytesError), else 400.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("request body over the limit of %s: send less at once", bytesText(uint64(mbe.Limit)))}
	}
	return &apiError{http.StatusBadRequest, "INVALID_BODY", "read body: " + err.Error()}
}

// decodeBody reads r's body (at most maxBody bytes) as one JSON value into
// v; see decodeJSON.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, strict bool, fields string) error {
	raw, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	return decodeJSON(raw, v, strict, fields)
}

// decodeJSON decodes raw, which must be exactly one JSON value (nothing
// but white space after it), into v. When strict, keys v has no field for
// are refused. fields, the keys taken, is named in the errors.
func decodeJSON(raw []byte, v any, strict bool, fields string) error {
	hint := ""
	if fields != "" {
		hint = " (fields: " + fields + ")"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); errors.Is(err, io.EOF) {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "read body: empty: want a JSON object" + hint}
	} else if err != nil {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "read body: " + jsonErrorText(err) + hint}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("read body: more data after the JSON value (from byte %d): send one JSON value", end)}
	}
	return nil
}

// jsonErrorText says what is wrong with a JSON body in JSON's terms, never
// Go's: "field debug: want true or false, got a string", "unknown field
// \"lang\"", "not valid JSON at byte 12: invalid character 'x' …".
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		where := "the body"
		if te.Field != "" {
			where = "field " + te.Field
		}
		return fmt.Sprintf("%s: want %s, got %s", where, jsonWant(te.Type), jsonGot(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too soon: send one whole JSON value"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonWant names the JSON a Go type takes.
func jsonWant(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON type"
}

// jsonGot names the JSON value of a json.UnmarshalTypeError ("string",
// "number", "number 1.5", "bool", "array", "object").
func jsonGot(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "bool":
		return "a boolean (true or false)"
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return "the number " + strings.TrimPrefix(v, "number ")
	}
	return v
}

// runFields are the keys of a run request (runRequest).
const runFields = "agent, action, params, debug, version, language, job_id, storage_id"

// validLanguage reports whether tag looks like a BCP 47 language tag: a
// language of 2 or 3 letters, then subtags of 1 to 8 letters or digits
// (script, region, variants), separated by '-': en, ko, pt-BR, zh-Hant-TW,
// es-419. At most 35 characters.
func validLanguage(tag string) bool {
	if len(tag) > 35 {
		return false
	}
	for i, sub := range strings.Split(tag, "-") {
		n := len(sub)
		if i == 0 && (n < 2 || n > 3) || n < 1 || n > 8 {
			return false
		}
		for _, c := range sub {
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// apiError is an error answer: the status and, for the v2 envelope, a code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

// notFoundError is a 404 saying what was looked for, by what ID or code,
// and where to find the right one. It matches store.ErrNotFound.
type notFoundError struct{ message string }

func (e *notFoundError) Error() string { return e.message }
func (e *notFoundError) Unwrap() error { return store.ErrNotFound }

// jobNotFound is the 404 of a job ID that names no job.
func jobNotFound(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return &notFoundError{fmt.Sprintf("no job %q: job IDs are UUIDs (GET /jobs/ lists the jobs)", id)}
	}
	return &notFoundError{fmt.Sprintf("no job %s (GET /jobs/ lists the jobs)", id)}
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, v2 bool, err error) {
	var ae *apiError
	var ve *validationError
	var nf *notFoundError
	switch {
	case errors.As(err, &ve):
		if v2 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "VALIDATION_ERROR", "message": ve.message, "details": ve.details}, "meta": map[string]string{"request_id": uuid.NewString()}})
			return
		}
		fields := map[string][]string{}
		for _, d := range ve.details {
			fields[d["field"]] = append(fields[d["field"]], d["message"])
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"detail": ve.message, "params": fields})
		return
	case errors.As(err, &ae):
	case errors.As(err, &nf):
		ae = &apiError{http.StatusNotFound, "NOT_FOUND", nf.message}
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Token realm="synapse"`)
		ae = &apiError{http.StatusUnauthorized, "UNAUTHENTICATED", err.Error()}
	case errors.Is(err, ErrForbidden):
		ae = &apiError{http.StatusForbidden, "FORBIDDEN", err.Error()}
	case errors.Is(err, store.ErrNotFound):
		ae = &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("not found: %s %s names nothing that exists", r.Method, r.URL.Path)}
	case errors.Is(err, store.ErrTransition):
		ae = &apiError{http.StatusBadRequest, "INVALID_TRANSITION", transitionText(err)}
	default:
		ae = &apiError{http.StatusInternalServerError, "INTERNAL", "internal error"}
	}
	if v2 {
		details := []map[string]string{}
		if field := errorField(ae.message); field != "" {
			details = append(details, map[string]string{"field": field, "message": strings.TrimPrefix(ae.message, field+": ")})
		}
		writeJSON(w, ae.status, map[string]any{"error": map[string]any{"code": ae.code, "message": ae.message, "details": details}, "meta": map[string]string{"request_id": uuid.NewString()}})
		return
	}
	writeJSON(w, ae.status, map[string]string{"detail": ae.message})
}

// errorField is the field an error message names first ("per_page: want
// …" names per_page), or "": the v2 envelope's details[].field.
func errorField(message string) string {
	field, _, ok := strings.Cut(message, ": ")
	if !ok || field == "" {
		return ""
	}
	for _, c := range field {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '[' || c == ']') {
			return ""
		}
	}
	return field
}

// transitionText says why a job change was refused (a store.ErrTransition)
// in the API's terms: a change to a job that has ended says so and what
// may still be sent.
func transitionText(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, store.ErrTransition.Error()+": the job is "); ok {
		return fmt.Sprintf("the job has ended (%s): it takes no more progress_record, metrics_record, result or meta; only its final status again (a no-op) and console_logs may still be sent", rest)
	}
	if i := strings.Index(msg, store.ErrTransition.Error()); i >= 0 {
		msg = msg[i:]
	}
	return "status: " + msg + " (a job goes PENDING → RUNNING → STOPPED, SUCCEEDED or FAILED)"
}

// admin wraps a handler that needs an admin token.
func (a *API) admin(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v2 := len(r.URL.Path) > 4 && r.URL.Path[:4] == "/v2/"
		if _, err := Authenticate(r.Context(), a.Store, r, Scope{}); err != nil {
			a.fail(w, r, v2, err)
			return
		}
		if err := h(w, r); err != nil {
			a.fail(w, r, v2, err)
		}
	}
}

// writeJSON answers status with v as JSON. v is encoded before anything is
// written: if it cannot be (a stored value that is not JSON), the answer
// is a logged 500 with a JSON error body, never a 200 with an empty or cut
// body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("synapse server: encode the answer", "error", err)
		status = http.StatusInternalServerError
		b = []byte(`{"detail":"internal error: the answer could not be encoded as JSON (see the server's log)"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// page is the v1 (DRF) list form.
type page struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  any     `json:"results"`
}

// Prober is a Runner whose agent may be out of reach (*RayAgent): Probe
// says whether it answers (nil) or why not, quickly (see RayAgent.Probe).
type Prober interface {
	Probe(ctx context.Context) error
}

// agentStatus is an agent with its status: "connected", or "disconnected"
// with Reason when its runner is a Prober that does not answer.
type agentStatus struct {
	Agent
	Status string `json:"status"`
	Reason string `json:"status_reason,omitempty"`
}

// agentStatuses probes the agents at once, each at most probeTimeout, for
// GET /agents/ and the dashboard's agents page.
func (a *API) agentStatuses(ctx context.Context) []agentStatus {
	out := make([]agentStatus, len(a.Agents))
	var wg sync.WaitGroup
	for i, ag := range a.Agents {
		out[i] = agentStatus{Agent: ag, Status: "connected"}
		p, ok := a.Runners[ag.Name].(Prober)
		if !ok {
			continue
		}
		wg.Go(func() {
			if err := p.Probe(ctx); err != nil {
				out[i].Status, out[i].Reason = "disconnected", err.Error()
			}
		})
	}
	wg.Wait()
	return out
}

// listAgents is GET /agents/: each agent with its status (agentStatuses).
func (a *API) listAgents(w http.ResponseWriter, r *http.Request) error {
	out := a.agentStatuses(r.Context())
	writeJSON(w, http.StatusOK, page{Count: len(out), Results: out})
	return nil
}

// jobJSON is a job as the backend's job detail shows it.
func (a *API) jobJSON(r *http.Request, j store.Job) (map[string]any, error) {
	rel, err := a.Store.GetRelease(r.Context(), j.ReleaseID)
	if err != nil {
		return nil, err
	}
	agent := map[string]any{"name": j.Agent}
	if id, ok := a.AgentIDs[j.Agent]; ok {
		agent["id"] = id
	}
	for _, ag := range a.Agents {
		if ag.Name == j.Agent {
			agent["id"] = ag.ID
		}
	}
	plugin, err := a.Store.GetPluginByID(r.Context(), rel.PluginID)
	if err != nil {
		return nil, err
	}
	stamp := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return t.Format(time.RFC3339Nano)
	}
	meta := j.Meta
	if j.Status == store.StatusPending {
		if pos := a.jobs.position(j.ID, j.Agent); pos > 0 {
			var m map[string]any
			if json.Unmarshal(meta, &m) != nil || m == nil {
				m = map[string]any{}
			}
			m["queue"] = map[string]any{"position": pos, "reason": "slots_full"}
			meta, _ = json.Marshal(m)
		}
	}
	return map[string]any{
		"id": j.ID, "status": j.Status, "action": j.Action, "params": j.Params,
		"progress_record": j.ProgressRecord, "metrics_record": j.MetricsRecord, "result": j.Result, "meta": meta,
		"plugin_release": map[string]any{"id": rel.ID, "plugin": plugin.Code, "version": rel.Version},
		"agent":          agent,
		"created":        j.CreatedAt.Format(time.RFC3339Nano), "started": stamp(j.StartedAt), "completed": stamp(j.CompletedAt),
	}, nil
}

func (a *API) getJob(r *http.Request) (map[string]any, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return nil, jobNotFound(id)
	}
	j, err := a.Store.GetJob(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jobNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return a.jobJSON(r, j)
}

func (a *API) getJobV1(w http.ResponseWriter, r *http.Request) error {
	j, err := a.getJob(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (a *API) getJobV2(w http.ResponseWriter, r *http.Request) error {
	j, err := a.getJob(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": j, "meta": map[string]string{"request_id": uuid.NewString()}})
	return nil
}

// listJobs reads a page of jobs: size from sizeParam (default 20, at most
// 1000), the cursor from cursor.
func (a *API) listJobs(r *http.Request, sizeParam string) ([]map[string]any, string, error) {
	q := r.URL.Query()
	size := 20
	if v := q.Get(sizeParam); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, "", &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("%s: want a number from 1 to 1000 (got %q)", sizeParam, v)}
		}
		size = n
	}
	status := q.Get("status")
	if status != "" && !slices.Contains(store.Statuses, status) {
		return nil, "", &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("status: %q is not a job status (want one of %s)", status, strings.Join(store.Statuses, ", "))}
	}
	jobs, next, err := a.Store.ListJobs(r.Context(), store.JobFilter{Status: status, After: q.Get("cursor"), Limit: size})
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", &apiError{http.StatusBadRequest, "INVALID_CURSOR", fmt.Sprintf("cursor: %q is not a cursor this server gave (a cursor is the next or next_cursor of a page): start without it", q.Get("cursor"))}
	}
	if err != nil {
		return nil, "", err
	}
	out := make([]map[string]any, 0, len(jobs))
	for _, j := range jobs {
		m, err := a.jobJSON(r, j)
		if err != nil {
			return nil, "", err
		}
		out = append(out, m)
	}
	return out, next, nil
}

// listJobsV1 is GET /jobs/?status=&page_size=&cursor=: a DRF page whose
// count is the number of jobs the status selects (every page's the same),
// next the URL of the next page.
func (a *API) listJobsV1(w http.ResponseWriter, r *http.Request) error {
	jobs, next, err := a.listJobs(r, "page_size")
	if err != nil {
		return err
	}
	total, err := a.Store.CountJobs(r.Context(), store.JobFilter{Status: r.URL.Query().Get("status")})
	if err != nil {
		return err
	}
	p := page{Count: total, Results: jobs}
	if next != "" {
		u := *r.URL
		q := u.Query()
		q.Set("cursor", next)
		u.RawQuery = q.Encode()
		s := (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String()
		p.Next = &s
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) listJobsV2(w http.ResponseWriter, r *http.Request) error {
	jobs, next, err := a.listJobs(r, "per_page")
	if err != nil {
		return err
	}
	meta := map[string]any{"request_id": uuid.NewString(), "next_cursor": nil}
	if next != "" {
		meta["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": jobs, "meta": meta})
	return nil
}

// consoleText reads the console lines of the job of r's path, all of
// them (at most 1,000,000).
func (a *API) consoleText(r *http.Request) ([]string, error) {
	if _, err := a.getJob(r); err != nil {
		return nil, err
	}
	lines, err := a.Store.Console(r.Context(), r.PathValue("id"), 0, 1_000_000)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Line
	}
	return out, nil
}

// consoleV1 is GET /jobs/{id}/console_logs/: a JSON list of the lines.
func (a *API) consoleV1(w http.ResponseWriter, r *http.Request) error {
	out, err := a.consoleText(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// consoleV2 is GET /v2/jobs/{id}/console_logs/: the backend's v2 form,
// {data: {logs: [line]}, meta: {request_id}}.
func (a *API) consoleV2(w http.ResponseWriter, r *http.Request) error {
	out, err := a.consoleText(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"logs": out}, "meta": map[string]string{"request_id": uuid.NewString()}})
	return nil
}

// patchJob is PATCH /jobs/{id}/ (and /v2/): the worker's reports, with an
// admin token or the job's own.
func (a *API) patchJob(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		tok, err := Authenticate(r.Context(), a.Store, r, Scope{JobID: id})
		if err != nil {
			a.fail(w, r, v2, err)
			return
		}
		var body struct {
			Status         string          `json:"status"`
			ProgressRecord json.RawMessage `json:"progress_record"`
			MetricsRecord  json.RawMessage `json:"metrics_record"`
			ConsoleLogs    json.RawMessage `json:"console_logs"`
			Result         json.RawMessage `json:"result"`
			Meta           json.RawMessage `json:"meta"`
		}
		if err := decodeBody(w, r, &body, true, "status, progress_record, metrics_record, console_logs, result, meta"); err != nil {
			a.fail(w, r, v2, err)
			return
		}
		switch body.Status {
		case "", store.StatusPending, store.StatusRunning, store.StatusStopped, store.StatusSucceeded, store.StatusFailed:
		default:
			a.fail(w, r, v2, &apiError{http.StatusBadRequest, "INVALID_STATUS", fmt.Sprintf("status: %q is not one of PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED", body.Status)})
			return
		}
		for _, f := range []struct {
			name string
			raw  json.RawMessage
		}{{"progress_record", body.ProgressRecord}, {"metrics_record", body.MetricsRecord}, {"meta", body.Meta}} {
			if len(f.raw) > 0 && string(f.raw) != "null" && !isObject(f.raw) {
				a.fail(w, r, v2, &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("%s: want a JSON object, got %s", f.name, jsonKind(f.raw))})
				return
			}
		}
		null := func(b json.RawMessage) json.RawMessage { // JSON null leaves the field as it is
			if string(b) == "null" {
				return nil
			}
			return b
		}
		u := store.JobUpdate{Status: body.Status, ProgressRecord: null(body.ProgressRecord),
			MetricsRecord: null(body.MetricsRecord), Result: null(body.Result), Meta: null(body.Meta)}
		// The run's own final report (job token): while an agent runs the
		// job, it is recorded and the job ends when the agent sees the run
		// end (store.ReportJob); after a stop, it changes nothing.
		report := tok.Kind == store.TokenJob && store.Terminal(body.Status)
		held := report && a.jobs.holds(id)
		if report && !held {
			if j, err := a.Store.GetJob(r.Context(), id); err == nil && j.Status == store.StatusStopped {
				a.answerJob(w, r, v2)
				return
			}
		}
		// An access token's end of a job an agent runs ends the run too:
		// the status is recorded first, then the agent stops the run (its
		// Stop), so no job ends while its process runs on.
		endRun := tok.Kind != store.TokenJob && store.Terminal(body.Status) && a.jobs.holds(id)
		update := a.Store.UpdateJob
		if held {
			update = a.Store.ReportJob
		}
		j, err := update(r.Context(), id, u)
		if errors.Is(err, store.ErrNotFound) {
			a.fail(w, r, v2, jobNotFound(id))
			return
		} else if err != nil {
			a.fail(w, r, v2, err)
			return
		}
		if runner := a.Runners[j.Agent]; endRun && runner != nil {
			if err := runner.Stop(r.Context(), id); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.fail(w, r, v2, err)
				return
			}
		}
		if report && j.Status == store.StatusStopped {
			a.answerJob(w, r, v2) // stopped: the report's console lines are not kept either
			return
		}
		if lines, err := consoleLines(body.ConsoleLogs); err != nil {
			a.fail(w, r, v2, err)
			return
		} else if len(lines) > 0 {
			if _, err := a.Store.AppendConsole(r.Context(), id, lines); err != nil {
				a.fail(w, r, v2, err)
				return
			}
		}
		if store.Terminal(j.Status) {
			_ = a.Store.RevokeToken(r.Context(), id) // the job's own tokens end with it
		}
		a.answerJob(w, r, v2)
	}
}

// isObject reports whether raw, valid JSON, is an object.
func isObject(raw json.RawMessage) bool {
	return jsonKind(raw) == "an object"
}

// jsonKind names the kind of raw, valid JSON: "an object", "a list", "a
// string", "a number", "true or false" or "null".
func jsonKind(raw json.RawMessage) string {
	switch t := bytes.TrimLeft(raw, " \t\r\n"); {
	case len(t) == 0:
		return "nothing"
	case t[0] == '{':
		return "an object"
	case t[0] == '[':
		return "a list"
	case t[0] == '"':
		return "a string"
	case t[0] == 't' || t[0] == 'f':
		return "true or false"
	case t[0] == 'n':
		return "null"
	}
	return "a number"
}

// answerJob answers with the job of the request's path, 200.
func (a *API) answerJob(w http.ResponseWriter, r *http.Request, v2 bool) {
	j, err := a.getJob(r)
	if err != nil {
		a.fail(w, r, v2, err)
		return
	}
	if v2 {
		writeJSON(w, http.StatusOK, map[string]any{"data": j, "meta": map[string]string{"request_id": uuid.NewString()}})
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// consoleLines reads PATCH console_logs: a string (split into lines) or a
// list of strings.
func consoleLines(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return strings.Split(strings.TrimSuffix(text, "\n"), "\n"), nil
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err != nil {
		return nil, &apiError{http.StatusBadRequest, "INVALID_BODY", "console_logs: want a string or a list of strings"}
	}
	return lines, nil
}

// maxLogBatch is the most entries one POST /logs/ takes (the backend's
// bulk limit).
const maxLogBatch = 1000

// logLevels are the levels a log entry may have (the Python SDK's
// LogLevel).
var logLevels = []string{"debug", "info", "success", "warning", "danger", "error", "critical"}

// logEntryJSON is one entry of POST /logs/.
type logEntryJSON struct {
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	Datetime string          `json:"datetime"`
	Job      string          `json:"job"`
	Level    string          `json:"level"`
	Step     string          `json:"step"`
	File     string          `json:"file"`
}

// logEntryFields are the keys of a log entry.
const logEntryFields = "event, data, datetime, job, level, step, file"

// check says what is wrong with e, a field at a time ("level: want one
// of …"), or "" when nothing is.
func (e logEntryJSON) check() string {
	switch {
	case e.Event == "":
		return "event: required (a name such as message or metric)"
	case e.Job == "":
		return "job: required (the job's ID, a UUID)"
	}
	if _, err := uuid.Parse(e.Job); err != nil {
		return fmt.Sprintf("job: %q is not a job ID (a UUID)", e.Job)
	}
	if e.Datetime != "" {
		if _, err := time.Parse(time.RFC3339Nano, e.Datetime); err != nil {
			return fmt.Sprintf("datetime: %q is not an RFC 3339 time with its offset (such as 2026-06-11T03:04:05.123456+00:00)", e.Datetime)
		}
	}
	if e.Level != "" && !slices.Contains(logLevels, e.Level) {
		return fmt.Sprintf("level: want one of %s (got %q)", strings.Join(logLevels, ", "), e.Level)
	}
	if e.File != "" {
		if _, _, err := synapse.DecodeDataURI(e.File); err != nil {
			return fmt.Sprintf("file: want a base64 data URI, data:TYPE;base64,DATA (got %.40q)", e.File)
		}
	}
	return ""
}

// postLogs is POST /logs/: one entry or a list, all stored or none. A job
// token may send entries of its own job only. An entry's datetime, when
// given, is RFC 3339 with its offset; its level one of logLevels; its file
// a base64 data URI. Errors name the entry (entries[3].level: …).
func (a *API) postLogs(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(w, r, maxBody)
	if err != nil {
		a.fail(w, r, false, err)
		return
	}
	var items []json.RawMessage
	name := func(int) string { return "" }
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		if err := decodeJSON(raw, &items, false, ""); err != nil {
			a.fail(w, r, false, &apiError{http.StatusBadRequest, "INVALID_BODY", err.Error() + ": want a log entry {" + logEntryFields + "} or a list of them"})
			return
		}
		name = func(i int) string { return fmt.Sprintf("entries[%d].", i) }
	} else {
		items = []json.RawMessage{raw}
	}
	if len(items) == 0 || len(items) > maxLogBatch {
		a.fail(w, r, false, &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("want 1 to %d entries (got %d)", maxLogBatch, len(items))})
		return
	}
	list := make([]logEntryJSON, len(items))
	entries := make([]store.LogEntry, len(items))
	for i, item := range items {
		e := &list[i]
		if err := decodeJSON(item, e, false, logEntryFields); err != nil {
			msg := strings.TrimPrefix(err.Error(), "read body: ")
			if n := name(i); strings.HasPrefix(msg, "field ") {
				msg = n + strings.TrimPrefix(msg, "field ")
			} else if n != "" {
				msg = strings.TrimSuffix(n, ".") + ": " + msg
			}
			a.fail(w, r, false, &apiError{http.StatusBadRequest, "INVALID_BODY", msg})
			return
		}
		if msg := e.check(); msg != "" {
			a.fail(w, r, false, &apiError{http.StatusBadRequest, "INVALID_BODY", name(i) + msg})
			return
		}
		if i > 0 && e.Job != list[0].Job {
			// A job token covers one job; an admin sends one job's entries too.
			a.fail(w, r, false, &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("%sjob: %s is not entries[0]'s job %s: all entries of one request must be of one job", name(i), e.Job, list[0].Job)})
			return
		}
		entries[i] = store.LogEntry{JobID: e.Job, Event: e.Event, Data: e.Data, Datetime: e.Datetime, Level: e.Level, Step: e.Step, File: e.File}
	}
	if _, err := Authenticate(r.Context(), a.Store, r, Scope{JobID: list[0].Job}); err != nil {
		a.fail(w, r, false, err)
		return
	}
	if err := a.Store.AddLogs(r.Context(), entries); errors.Is(err, store.ErrNotFound) {
		a.fail(w, r, false, &notFoundError{fmt.Sprintf("%sjob: no job %s (GET /jobs/ lists the jobs)", name(0), list[0].Job)})
		return
	} else if err != nil {
		a.fail(w, r, false, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int{"created": len(entries)})
}

// listLogsV2 is GET /v2/job-logs/?job=ID&cursor=&per_page=.
func (a *API) listLogsV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	job := q.Get("job")
	if _, err := uuid.Parse(job); err != nil {
		return &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("job: want a job ID, a UUID (got %q)", job)}
	}
	size := 200
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("per_page: want a number from 1 to 1000 (got %q)", v)}
		}
		size = n
	}
	var after int64
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return &apiError{http.StatusBadRequest, "INVALID_CURSOR", fmt.Sprintf("cursor: %q is not a cursor this server gave (a cursor is the meta.next_cursor of a page): start without it", v)}
		}
		after = n
	}
	entries, err := a.Store.Logs(r.Context(), job, after, size)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(entries))
	for i, e := range entries {
		out[i] = map[string]any{"id": e.ID, "job": e.JobID, "event": e.Event, "data": e.Data, "datetime": e.Datetime,
			"level": e.Level, "step": e.Step, "file": e.File}
	}
	meta := map[string]any{"request_id": uuid.NewString(), "next_cursor": nil}
	if len(entries) == size {
		meta["next_cursor"] = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "meta": meta})
	return nil
}
