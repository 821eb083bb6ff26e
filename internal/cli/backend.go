package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/clientconfig"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/remote"
)

// backendFlags are --host and -t/--token of the commands that talk to a
// Synapse backend.
type backendFlags struct {
	host, token string
}

func (f *backendFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.host, "host", "", "Synapse backend URL (default: $SYNAPSE_HOST, else config.json host, else "+clientconfig.DefaultHost+")")
	fs.StringVarP(&f.token, "token", "t", "", "access token (default: $SYNAPSE_ACCESS_TOKEN, else config.json; see synapse login)")
}

// loadConfigFile reads the CLI's config file (clientconfig.Path).
func loadConfigFile() (*clientconfig.File, error) {
	path, err := clientconfig.Path()
	if err != nil {
		return nil, err
	}
	return clientconfig.Load(path)
}

// credentials resolves the host and token of a command from its flags, the
// environment and the config file, which it returns too.
func credentials(f backendFlags) (clientconfig.Credentials, *clientconfig.File, error) {
	file, err := loadConfigFile()
	if err != nil {
		return clientconfig.Credentials{}, nil, err
	}
	return clientconfig.Resolve(clientconfig.Flags{Host: f.host, Token: f.token}, os.Getenv, file), file, nil
}

// errNotLoggedIn is a command that needs a token run without one.
func errNotLoggedIn(host string) error {
	return &exit.SetupError{Problem: "not logged in to " + backend.RedactHost(host), Fix: "run synapse login, or pass -t TOKEN or set " + clientconfig.EnvToken}
}

// backendClient is a client of the resolved backend; no token is a
// *exit.SetupError.
func backendClient(c clientconfig.Credentials) (*backend.Client, error) {
	if !c.LoggedIn() {
		return nil, errNotLoggedIn(c.Host)
	}
	opts := []backend.Option{backend.WithUserAgent(backend.UserAgent(version())), backend.WithTenant(c.Tenant), backend.WithSources(c.HostFrom, tokenSource(c.TokenFrom))}
	if c.UserToken {
		opts = append(opts, backend.WithHTTPClient(userTokenClient()))
	}
	cl, err := backend.New(c.Host, c.Token, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (host from %s)", err, c.HostFrom)
	}
	return cl, nil
}

// tokenSource is how errors name where the token came from: "-t" for the
// flag, else as clientconfig.Resolve says.
func tokenSource(from string) string {
	if from == "--token" {
		return "-t"
	}
	return from
}

// userTokenClient sends the token as a DRF user token, "Authorization:
// Token <t>", as the Python SDK sends SYNAPSE_PLUGIN_RUN_USER_TOKEN and
// config.json's user_token (the backend refuses it as an access token).
func userTokenClient() *http.Client {
	return &http.Client{Transport: userTokenTransport{http.DefaultTransport}}
}

// userTokenTransport moves the access token header to Authorization.
type userTokenTransport struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t userTokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if v := r.Header.Get("Synapse-Access-Token"); v != "" {
		r = r.Clone(r.Context())
		r.Header.Del("Synapse-Access-Token")
		r.Header.Set("Authorization", v)
	}
	return t.next.RoundTrip(r)
}

// remoteBackend is the remote package's Backend of the resolved
// credentials; no token is a *exit.SetupError.
func remoteBackend(c clientconfig.Credentials) (remote.Backend, error) {
	if !c.LoggedIn() {
		return remote.Backend{}, errNotLoggedIn(c.Host)
	}
	b := remote.Backend{Host: c.Host, Token: c.Token, Tenant: c.Tenant, HostFrom: c.HostFrom, TokenFrom: tokenSource(c.TokenFrom)}
	if c.UserToken {
		b.HTTPClient = userTokenClient()
	}
	return b, nil
}

// backendHint is what to do about a Synapse backend's answer that its own
// text does not say: a 404 of a run (the plugin, or the release asked for,
// is not published there) or of a job, and where to look after a request
// whose answer was lost. "" for other errors.
func backendHint(err error) string {
	var ue *backend.UncertainError
	if errors.As(err, &ue) {
		return "the backend's jobs, newest first: synapse plugin job list --remote"
	}
	var he *backend.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound {
		return ""
	}
	switch {
	case strings.HasPrefix(he.Path, "/plugins/") && strings.HasSuffix(he.Path, "/run/"):
		return "the plugin, or the release asked for (--release), is not published on this backend: run synapse plugin publish"
	case strings.HasPrefix(he.Path, "/jobs/") || strings.HasPrefix(he.Path, "/v2/jobs/"):
		return "no such job on this backend: see synapse plugin job list --remote"
	}
	return ""
}
