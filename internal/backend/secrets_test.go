package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
)

// roundTripper is an http.RoundTripper of a function.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNoSecretInErrors: no error text, of any type, holds the access token
// or the tenant, even when the backend or the network echoes them.
func TestNoSecretInErrors(t *testing.T) {
	const tenant = "tenant-secret-0123456789"
	secret := fakeToken
	echo := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body := strings.NewReplacer("TOKEN", r.Header.Get("Synapse-Access-Token"), "TENANT", r.Header.Get("Synapse-Tenant")).Replace(body)
			if status == http.StatusOK && strings.Contains(r.URL.Path, "tail_console_logs") {
				w.Header().Set("Content-Type", "text/event-stream")
			}
			w.Header().Set("X-Request-Id", r.Header.Get("Synapse-Access-Token"))
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	client := func(t *testing.T, h http.HandlerFunc) *Client {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c := newClient(t, srv.URL, secret, WithTenant(tenant))
		c.tailOutage = 0
		return c
	}
	transport := func(t *testing.T, rt roundTripper) *Client {
		return newClient(t, "http://127.0.0.1:9", secret, WithTenant(tenant), WithHTTPClient(&http.Client{Transport: rt}))
	}
	agents := func(c *Client) error { _, err := c.Agents(context.Background()); return err }
	run := func(c *Client) error {
		_, err := c.Run(context.Background(), "p", RunRequest{Action: "a"})
		return err
	}
	tailJob := func(c *Client) error {
		return c.TailConsole(context.Background(), "j", 0, func(Line) error { return nil })
	}
	tests := []struct {
		name string
		err  func(t *testing.T) error
		as   any // the error type it must be
	}{
		{"HTTPError: a 401 echoing the token", func(t *testing.T) error {
			return agents(client(t, echo(401, `{"detail":"Invalid token: TOKEN (tenant TENANT)"}`)))
		}, new(*HTTPError)},
		{"HTTPError: v2 error echoing them", func(t *testing.T) error {
			return agents(client(t, echo(403, `{"error":{"code":"TOKEN","message":"TENANT","details":[{"field":"TOKEN","message":"TOKEN"}]},"meta":{"request_id":"TOKEN"}}`)))
		}, new(*HTTPError)},
		{"HTTPError: DRF fields and a text body", func(t *testing.T) error {
			return run(client(t, echo(400, `{"TOKEN":["TENANT"],"x":["TOKEN"]}`)))
		}, new(*HTTPError)},
		{"HTTPError: a 500 text body", func(t *testing.T) error {
			return run(client(t, echo(500, `failed for TOKEN, TENANT`)))
		}, new(*HTTPError)},
		{"UnreachableError: a dial error naming them", func(t *testing.T) error {
			return agents(transport(t, func(r *http.Request) (*http.Response, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused " + r.Header.Get("Synapse-Access-Token") + r.Header.Get("Synapse-Tenant"))}
			}))
		}, new(*UnreachableError)},
		{"UncertainError: a lost answer naming them", func(t *testing.T) error {
			return run(transport(t, func(r *http.Request) (*http.Response, error) {
				httptrace.ContextClientTrace(r.Context()).WroteRequest(httptrace.WroteRequestInfo{})
				return nil, errors.New("reset after " + r.Header.Get("Synapse-Access-Token") + r.Header.Get("Synapse-Tenant"))
			}))
		}, new(*UncertainError)},
		{"HostError: the token in the host", func(t *testing.T) error {
			_, err := New("http://"+secret+"@host", secret)
			return err
		}, new(*HostError)},
		{"HostError: the token as the host", func(t *testing.T) error {
			_, err := New(secret, secret)
			return err
		}, new(*HostError)},
		{"StreamError: an error frame echoing them", func(t *testing.T) error {
			return tailJob(client(t, echo(200, "data: {\"type\":\"error\",\"message\":\"TOKEN TENANT\"}\n\n")))
		}, new(*StreamError)},
		{"tail: an error answer echoing them", func(t *testing.T) error {
			return tailJob(client(t, echo(503, `{"detail":"TOKEN TENANT"}`)))
		}, new(*HTTPError)},
		{"a 2xx answer that is not JSON, echoing them", func(t *testing.T) error {
			return agents(client(t, echo(200, `TOKEN TENANT`)))
		}, nil},
		{"a run answered without a job", func(t *testing.T) error {
			return run(client(t, echo(201, `{"result":"TOKEN TENANT"}`)))
		}, nil},
		{"a token with a space", func(t *testing.T) error {
			_, err := New("http://host", "syn_0123456789 abcdef0123456789")
			if strings.Contains(err.Error(), "0123456789 abcdef") {
				t.Errorf("the token is in %q", err)
			}
			return err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.as != nil && !errors.As(err, tt.as) {
				t.Errorf("%T is not %T: %v", err, tt.as, err)
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%v|%+v|%#v|%s|%q", err, err, err, err, err)} {
				for _, s := range []string{secret, tenant} {
					if strings.Contains(text, s) {
						t.Errorf("the error holds %q:\n%s", s, text)
					}
				}
			}
			var nb *NotBackendError
			if !strings.Contains(err.Error(), "***") && !errors.As(err, &nb) {
				t.Errorf("the error does not show the masked token: %v", err)
			}
		})
	}

	c := newClient(t, "http://host", secret, WithTenant(tenant))
	for _, text := range []string{fmt.Sprint(c), fmt.Sprintf("%+v %#v %s", c, c, c)} {
		if strings.Contains(text, secret) || strings.Contains(text, tenant) {
			t.Errorf("the client prints its secrets: %s", text)
		}
	}
}

func TestMask(t *testing.T) {
	for token, want := range map[string]string{
		"":                 "",
		fakeToken:          "syn_****4567",
		"short":            "****",
		"syn_short":        "syn_****",
		"abcdefghijklmnop": "****mnop",
	} {
		if got := Mask(token); got != want {
			t.Errorf("Mask(%q) = %q, want %q", token, got, want)
		}
	}
}
