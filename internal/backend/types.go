package backend

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Job statuses as the backend sends them. Job.Status is upper-cased when
// decoded, so it compares with these directly.
const (
	StatusPending   = "PENDING"   // created, waiting for its agent (meta.queue while waiting for a slot)
	StatusRunning   = "RUNNING"   // its action runs
	StatusStopped   = "STOPPED"   // stopped (POST /v2/jobs/{id}/stop/)
	StatusSucceeded = "SUCCEEDED" // its action returned; the result is in result
	StatusFailed    = "FAILED"    // its action failed, or it could not run; result {"error"}, meta.error
)

// Agent is a place jobs run, as GET /agents/ lists them:
// results[{id, name, url, status ("connected" when up), kind, token, …}].
// synapse server's agents have a kind ("process" or "ray") and no token.
type Agent struct {
	ID     int    `json:"id"`               // what RunRequest.Agent takes
	Name   string `json:"name"`             // unique on the backend
	URL    string `json:"url,omitempty"`    // the agent's address (synapse server: its own URL, or the Ray dashboard's)
	Status string `json:"status,omitempty"` // "connected" when up (see Connected)
	Kind   string `json:"kind,omitempty"`   // synapse server: "process" or "ray"
	// Token is the agent's own token when the backend shows it (the Python
	// CLI keeps it in config.json's agent); a secret: never print it.
	Token string `json:"token,omitempty"`
}

// Connected reports whether the backend says the agent is up.
func (a Agent) Connected() bool { return strings.EqualFold(a.Status, "connected") }

// Plugin is a plugin as GET /plugins/{id or code}/ and POST /plugins/
// give it: {id, code, name, category, description, created}. As input to
// CreatePlugin only Code, Name, Category and Description count.
type Plugin struct {
	ID          int64     `json:"id,omitempty"`          // the backend's numeric ID
	Code        string    `json:"code"`                  // config.yaml's code: what Run and PublishRelease name
	Name        string    `json:"name,omitempty"`        // a display name
	Category    string    `json:"category,omitempty"`    // such as "neural_net"
	Description string    `json:"description,omitempty"` // free text
	Created     time.Time `json:"created,omitzero"`      // zero when the backend gives none
}

// UnmarshalJSON reads a plugin, taking a created time it cannot parse as
// none.
func (p *Plugin) UnmarshalJSON(b []byte) error {
	type plain Plugin
	var w struct {
		plain
		Created string `json:"created"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Plugin(w.plain)
	p.Created = timeOf(w.Created)
	return nil
}

// Release is a plugin release as POST /plugin_releases/ answers it and
// GET /plugin_releases/{id or code@version}/ gives it: {id, plugin,
// version, config, debug, checksum (SHA-256 of the zip), size, created}.
// Plugin is the plugin's code (a backend that answers with the plugin's
// numeric ID, or the plugin object, gives its ID in decimal, or its code).
type Release struct {
	ID       int64           `json:"id"`                 // the backend's numeric ID
	Plugin   string          `json:"plugin"`             // the plugin's code (see above)
	Version  string          `json:"version"`            // such as "1.0.0"
	Config   json.RawMessage `json:"config,omitempty"`   // config.yaml as JSON, as published
	Debug    bool            `json:"debug"`              // a debug release (it may be replaced)
	Checksum string          `json:"checksum,omitempty"` // the zip's SHA-256, hex; "" without a zip
	Size     int64           `json:"size,omitempty"`     // the zip's size in bytes
	Created  time.Time       `json:"created,omitzero"`   // zero when the backend gives none
}

// UnmarshalJSON reads a release, taking plugin as a code, an ID or an
// object with a code.
func (r *Release) UnmarshalJSON(b []byte) error {
	type plain Release
	var w struct {
		plain
		Plugin  json.RawMessage `json:"plugin"`
		Created string          `json:"created"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Release(w.plain)
	r.Plugin = refOf(w.Plugin)
	r.Created = timeOf(w.Created)
	return nil
}

// ReleaseUpload is what PublishRelease sends.
type ReleaseUpload struct {
	// Plugin is the plugin's code; the backend creates the plugin from
	// Config on its first release.
	Plugin string
	// Version is the release's version, such as "1.0.0".
	Version string
	// Config is config.yaml as a JSON object.
	Config json.RawMessage
	// Debug replaces a release of the same version instead of being
	// refused (ErrVersionExists), and marks the release as a debug one.
	Debug bool
	// Zip is the release package (a job-mode package: the plugin binary
	// and the plugin's files), sent as the file plugin.zip; nil for none.
	Zip []byte
}

// RunRequest is the body of POST /plugins/{code}/run/:
// {"agent", "action", "params", "debug", "version"?, "language"?}.
type RunRequest struct {
	// Agent is the agent's ID (GET /agents/); 0 sends none, which synapse
	// server takes when it has one agent.
	Agent int
	// Action is the action's name in the release's config.
	Action string
	// Params are the action's params as a JSON object; nil sends {}.
	Params json.RawMessage
	// Debug lets the newest debug release run when Version is "" (the
	// Python CLI sends true by default).
	Debug bool
	// Version is the release to run; "" is the newest.
	Version string
	// Language is the run's language tag (en, ko, …); "" sends none.
	Language string
}

// JobsFilter selects the jobs Jobs lists (GET /v2/jobs/).
type JobsFilter struct {
	// Status keeps jobs of this status (PENDING, RUNNING, …); "" all.
	Status string
	// Action keeps jobs of this action; "" all. (synapse server ignores it.)
	Action string
	// PerPage is the page size asked for (per_page); 0 is the backend's.
	PerPage int
	// Limit is the most jobs returned, newest first; 0 is all.
	Limit int
	// Cursor starts the listing after the page it points to (a previous
	// next_cursor); "" starts from the newest job.
	Cursor string
}

// Job is a job, a run of a plugin action, as GET /jobs/{id}/ gives it, as
// GET /v2/jobs/ and GET /v2/jobs/{id}/ give it in their data, and as
// POST /plugins/{code}/run/ and POST /v2/jobs/{id}/stop/ answer:
//
//	{id (UUID), status, action, params, progress_record, metrics_record,
//	 result, meta, plugin_release {id, plugin, version}, agent {id, name},
//	 created, started, completed (or finished)}
//
// progress_record is {"record": {"steps": {…}}, "current_progress":
// {"overall", …}} and metrics_record {"record": {"steps": {STEP: {KEY:
// VALUE}}}}; both, params and result are kept as JSON.
type Job struct {
	ID             string          `json:"id"`                        // a UUID
	Status         string          `json:"status"`                    // one of the Status constants
	Action         string          `json:"action"`                    // the action (its entrypoint) that runs
	Params         json.RawMessage `json:"params,omitempty"`          // the params, as checked
	ProgressRecord json.RawMessage `json:"progress_record,omitempty"` // nil until the job reports progress
	MetricsRecord  json.RawMessage `json:"metrics_record,omitempty"`  // nil until the job reports metrics
	Result         json.RawMessage `json:"result,omitempty"`          // an object once ended: the result (non-objects wrapped {"result": v}), or {"error"}
	Meta           JobMeta         `json:"meta"`                      // queue, error, language
	Release        JobRelease      `json:"plugin_release"`            // the release that runs
	Agent          JobAgent        `json:"agent"`                     // the agent it runs on
	Created        time.Time       `json:"created,omitzero"`          // when run/ created it
	Started        *time.Time      `json:"started"`                   // nil until it runs
	Completed      *time.Time      `json:"completed"`                 // nil until it ends
}

// JobMeta is a job's meta: its place in its agent's queue while it waits
// for a slot, the error of a job that failed or could not start, and the
// run's language. Other keys are not kept.
type JobMeta struct {
	Queue    *JobQueue `json:"queue,omitempty"`    // nil unless the job waits for a slot
	Error    *JobError `json:"error,omitempty"`    // nil unless it failed with a typed error
	Language string    `json:"language,omitempty"` // RunRequest.Language
}

// JobQueue is meta.queue {position (1 is next), reason ("slots_full")}.
type JobQueue struct {
	Position int    `json:"position"` // 1 is next
	Reason   string `json:"reason"`   // such as "slots_full"
}

// JobError is meta.error {error_type, message}.
type JobError struct {
	ErrorType string `json:"error_type"` // such as "server_restart", or Ray's RUNTIME_ENV_SETUP_FAILURE
	Message   string `json:"message"`    // what happened
}

// JobRelease is a job's plugin_release {id, plugin (code), version}.
type JobRelease struct {
	ID      int64  `json:"id"`      // the release's ID
	Plugin  string `json:"plugin"`  // the plugin's code ("" when the backend gives only the release's ID)
	Version string `json:"version"` // the release's version
}

// JobAgent is a job's agent {id, name}; a backend that gives only the
// agent's ID leaves Name "".
type JobAgent struct {
	ID   int    `json:"id"`             // the agent's ID
	Name string `json:"name,omitempty"` // its name, when the backend gives it
}

// Ended reports whether the job has ended: STOPPED, SUCCEEDED or FAILED.
func (j *Job) Ended() bool {
	switch j.Status {
	case StatusStopped, StatusSucceeded, StatusFailed:
		return true
	}
	return false
}

// UnmarshalJSON reads a job as backends give it: the status in any case,
// completed or finished, agent and plugin_release as objects or IDs, times
// it cannot parse as none.
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job
	var w struct {
		plain
		Meta      json.RawMessage `json:"meta"`
		Release   json.RawMessage `json:"plugin_release"`
		Agent     json.RawMessage `json:"agent"`
		Created   string          `json:"created"`
		Started   *string         `json:"started"`
		Completed *string         `json:"completed"`
		Finished  *string         `json:"finished"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*j = Job(w.plain)
	j.Status = strings.ToUpper(j.Status)
	j.Params, j.ProgressRecord, j.MetricsRecord, j.Result = nonNull(j.Params), nonNull(j.ProgressRecord), nonNull(j.MetricsRecord), nonNull(j.Result)
	if len(nonNull(w.Meta)) > 0 {
		_ = json.Unmarshal(w.Meta, &j.Meta) // a meta of another shape is no meta
	}
	switch raw := nonNull(w.Release); {
	case len(raw) > 0 && raw[0] == '{':
		var rel struct {
			ID      int64           `json:"id"`
			Plugin  json.RawMessage `json:"plugin"`
			Version string          `json:"version"`
		}
		_ = json.Unmarshal(raw, &rel)
		j.Release = JobRelease{ID: rel.ID, Plugin: refOf(rel.Plugin), Version: rel.Version}
	case len(raw) > 0:
		j.Release.ID, _ = strconv.ParseInt(refOf(raw), 10, 64)
	}
	switch raw := nonNull(w.Agent); {
	case len(raw) > 0 && raw[0] == '{':
		_ = json.Unmarshal(raw, &j.Agent)
	case len(raw) > 0:
		j.Agent.ID, _ = strconv.Atoi(refOf(raw))
	}
	j.Created = timeOf(w.Created)
	j.Started = timePtr(w.Started)
	if j.Completed = timePtr(w.Completed); j.Completed == nil {
		j.Completed = timePtr(w.Finished)
	}
	return nil
}

// Line is one console log line of a job, as TailConsole passes it.
type Line struct {
	// Seq is the line's number in the job's console log, from 1: the
	// stream's id: when the backend sends one, else the line's place in the
	// stream.
	Seq int64
	// Text is the line without its newline. A backend that sends several
	// lines in one frame gives them in one Text, joined by newlines.
	Text string
}

// nonNull is raw, or nil for JSON null.
func nonNull(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

// refOf reads a reference to another object: a string, a number (its
// decimal text) or an object with a code (else its id).
func refOf(raw json.RawMessage) string {
	raw = nonNull(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var obj struct {
		Code string      `json:"code"`
		ID   json.Number `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		if obj.Code != "" {
			return obj.Code
		}
		return obj.ID.String()
	}
	return ""
}

// timeOf parses an RFC 3339 time; anything else is the zero time.
func timeOf(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func timePtr(s *string) *time.Time {
	if s == nil {
		return nil
	}
	t := timeOf(*s)
	if t.IsZero() {
		return nil
	}
	return &t
}
