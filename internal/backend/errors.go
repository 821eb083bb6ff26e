package backend

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Sentinels an *HTTPError matches with errors.Is, by its status.
var (
	// ErrUnauthorized is a 401: no token, or an invalid, expired or revoked
	// one.
	ErrUnauthorized = errors.New("unauthorized: the access token is invalid or expired: run `synapse login`")
	// ErrForbidden is a 403: the token may not do this.
	ErrForbidden = errors.New("forbidden: the access token may not do this")
	// ErrNotFound is a 404: no such plugin, release, job or route.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a 409, such as stopping a job that has already ended.
	ErrConflict = errors.New("conflict")
	// ErrVersionExists is a publish refused because the plugin already has
	// a release of that version (the backend says "already exists",
	// "version_exists" or "이미 존재", as the Python CLI checks): bump the
	// version, or publish with Debug to replace it.
	ErrVersionExists = errors.New("the release version already exists")
	// ErrNoToken is returned by New for an empty access token.
	ErrNoToken = errors.New("no access token: run `synapse login`")
)

// FieldError is one field of a request the backend refused: a v1
// validation answer's {"params": {FIELD: [message]}} or DRF's
// {FIELD: [message]}, or a v2 error's details [{field, message}].
type FieldError struct {
	Field   string `json:"field"`   // the field's name ("" for an error of the whole request)
	Message string `json:"message"` // what is wrong with it
}

// HTTPError is an error answer (a status of 400 or more) from the backend.
// Its text is "OP: DETAIL (HTTP STATUS, METHOD PATH[, CODE][, request ID
// ID])", then a hint for 401, 403 and 5xx, then each refused field the
// detail does not name on a line of its own. It matches ErrUnauthorized,
// ErrForbidden, ErrNotFound and ErrConflict by status, and
// ErrVersionExists for a publish of a version that exists.
type HTTPError struct {
	// Op is what the client was doing, such as "get job ID".
	Op string
	// Method and Path are the request's, the path without the host's path
	// prefix and without the query.
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Code is the v2 error code (error.code, such as INVALID_STATE), or
	// the v1 answer's "code" when it has one; "" otherwise.
	Code string
	// Detail is the backend's message: v1 "detail", v2 error.message, DRF
	// field errors joined, or a short text body; "" for an HTML page or an
	// empty body. The access token is masked in it (see Mask).
	Detail string
	// RequestID is the v2 answer's meta.request_id, else an X-Request-ID
	// header, else "".
	RequestID string
	// Fields are the refused fields, when the backend named them.
	Fields []FieldError
	// TokenFrom names where the token sent came from (WithSources), such
	// as "-t", "SYNAPSE_ACCESS_TOKEN" or a config file's path; "" when not
	// told. A 401's text then names it and says how to fix that source.
	TokenFrom string
	// Token is the token sent, masked (Mask); set with TokenFrom.
	Token string

	html, notJSON bool // the body was an HTML page, or not JSON at all
}

// Error implements error.
func (e *HTTPError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Status == http.StatusUnauthorized && e.TokenFrom != "" {
		fmt.Fprintf(&b, "the token %s from %s was refused (HTTP 401, %s %s): %s", e.Token, e.TokenFrom, e.Method, e.Path, tokenFix(e.TokenFrom))
		return b.String()
	}
	detail := e.Detail
	if detail == "" {
		detail = strings.ToLower(http.StatusText(e.Status))
	}
	if detail == "" {
		detail = "error answer"
	}
	b.WriteString(detail)
	fmt.Fprintf(&b, " (HTTP %d, %s %s", e.Status, e.Method, e.Path)
	if e.Code != "" {
		b.WriteString(", " + e.Code)
	}
	if e.RequestID != "" {
		b.WriteString(", request ID " + e.RequestID)
	}
	b.WriteString(")")
	switch {
	case e.Status == http.StatusUnauthorized:
		b.WriteString(": the access token is invalid or expired: run `synapse login`")
	case e.Status == http.StatusForbidden:
		b.WriteString(": the access token may not do this (a job's own token, or a tenant's it is not of?)")
	case e.Status >= 500:
		b.WriteString(": the server failed; try again later")
		if e.RequestID != "" {
			b.WriteString(", and quote the request ID when reporting it")
		}
	}
	for _, f := range e.Fields {
		line := f.Message
		if f.Field != "" {
			line = f.Field + ": " + f.Message
		}
		if strings.Contains(detail, line) {
			continue // the detail says it already
		}
		b.WriteString("\n  ")
		if f.Field != "" {
			b.WriteString(f.Field + ": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// tokenFix says how to replace a refused token of a source.
func tokenFix(from string) string {
	switch {
	case from == "-t" || from == "--token":
		return "pass a valid token with -t"
	case strings.HasPrefix(from, "SYNAPSE_"):
		return "unset it or set a valid one"
	}
	return "run synapse login"
}

// Is matches the sentinel of e's status (ErrUnauthorized, ErrForbidden,
// ErrNotFound, ErrConflict), and ErrVersionExists for a refused publish
// whose answer says the version exists.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrVersionExists:
		if e.Status < 400 || e.Status >= 500 || !strings.HasPrefix(e.Path, "/plugin_releases/") {
			return false
		}
		if strings.EqualFold(e.Code, "VERSION_EXISTS") {
			return true
		}
		text := strings.ToLower(e.Detail)
		for _, f := range e.Fields {
			text += "\n" + strings.ToLower(f.Message)
		}
		return strings.Contains(text, "already exists") || strings.Contains(text, "version_exists") || strings.Contains(text, "이미 존재")
	}
	return false
}

// UnreachableError is a request that got no answer from the backend at
// Host: it could not connect, or the connection failed before an answer.
// A GET is retried a few times before it; a POST is only when nothing of
// it was sent, so the server cannot have acted on it (else
// *UncertainError).
type UnreachableError struct {
	// Op is what the client was doing, such as "list agents".
	Op string
	// Host is the backend's URL.
	Host string
	// HostFrom names where Host came from (WithSources); "" when not told.
	HostFrom string
	// Err is the cause, the access token masked in its text.
	Err error
}

// Error implements error.
func (e *UnreachableError) Error() string {
	from := "--host, SYNAPSE_HOST"
	if e.HostFrom != "" {
		from = "from " + e.HostFrom
	}
	return fmt.Sprintf("%s: cannot reach the synapse backend at %s: %v: check the host (%s) and that the server is running", e.Op, e.Host, e.Err, from)
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// UncertainError is a POST whose answer was lost after the request may
// have reached the server (the connection failed or the context ended
// once the request was being sent): it may have taken effect, a run may
// have started a job. Such a POST is never retried.
type UncertainError struct {
	// Op is what the client was doing, such as "run plugin CODE".
	Op string
	// Method and Path are the request's.
	Method, Path string
	// Check says what to look at before trying again, such as "`synapse
	// plugin job list`".
	Check string
	// Err is the cause, the access token masked in its text; a context's
	// error when it ended the request (errors.Is(err, context.Canceled)).
	Err error
}

// Error implements error.
func (e *UncertainError) Error() string {
	check := e.Check
	if check == "" {
		check = "`synapse plugin job list`"
	}
	return fmt.Sprintf("%s: the request (%s %s) was sent but its answer was lost: %v: it may have taken effect on the server, so it was not retried: check %s before trying again", e.Op, e.Method, e.Path, e.Err, check)
}

// Unwrap returns the cause.
func (e *UncertainError) Unwrap() error { return e.Err }

// NotBackendError is a host that answers, but not as a Synapse backend
// does: an HTML page or a body that is not JSON where the backend answers
// JSON, or a 404 that is not the backend's JSON error while GET /agents/
// (which every backend answers) is one too. Usually the URL is another
// service's (a Ray dashboard) or a page of the backend's (/ui/) rather than
// its base URL. It matches ErrNotBackend.
type NotBackendError struct {
	// Op is what the client was doing, such as "list agents".
	Op string
	// Host is the URL given; HostFrom where it came from ("" when not
	// told).
	Host, HostFrom string
	// Method and Path are the request whose answer showed it.
	Method, Path string
	// Status is that answer's HTTP status.
	Status int
	// HTML reports whether the answer was an HTML page.
	HTML bool
}

// ErrNotBackend is a host that does not answer like a Synapse backend
// (*NotBackendError).
var ErrNotBackend = errors.New("the host does not answer like a Synapse backend")

// Error implements error.
func (e *NotBackendError) Error() string {
	host := e.Host
	if e.HostFrom != "" {
		host += " (from " + e.HostFrom + ")"
	}
	gave := "an answer that is not JSON"
	switch {
	case e.HTML:
		gave = "an HTML page"
	case e.Status >= 400:
		gave = fmt.Sprintf("HTTP %d", e.Status)
	}
	fix := "give the Synapse server's base URL, such as http://HOST:PORT (is this another service's port?)"
	if u, err := url.Parse(e.Host); err == nil && u.Host != "" && strings.Trim(u.Path, "/") != "" {
		fix = "give the server's base URL, such as " + u.Scheme + "://" + u.Host
	}
	return fmt.Sprintf("%s: %s does not answer like a Synapse backend (%s %s gave %s): %s", e.Op, host, e.Method, e.Path, gave, fix)
}

// Is matches ErrNotBackend.
func (e *NotBackendError) Is(target error) bool { return target == ErrNotBackend }

// HostError is a backend host New cannot use. It is a usage error (exit
// code 2): nothing was sent.
type HostError struct {
	// Host is the value given, the access token masked in it.
	Host string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *HostError) Error() string {
	return fmt.Sprintf("invalid host %q: %s: want an http:// or https:// URL, such as https://api.synapse.sh or http://127.0.0.1:8080", e.Host, e.Reason)
}

// ExitCode makes an unusable host a usage error.
func (e *HostError) ExitCode() int { return 2 }

// StreamError is an "error" frame of a console log stream: the backend
// ended the stream with a message.
type StreamError struct {
	// JobID is the job whose console log was followed.
	JobID string
	// Message is the frame's message, the access token masked in it.
	Message string
}

// Error implements error.
func (e *StreamError) Error() string {
	return fmt.Sprintf("tail console log of job %s: the backend ended the stream with an error: %s", e.JobID, e.Message)
}

// RedactHost returns a host URL safe to print: a password in its userinfo
// becomes "***" (http://user:***@host), a userinfo without one is "***"
// (http://***@host). A value without userinfo is returned as it is.
func RedactHost(host string) string {
	i := strings.Index(host, "://")
	if i < 0 {
		return host
	}
	rest := host[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return host
	}
	user := "***"
	if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
		user = rest[:c] + ":***"
	}
	return host[:i+3] + user + rest[at:]
}

// Mask returns token in a form safe to print: its prefix up to '_' (such
// as "syn_"), "****" and, for a token of 12 characters or more after the
// prefix, its last 4 characters; "" for "".
func Mask(token string) string {
	if token == "" {
		return ""
	}
	prefix := ""
	if i := strings.IndexByte(token, '_'); i > 0 && i <= 8 {
		prefix = token[:i+1]
	}
	rest := token[len(prefix):]
	if len(rest) < 12 {
		return prefix + "****"
	}
	return prefix + "****" + rest[len(rest)-4:]
}

// secrets are the values no error text may hold (the access token, the
// tenant), in every form they could be echoed in.
type secrets []string

func newSecrets(values ...string) secrets {
	var s secrets
	for _, v := range values {
		if v == "" {
			continue
		}
		s = append(s, v)
		if q := url.QueryEscape(v); q != v {
			s = append(s, q)
		}
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			s = append(s, q[1:len(q)-1])
		}
	}
	return s
}

// scrub masks every secret in text.
func (s secrets) scrub(text string) string {
	for _, v := range s {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mask(v))
		}
	}
	return text
}

// wrap returns err with the secrets masked in its text; errors.Is and
// errors.As still see err.
func (s secrets) wrap(err error) error {
	if err == nil {
		return nil
	}
	return &scrubbed{msg: s.scrub(err.Error()), err: err}
}

// scrubbed is an error whose text had the secrets masked.
type scrubbed struct {
	msg string
	err error
}

// Error is the masked text.
func (e *scrubbed) Error() string { return e.msg }

// Unwrap returns the error whose text was masked.
func (e *scrubbed) Unwrap() error { return e.err }
