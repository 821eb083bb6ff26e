// Package backend is a client of the Synapse backend's HTTP API, as the
// Python SDK's BackendClient speaks it (synapse-sdk 2026.2.17; the wire is
// described in docs/server-api.md), so it works against `synapse server`
// and the real Synapse backend alike.
//
// Every request carries "Synapse-Access-Token: Token <token>" (and
// "Synapse-Tenant: Token <tenant>" when one is set). v1 routes end with a
// slash and list in pages {count, next, previous, results}; v2 routes
// (/v2/…) answer in the envelope {data, meta {request_id, next_cursor}}.
//
// Errors: an error answer is an *HTTPError (errors.Is matches
// ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict and
// ErrVersionExists); no answer is an *UnreachableError naming the host; a
// POST whose answer was lost after it may have reached the server is an
// *UncertainError and is never retried. GETs are retried a few times on
// connection errors and 5xx answers. No error text holds the access token
// or the tenant: they are masked (Mask).
package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/retry"
)

// Limits of what the client reads.
const (
	maxAnswer    = 256 << 20 // a successful answer's body
	maxErrorBody = 1 << 20   // an error answer's body (only its start is kept)
	maxPages     = 10_000    // pages one listing follows
)

// Client is a client of one Synapse backend. It is safe for concurrent
// use. Its String and GoString show the host, never the token.
type Client struct {
	base    *url.URL // scheme://host[/prefix], no trailing slash
	host    string   // base as text
	token   string
	tenant  string
	ua      string
	http    *http.Client
	secrets secrets
	// Where host and token came from (WithSources), for error texts.
	hostFrom, tokenFrom string

	// Timing knobs; tests shorten them.
	getRetries           int           // retries of a GET after the first attempt
	retryFirst, retryMax time.Duration // their backoff
	maxRetryAfter        time.Duration // the most a Retry-After is waited
	readIdle             time.Duration // an answer's body that sends nothing this long is dropped
	tailFirst, tailMax   time.Duration // TailConsole's reconnect backoff
	tailIdle             time.Duration // a stream that sends nothing (not even a heartbeat) this long is reconnected
	tailOutage           time.Duration // how long TailConsole tries to reconnect before giving up
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with h (its Transport
// and timeouts; a Timeout also cuts console log streams, which TailConsole
// then resumes). A redirect to another host or from https to http is
// refused unless h has a CheckRedirect of its own. nil keeps the default.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithTenant sends "Synapse-Tenant: Token <tenant>" on every request.
func WithTenant(tenant string) Option {
	return func(c *Client) { c.tenant = strings.TrimSpace(tenant) }
}

// WithSources names where the host and the token came from, such as
// "--host", "SYNAPSE_HOST", "-t" or a config file's path, so that errors
// say what to fix: an *UnreachableError and a *NotBackendError name the
// host's source, a 401 *HTTPError the token's. "" leaves a source unnamed.
func WithSources(hostFrom, tokenFrom string) Option {
	return func(c *Client) { c.hostFrom, c.tokenFrom = hostFrom, tokenFrom }
}

// WithUserAgent sets the User-Agent header; the default is
// "synapse-go/VERSION", VERSION being this module's version from the build
// information ("devel" when it has none). The CLI passes its own version.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.ua = ua
		}
	}
}

// UserAgent is the User-Agent a client sends for version v:
// "synapse-go/v".
func UserAgent(v string) string {
	if v == "" {
		v = "devel"
	}
	return "synapse-go/" + v
}

// New returns a client of the backend at host, an http:// or https:// URL
// (a path prefix is kept, a trailing slash dropped), authenticating with
// token. A host that is not such a URL is a *HostError; an empty token is
// ErrNoToken.
func New(host, token string, opts ...Option) (*Client, error) {
	token = strings.TrimSpace(token)
	s := newSecrets(token)
	base, err := parseHost(host)
	if err != nil {
		err.Host = s.scrub(err.Host)
		err.Reason = s.scrub(err.Reason)
		return nil, err
	}
	if token == "" {
		return nil, ErrNoToken
	}
	if strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, fmt.Errorf("the access token %s has spaces or control characters: check it (synapse login)", Mask(token))
	}
	c := &Client{
		base: base, host: base.String(), token: token, ua: UserAgent(moduleVersion()),
		http:       defaultHTTPClient(),
		getRetries: 3, retryFirst: 500 * time.Millisecond, retryMax: 4 * time.Second, maxRetryAfter: time.Minute,
		readIdle:  time.Minute,
		tailFirst: 200 * time.Millisecond, tailMax: 5 * time.Second, tailIdle: 2 * time.Minute, tailOutage: 3 * time.Minute,
	}
	for _, o := range opts {
		o(c)
	}
	if strings.IndexFunc(c.tenant, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return nil, fmt.Errorf("the tenant %s has spaces or control characters: check it", Mask(c.tenant))
	}
	c.secrets = newSecrets(token, c.tenant)
	if c.http.CheckRedirect == nil {
		h := *c.http
		h.CheckRedirect = sameHostRedirect
		c.http = &h
	}
	return c, nil
}

// CheckHost reports whether New would take host: nil, or the *HostError
// New would return. It sends nothing.
func CheckHost(host string) error {
	if _, err := parseHost(host); err != nil {
		return err
	}
	return nil
}

// parseHost checks a backend host URL.
func parseHost(host string) (*url.URL, *HostError) {
	v := strings.TrimSpace(host)
	bad := func(reason string) (*url.URL, *HostError) {
		return nil, &HostError{Host: RedactHost(host), Reason: reason}
	}
	if v == "" {
		return bad("it is empty")
	}
	if !strings.Contains(v, "://") {
		return bad("it has no http:// or https://")
	}
	u, err := url.Parse(v)
	if err != nil {
		return bad("it is not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return bad(fmt.Sprintf("the scheme %q is not http or https", u.Scheme))
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return bad("it has no host name")
	case u.User != nil:
		return bad("it holds credentials: pass the token on its own (synapse login)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("it has a query or a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad(fmt.Sprintf("the port %q is not a port number", p))
		}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// sameHostRedirect follows redirects on the same host (a route without its
// final slash), never to another host or from https to http: the token
// header would go with it.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Hostname(), first.Hostname()) || first.Scheme == "https" && req.URL.Scheme != "https" {
		return &redirectError{to: req.URL.Scheme + "://" + req.URL.Host}
	}
	return nil
}

// redirectError is a redirect sameHostRedirect refused.
type redirectError struct{ to string }

// Error implements error.
func (e *redirectError) Error() string {
	return "the backend redirected to " + e.to + ", which is not its host: not following it with the access token"
}

// defaultHTTPClient has connection-level timeouts (connect 5 s, as the
// Python SDK) and 30 s for an answer's headers once the request is sent
// (run/'s params check takes up to 10 s); bodies are bounded by the
// client's read watchdog instead, and uploads by nothing.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	// Shorter than servers' keep-alive timeouts, so a POST is rarely sent
	// on a connection the server is closing (its answer would be lost).
	t.IdleConnTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// moduleVersion is this module's version from the build information.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if bi.Main.Path == "github.com/synapse-sdk/synapse-go" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/synapse-sdk/synapse-go" && d.Version != "" && d.Version != "(devel)" {
			return d.Version
		}
	}
	return ""
}

// Host returns the backend's URL, without a trailing slash.
func (c *Client) Host() string { return c.host }

// String describes the client by its host; it never shows the token.
func (c *Client) String() string { return "backend.Client(" + c.host + ")" }

// GoString is String, so %#v does not show the token either.
func (c *Client) GoString() string { return c.String() }

// request is one call of the API.
type request struct {
	op     string // "get job ID": the start of every error text
	method string
	path   string // the API path, such as "/agents/" (no host prefix, no query)
	query  url.Values
	in     any                               // a JSON body, or nil
	body   func() (io.Reader, int64, string) // another body: reader, length, content type
	check  string                            // an UncertainError's Check
	stream bool                              // an event stream: the answer's body is returned open
	header func(http.Header)                 // more headers
}

// envelope is the v2 answer: {data, meta {request_id, next_cursor}}.
type envelope struct {
	Data json.RawMessage `json:"data"`
	Meta struct {
		RequestID  string  `json:"request_id"`
		NextCursor *string `json:"next_cursor"`
	} `json:"meta"`
}

// errIdle ends a request whose answer stopped coming.
var errIdle = errors.New("the backend sent nothing for too long")

// get sends a GET and decodes the answer into out (see do).
func (c *Client) get(ctx context.Context, op, path string, query url.Values, out any) error {
	return c.do(ctx, request{op: op, method: http.MethodGet, path: path, query: query}, out)
}

// do sends r and, on a 2xx answer, decodes its JSON body into out (when
// not nil). A GET is retried on connection errors and 5xx (and 429 with
// Retry-After); a POST never once all of it was sent. Event streams do not
// come here (TailConsole reads them).
func (c *Client) do(ctx context.Context, r request, out any) error {
	idempotent := r.method == http.MethodGet
	bo := retry.New(c.retryFirst, c.retryMax, 2)
	for attempt := 0; ; attempt++ {
		again := idempotent && attempt < c.getRetries
		resp, wrote, err := c.send(ctx, r)
		var redirect *redirectError
		if errors.As(err, &redirect) {
			return fmt.Errorf("%s: %w", r.op, c.secrets.wrap(redirect))
		}
		if err != nil {
			if ctx.Err() != nil {
				if !idempotent && wrote {
					return c.uncertain(r, ctx.Err())
				}
				return fmt.Errorf("%s: %w", r.op, ctx.Err())
			}
			if again {
				if werr := bo.Wait(ctx); werr != nil {
					return fmt.Errorf("%s: %w", r.op, werr)
				}
				continue
			}
			if !idempotent && wrote {
				return c.uncertain(r, err)
			}
			return &UnreachableError{Op: r.op, Host: c.host, HostFrom: c.hostFrom, Err: c.secrets.wrap(cause(err))}
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			he := c.httpError(r, resp)
			resp.Body.Close()
			if again && retryable(resp.StatusCode, resp.Header) {
				d := bo.Next()
				if ra, ok := retryAfter(resp.Header, c.maxRetryAfter); ok {
					d = ra
				}
				if werr := retry.Sleep(ctx, d); werr != nil {
					return fmt.Errorf("%s: %w", r.op, werr)
				}
				continue
			}
			if he.Status == http.StatusNotFound && he.notJSON {
				return c.notBackend(ctx, r, he)
			}
			return he
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
		resp.Body.Close()
		if err != nil {
			switch {
			case ctx.Err() != nil && !idempotent:
				return c.uncertain(r, ctx.Err())
			case ctx.Err() != nil:
				return fmt.Errorf("%s: %w", r.op, ctx.Err())
			case again:
				if werr := bo.Wait(ctx); werr != nil {
					return fmt.Errorf("%s: %w", r.op, werr)
				}
				continue
			case !idempotent:
				return c.uncertain(r, err)
			}
			return &UnreachableError{Op: r.op, Host: c.host, HostFrom: c.hostFrom, Err: c.secrets.wrap(cause(err))}
		}
		if len(b) > maxAnswer {
			return fmt.Errorf("%s: the answer is over %d MiB: not read", r.op, maxAnswer>>20)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			if text := strings.TrimSpace(string(b)); !json.Valid(b) {
				return &NotBackendError{Op: r.op, Host: c.host, HostFrom: c.hostFrom, Method: r.method, Path: r.path, Status: resp.StatusCode, HTML: isHTML(resp.Header.Get("Content-Type"), text)}
			}
			return fmt.Errorf("%s: the answer (%s %s, HTTP %d) is not what the Synapse backend answers: %v: %s", r.op, r.method, r.path, resp.StatusCode, err, c.secrets.scrub(snippet(b)))
		}
		return nil
	}
}

// send sends r once. wrote reports whether the whole request was written
// (so a POST may have reached the server). The answer's body, when there
// is one, is wrapped in a read watchdog and ends the request when closed.
func (c *Client) send(ctx context.Context, r request) (resp *http.Response, wrote bool, err error) {
	var body io.Reader
	var size int64 = -1
	var ctype string
	switch {
	case r.body != nil:
		body, size, ctype = r.body()
	case r.in != nil:
		b, err := json.Marshal(r.in)
		if err != nil {
			return nil, false, fmt.Errorf("encode the request: %w", err)
		}
		body, size, ctype = bytes.NewReader(b), int64(len(b)), "application/json"
	}
	var written atomic.Bool
	rctx, cancel := context.WithCancelCause(ctx)
	// The request may have reached the server once it was all written: a
	// server does not act on part of one.
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				written.Store(true)
			}
		},
	})
	u := c.url(r.path, r.query)
	req, err := http.NewRequestWithContext(rctx, r.method, u, body)
	if err != nil {
		cancel(nil)
		return nil, false, err
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Synapse-Access-Token", "Token "+c.token)
	if c.tenant != "" {
		req.Header.Set("Synapse-Tenant", "Token "+c.tenant)
	}
	req.Header.Set("User-Agent", c.ua)
	if r.stream {
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Cache-Control", "no-cache")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if r.header != nil {
		r.header(req.Header)
	}
	resp, err = c.http.Do(req)
	if err != nil {
		if errors.Is(context.Cause(rctx), errIdle) {
			err = errIdle
		}
		cancel(nil)
		return nil, written.Load(), err
	}
	idle := c.readIdle
	if r.stream {
		idle = c.tailIdle
	}
	resp.Body = newWatchdog(resp.Body, idle, cancel)
	return resp, true, nil
}

// url is the full URL of an API path (escaped, such as
// "/plugin_releases/code@1.0/").
func (c *Client) url(path string, query url.Values) string {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	} else {
		u.Path, u.RawPath = u.RawPath, ""
	}
	u.RawQuery = query.Encode()
	return u.String()
}

// uncertain is the error of a POST whose answer was lost.
func (c *Client) uncertain(r request, err error) error {
	return &UncertainError{Op: r.op, Method: r.method, Path: r.path, Check: r.check, Err: c.secrets.wrap(cause(err))}
}

// cause strips *url.Error's "Get "URL": " from a transport error: the
// errors around it name the request already.
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// retryable reports whether a GET's error answer may be retried: a server
// or gateway failure, or 429 with Retry-After.
func retryable(status int, h http.Header) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusTooManyRequests:
		return h.Get("Retry-After") != ""
	}
	return false
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), at most
// limit.
func retryAfter(h http.Header, limit time.Duration) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		d = time.Duration(n * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(time.Until(t), 0)
	} else {
		return 0, false
	}
	return min(d, limit), true
}

// notBackend decides what a 404 whose body is not the backend's JSON
// means: a route this backend lacks (he), or a host that is no Synapse
// backend at all, as GET /agents/, which every backend answers, shows (a
// *NotBackendError).
func (c *Client) notBackend(ctx context.Context, r request, he *HTTPError) error {
	nb := &NotBackendError{Op: r.op, Host: c.host, HostFrom: c.hostFrom, Method: r.method, Path: r.path, Status: he.Status, HTML: he.html}
	if r.path == "/agents/" {
		return nb
	}
	var probe json.RawMessage
	err := c.do(ctx, request{op: "list agents", method: http.MethodGet, path: "/agents/"}, &probe)
	var pe *NotBackendError
	switch {
	case errors.As(err, &pe):
		pe.Op = r.op
		return pe
	case errors.Is(err, ErrNotFound):
		nb.Method, nb.Path, nb.Status = http.MethodGet, "/agents/", http.StatusNotFound
		return nb
	}
	return he
}

// httpError reads an error answer into an *HTTPError.
func (c *Client) httpError(r request, resp *http.Response) *HTTPError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &HTTPError{Op: r.op, Method: r.method, Path: r.path, Status: resp.StatusCode, TokenFrom: c.tokenFrom}
	if c.tokenFrom != "" {
		e.Token = Mask(c.token)
	}
	for _, h := range []string{"X-Request-Id", "Request-Id", "X-Correlation-Id"} {
		if v := resp.Header.Get(h); v != "" {
			e.RequestID = v
			break
		}
	}
	parseErrorBody(e, resp.Header.Get("Content-Type"), b)
	e.Detail = c.secrets.scrub(e.Detail)
	e.Code = c.secrets.scrub(e.Code)
	e.RequestID = c.secrets.scrub(e.RequestID)
	for i := range e.Fields {
		e.Fields[i].Field = c.secrets.scrub(e.Fields[i].Field)
		e.Fields[i].Message = c.secrets.scrub(e.Fields[i].Message)
	}
	return e
}

// parseErrorBody reads the error shapes backends answer with: v2
// {"error": {code, message, details}, "meta": {request_id}}, v1 {"detail",
// "code"?, "params"?: {FIELD: [msg]}}, DRF field errors {FIELD: [msg]} and
// {"non_field_errors": [msg]}, {"error": "text"}, and short text bodies.
func parseErrorBody(e *HTTPError, contentType string, b []byte) {
	text := strings.TrimSpace(string(b))
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		var list []string
		e.html = isHTML(contentType, text)
		switch {
		case json.Unmarshal(b, &list) == nil:
			e.Detail = strings.Join(list, "; ")
		case !e.html:
			e.notJSON = true
			e.Detail = snippet([]byte(text))
		default:
			e.notJSON = true
		}
		return
	}
	var meta struct {
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(top["meta"], &meta) == nil && meta.RequestID != "" {
		e.RequestID = meta.RequestID
	}
	if raw, ok := top["error"]; ok {
		var v2 struct {
			Code    string       `json:"code"`
			Message string       `json:"message"`
			Details []FieldError `json:"details"`
		}
		if json.Unmarshal(raw, &v2) == nil {
			e.Code, e.Detail, e.Fields = v2.Code, v2.Message, v2.Details
			return
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			e.Detail = s
			return
		}
	}
	str := func(key string) string {
		var s string
		if json.Unmarshal(top[key], &s) == nil {
			return s
		}
		return ""
	}
	e.Detail = str("detail")
	if e.Detail == "" {
		e.Detail = str("message")
	}
	if e.Code == "" {
		e.Code = str("code")
	}
	if e.Code == "" {
		e.Code = str("error_type")
	}
	fieldsOf := func(m map[string]json.RawMessage, skip ...string) []FieldError {
		var out []FieldError
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if slices.Contains(skip, k) {
				continue
			}
			var msgs []string
			var one string
			switch {
			case json.Unmarshal(m[k], &msgs) == nil:
			case json.Unmarshal(m[k], &one) == nil:
				msgs = []string{one}
			default:
				continue
			}
			field := k
			if k == "non_field_errors" {
				field = ""
			}
			for _, msg := range msgs {
				out = append(out, FieldError{Field: field, Message: msg})
			}
		}
		return out
	}
	if raw, ok := top["params"]; ok {
		var params map[string]json.RawMessage
		if json.Unmarshal(raw, &params) == nil {
			e.Fields = fieldsOf(params)
		}
	}
	if e.Detail == "" && len(e.Fields) == 0 {
		// DRF field errors: {FIELD: [msg]}.
		e.Fields = fieldsOf(top, "meta", "code", "status", "error_type")
		if len(e.Fields) == 1 {
			f := e.Fields[0]
			e.Detail, e.Fields = f.Message, nil
			if f.Field != "" {
				e.Detail = f.Field + ": " + f.Message
			}
		} else if len(e.Fields) > 1 {
			e.Detail = "the request was refused"
		}
	}
}

// isHTML reports whether a body is an HTML page (a proxy's error page):
// printing it would bury the message.
func isHTML(contentType, body string) bool {
	if strings.HasPrefix(strings.ToLower(contentType), "text/html") {
		return true
	}
	head := strings.ToLower(body[:min(len(body), 64)])
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html")
}

// snippet is the start of a body, for an error text.
func snippet(b []byte) string {
	const most = 300
	s := strings.TrimSpace(string(b))
	if len(s) > most {
		s = s[:most] + "…"
	}
	return s
}

// watchdog is an answer's body that ends its request when nothing arrives
// for idle (a dead connection would otherwise block a read forever), and
// when closed.
// A read it ended returns errIdle.
type watchdog struct {
	io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelCauseFunc
	fired  atomic.Bool
}

func newWatchdog(body io.ReadCloser, idle time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{ReadCloser: body, idle: idle, cancel: cancel}
	w.timer = time.AfterFunc(idle, func() {
		w.fired.Store(true)
		cancel(errIdle)
	})
	return w
}

// Read reads the body, restarting the idle timer on data.
func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	if n > 0 {
		w.timer.Reset(w.idle)
	}
	if err != nil && w.fired.Load() {
		err = errIdle
	}
	return n, err
}

// Close stops the timer, closes the body and ends the request.
func (w *watchdog) Close() error {
	w.timer.Stop()
	err := w.ReadCloser.Close()
	w.cancel(nil)
	return err
}
