// Package ray is a small client of the Ray dashboard's Jobs REST API and of
// its package upload API, written on net/http and github.com/coder/websocket.
//
// It submits, inspects, stops and deletes Ray jobs, tails their logs over the
// dashboard's WebSocket endpoint (reconnecting and de-duplicating as needed),
// and uploads working_dir packages to the cluster's GCS. It needs nothing but
// HTTP access to the dashboard (port 8265 by default); no Python and no
// Kubernetes libraries are involved.
//
// Errors carry the dashboard's own error text verbatim (see HTTPError). When
// the cluster runs with RAY_AUTH_MODE=token, the token is taken from
// $RAY_AUTH_TOKEN unless WithToken says otherwise, and it is sent as
// "Authorization: Bearer <token>" on every REST and WebSocket request.
package ray

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddress is the dashboard address used when none is given.
const DefaultAddress = "http://127.0.0.1:8265"

// dashboardPort is the dashboard's default HTTP port. A ray:// (Ray Client)
// address is mapped to this port on the same host.
const dashboardPort = "8265"

// userAgent is sent on every request. It must not look like a browser: the
// dashboard refuses POST and PUT from browsers with 405.
const userAgent = "synapse-go"

// maxErrorBody bounds how much of an error response body is kept.
const maxErrorBody = 1 << 20

// ResolveAddress returns the dashboard URL for a --ray-address value:
//
//   - "" or "auto": the value of $RAY_ADDRESS (itself resolved by these
//     rules), or DefaultAddress when that is unset or "auto";
//   - "ray://host[:port]": "http://host:8265" (the Ray Client port maps to the
//     dashboard on the same host);
//   - "host:port" without a scheme: "http://host:port"; a bare "host" gets the
//     dashboard port 8265;
//   - http:// and https:// URLs are kept (a path prefix is allowed, for a
//     dashboard behind a reverse proxy).
//
// Surrounding spaces and trailing slashes are removed. Anything else (another
// scheme, a missing host, a bad port, a query, a fragment or user
// credentials) is an error naming the value.
func ResolveAddress(flag string) (string, error) {
	v := strings.TrimSpace(flag)
	if v == "" || v == "auto" {
		env := strings.TrimSpace(os.Getenv("RAY_ADDRESS"))
		if env == "" || env == "auto" {
			return DefaultAddress, nil
		}
		addr, err := resolve(env)
		if err != nil {
			return "", &AddressError{Source: "RAY_ADDRESS", Value: env, Err: err}
		}
		return addr, nil
	}
	addr, err := resolve(v)
	if err != nil {
		return "", &AddressError{Value: flag, Err: err}
	}
	return addr, nil
}

// AddressError is a Ray address that cannot be used. It is a usage error
// (exit code 2): nothing was sent anywhere.
type AddressError struct {
	Source string // "RAY_ADDRESS" when the address came from the environment, else ""
	Value  string
	Err    error
}

func (e *AddressError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("ray: invalid %s %q: %v", e.Source, e.Value, e.Err)
	}
	return fmt.Sprintf("ray: invalid Ray address %q: %v (want http://host:8265, host:port or ray://host:10001)", e.Value, e.Err)
}

func (e *AddressError) Unwrap() error { return e.Err }

// ExitCode makes an unusable address a usage error.
func (e *AddressError) ExitCode() int { return 2 }

// resolve implements ResolveAddress for one non-empty value.
func resolve(v string) (string, error) {
	if strings.ContainsAny(v, " \t\r\n") {
		return "", errors.New("it contains spaces")
	}
	if !strings.Contains(v, "://") {
		// host, host:port, [v6]:port
		host, port, err := splitHostPort(v)
		if err != nil {
			return "", err
		}
		if port == "" {
			port = dashboardPort
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", errors.New("it is not a valid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "ray":
		if u.Host == "" {
			return "", errors.New("it has no host")
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
			return "", errors.New(`a ray:// address is only "ray://host[:port]"`)
		}
		host, _, err := splitHostPort(u.Host)
		if err != nil {
			return "", err
		}
		return "http://" + net.JoinHostPort(host, dashboardPort), nil
	case "http", "https":
		if u.Host == "" {
			return "", errors.New("it has no host")
		}
		if u.User != nil {
			return "", errors.New("credentials in the address are not supported (use RAY_AUTH_TOKEN)")
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return "", errors.New("it has a query or fragment")
		}
		if _, _, err := splitHostPort(u.Host); err != nil {
			return "", err
		}
		u.Scheme = strings.ToLower(u.Scheme)
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		return strings.TrimRight(u.String(), "/"), nil
	default:
		return "", fmt.Errorf("unsupported scheme %q (want http, https or ray)", u.Scheme)
	}
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// validates both parts; port is "" when absent.
func splitHostPort(hp string) (host, port string, err error) {
	hp = strings.TrimRight(hp, "/")
	if hp == "" {
		return "", "", errors.New("it has no host")
	}
	if strings.ContainsAny(hp, "/?#@") {
		return "", "", errors.New("it is not host[:port]")
	}
	if strings.HasPrefix(hp, "[") {
		end := strings.Index(hp, "]")
		if end < 0 {
			return "", "", errors.New("unterminated IPv6 address")
		}
		host, rest := hp[1:end], hp[end+1:]
		if net.ParseIP(host) == nil {
			return "", "", fmt.Errorf("bad IPv6 address %q", host)
		}
		switch {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			port = rest[1:]
		default:
			return "", "", errors.New("it is not host[:port]")
		}
		if rest != "" {
			if err := checkPort(port); err != nil {
				return "", "", err
			}
		}
		return host, port, nil
	}
	switch strings.Count(hp, ":") {
	case 0:
		return hp, "", nil
	case 1:
		host, port, _ = strings.Cut(hp, ":")
		if host == "" {
			return "", "", errors.New("it has no host")
		}
		if err := checkPort(port); err != nil {
			return "", "", err
		}
		return host, port, nil
	default:
		return "", "", errors.New("an IPv6 address must be written in brackets, as [addr]:port")
	}
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strings.TrimLeft(p, "0123456789") != "" {
		return fmt.Errorf("bad port %q", p)
	}
	return nil
}

// OutageWindow is how long following a job's log rides out a Ray dashboard
// that does not answer (it restarts, the network drops) before giving up.
const OutageWindow = 3 * time.Minute

// Client talks to one Ray dashboard. It is safe for concurrent use.
type Client struct {
	base  string // resolved dashboard URL, no trailing slash
	token string
	http  *http.Client
	hint  string // how to give another address, in errors (WithAddressHint)

	// Timing knobs; tests shorten them.
	pollMin, pollMax       time.Duration // Wait/StopAndWait poll interval
	backoffMin, backoffMax time.Duration // Tail reconnect backoff
	outageWindow           time.Duration // how long Tail rides out a dashboard that does not answer
	agentRetryFor          time.Duration // how long Submit retries "No available agent"
	agentRetryDelay        time.Duration
}

// Option configures a Client in NewClient.
type Option func(*Client)

// WithToken sets the bearer token sent as "Authorization: Bearer <token>" on
// every request. The default is $RAY_AUTH_TOKEN; WithToken("") sends none.
func WithToken(token string) Option {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// WithHTTPClient makes the client use h for every REST request and WebSocket
// handshake. A nil h keeps the default client.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// defaultAddressHint is how the CLI's commands take another dashboard
// address.
const defaultAddressHint = "set --ray-address or RAY_ADDRESS"

// WithAddressHint sets how the program using the client is given another
// dashboard address, as the errors of an address that does not answer or
// is no Ray dashboard say it (default "set --ray-address or RAY_ADDRESS",
// the CLI's flag), such as "check --agent gpu=ray:ADDRESS" for
// `synapse server`.
func WithAddressHint(hint string) Option {
	return func(c *Client) {
		if hint != "" {
			c.hint = hint
		}
	}
}

// NewClient returns a client of the dashboard at address, which may be raw
// (it is passed through ResolveAddress) or already resolved.
func NewClient(address string, opts ...Option) (*Client, error) {
	base, err := ResolveAddress(address)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:            base,
		token:           strings.TrimSpace(os.Getenv("RAY_AUTH_TOKEN")),
		http:            defaultHTTPClient(),
		hint:            defaultAddressHint,
		pollMin:         500 * time.Millisecond,
		pollMax:         2 * time.Second,
		backoffMin:      200 * time.Millisecond,
		backoffMax:      5 * time.Second,
		outageWindow:    OutageWindow,
		agentRetryFor:   30 * time.Second,
		agentRetryDelay: time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// defaultHTTPClient has connection-level timeouts but no overall timeout:
// callers bound requests with their context, and uploads may be large.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 2 * time.Minute
	return &http.Client{Transport: t}
}

// Address returns the resolved dashboard URL, without a trailing slash.
func (c *Client) Address() string { return c.base }

// JobURL returns the dashboard UI link of a job: <address>/#/jobs/<id>.
func (c *Client) JobURL(id string) string {
	return c.base + "/#/jobs/" + url.PathEscape(id)
}

// headers returns the headers sent on every request.
func (c *Client) headers() http.Header {
	h := http.Header{}
	h.Set("User-Agent", userAgent)
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	return h
}

// jobPath is the API path of one job.
func jobPath(id string) string { return "/api/jobs/" + url.PathEscape(id) }

// do sends one request to path (an API path such as "/api/jobs/") and, on a
// 2xx answer, decodes its JSON body into out (when out is not nil). A non-2xx
// answer is returned as *HTTPError; a transport failure as an error that
// names the address.
func (c *Client) do(ctx context.Context, method, path string, in any, out any) error {
	var body io.Reader
	var contentType string
	switch v := in.(type) {
	case nil:
	case []byte:
		body, contentType = bytes.NewReader(v), "application/octet-stream"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("ray: %s %s: encoding request: %w", method, path, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("ray: %s %s: %w", method, path, err)
	}
	req.Header = c.headers()
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if out != nil {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		he := newHTTPError(method, path, resp, b, c.token != "")
		// A 404 for a package is the normal "not uploaded yet".
		if path != versionPath && !strings.HasPrefix(path, "/api/packages/") && notFoundish(resp.StatusCode) {
			if nr := c.notRay(ctx); nr != nil {
				return nr
			}
		}
		return he
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return c.transportError(ctx, method, path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("ray: %s %s: decoding the %s answer: %w (body: %.200q)", method, path, resp.Status, err, b)
	}
	return nil
}

const versionPath = "/api/version"

// notFoundish are the statuses a server that is not a Ray dashboard gives
// for Ray's API paths.
func notFoundish(status int) bool {
	return status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented
}

// notRay checks, after a not-found answer, whether the address is a Ray
// dashboard at all, and returns a *NotRayError when it is not.
func (c *Client) notRay(ctx context.Context) error {
	var v Version
	err := c.do(ctx, http.MethodGet, versionPath, nil, &v)
	var vhe *HTTPError
	switch {
	case errors.As(err, &vhe) && notFoundish(vhe.Status):
		return &NotRayError{Address: c.base, Status: vhe.Status, Hint: c.hint}
	case err == nil && v.RayVersion == "" && v.Version == "":
		return &NotRayError{Address: c.base, Hint: c.hint}
	}
	return nil
}

// transportError describes a request that got no HTTP answer. Failing to
// connect at all names the address and hints at the usual cause.
func (c *Client) transportError(ctx context.Context, method, path string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return fmt.Errorf("ray: %s %s: %w", method, path, ctxErr)
	}
	if isDialError(err) {
		return &unreachableError{address: c.base, err: err, hint: c.hint}
	}
	return fmt.Errorf("ray: %s %s at %s: %w", method, path, c.base, err)
}

// isDialError reports whether err means no connection could be made.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// unreachableError is returned when the dashboard cannot be connected to.
type unreachableError struct {
	address string
	err     error
	hint    string // WithAddressHint
}

func (e *unreachableError) Error() string {
	hint := e.hint
	if hint == "" {
		hint = defaultAddressHint
	}
	return fmt.Sprintf("ray: cannot reach the Ray dashboard at %s: %v; is a Ray head running? (%s)", e.address, e.err, hint)
}

func (e *unreachableError) Unwrap() error { return e.err }
