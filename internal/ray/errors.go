package ray

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// ErrJobNotFound matches (with errors.Is) an *HTTPError with status 404 on a
// job path: the dashboard does not know the job id.
var ErrJobNotFound = errors.New("ray job not found")

// HTTPError is a non-2xx answer from the dashboard. Its Error text is
// "ray: <METHOD> <path>: <status line>", followed on the next lines by the
// server's text/plain body verbatim (trimmed), which is usually a Python
// traceback or a one-line reason. 401, 403 and 413 get a hint after the
// status line.
type HTTPError struct {
	// Method is the HTTP method of the request.
	Method string
	// Path is the API path requested, such as "/api/jobs/"; it does not
	// include a path prefix of the dashboard address.
	Path string
	// Status is the HTTP status code.
	Status int
	// Body is the response body (at most 1 MiB), trimmed of surrounding
	// white space; "" for an HTML page, which is never printed.
	Body string
	// TokenSent reports whether the request carried a bearer token.
	TokenSent bool
}

func newHTTPError(method, path string, resp *http.Response, body []byte, tokenSent bool) *HTTPError {
	text := strings.TrimSpace(string(body))
	if isHTML(resp.Header.Get("Content-Type"), text) {
		text = ""
	}
	return &HTTPError{Method: method, Path: path, Status: resp.StatusCode, Body: text, TokenSent: tokenSent}
}

// isHTML reports whether a body is an HTML page (a proxy's or another web
// server's error page): printing it would bury the message.
func isHTML(contentType, body string) bool {
	if strings.HasPrefix(strings.ToLower(contentType), "text/html") {
		return true
	}
	head := strings.ToLower(body[:min(len(body), 64)])
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html")
}

// NotRayError says that the address answered HTTP but is not a Ray
// dashboard: GET /api/version did not answer as Ray does.
type NotRayError struct {
	Address string
	Status  int // the status of GET /api/version (0 when it answered 2xx but not as Ray)
	// Hint is how to give another address (WithAddressHint; "" for the
	// CLI's "set --ray-address or RAY_ADDRESS").
	Hint string
}

func (e *NotRayError) Error() string {
	what := "does not answer GET /api/version as Ray does"
	if e.Status != 0 {
		what = fmt.Sprintf("answered GET /api/version with %d %s", e.Status, http.StatusText(e.Status))
	}
	hint := e.Hint
	if hint == "" {
		hint = defaultAddressHint
	}
	return fmt.Sprintf("ray: no Ray dashboard at %s: it %s; the Ray dashboard usually listens on port 8265 (%s)", e.Address, what, hint)
}

// Error implements error.
func (e *HTTPError) Error() string {
	var b strings.Builder
	b.WriteString("ray: ")
	b.WriteString(e.Method)
	b.WriteString(" ")
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Status))
	if txt := http.StatusText(e.Status); txt != "" {
		b.WriteString(" ")
		b.WriteString(txt)
	}
	switch {
	case e.Status == http.StatusUnauthorized && !e.TokenSent:
		b.WriteString(" (the cluster requires a token: set RAY_AUTH_TOKEN)")
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		b.WriteString(" (the token in RAY_AUTH_TOKEN was rejected: check it against the cluster's)")
	case e.Status == http.StatusRequestEntityTooLarge:
		b.WriteString(" (the request is larger than the dashboard's 100 MiB limit)")
	}
	if e.Body != "" {
		b.WriteString("\n")
		b.WriteString(e.Body)
	}
	return b.String()
}

// Is reports whether target is ErrJobNotFound and e is a 404 on a job path.
func (e *HTTPError) Is(target error) bool {
	return target == ErrJobNotFound && e.Status == http.StatusNotFound &&
		strings.HasPrefix(e.Path, "/api/jobs/") && len(e.Path) > len("/api/jobs/")
}

// DuplicateJobError is returned by Submit when the submission id is already
// used by a job with a different entrypoint.
type DuplicateJobError struct {
	// ID is the submission id that is taken.
	ID string
	// ExistingEntrypoint is the entrypoint of the job that holds the id.
	ExistingEntrypoint string
}

// Error implements error.
func (e *DuplicateJobError) Error() string {
	return fmt.Sprintf("ray: submission id %q is already used by a job with a different entrypoint (%q); use a different submission id",
		e.ID, e.ExistingEntrypoint)
}

// submissionID is what a submission ID may look like: Ray uses it in file
// names (the job driver's log), so no path separators or spaces.
var submissionID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// SubmissionIDError is a submission ID Ray could not use. It is a usage
// error (exit code 2).
type SubmissionIDError struct{ ID string }

func (e *SubmissionIDError) Error() string {
	return fmt.Sprintf("ray: invalid job ID %q: use 1 to 128 letters, digits, '-', '_' or '.', starting with a letter or digit (Ray names files after it)", e.ID)
}

// ExitCode makes a bad job ID a usage error.
func (e *SubmissionIDError) ExitCode() int { return 2 }

// CheckSubmissionID returns a *SubmissionIDError when id cannot be a Ray
// submission ID.
func CheckSubmissionID(id string) error {
	if !submissionID.MatchString(id) {
		return &SubmissionIDError{ID: id}
	}
	return nil
}
