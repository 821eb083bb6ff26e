// Package remote runs plugin actions through a Synapse backend (remote
// mode): the Synapse platform, or `synapse server` (docs/server-api.md).
// A run is POST /plugins/{code}/run/ of a published release; the backend
// hands it to one of its agents and keeps the job: its status, progress,
// metrics, console log and result. The wire is the Python SDK's
// (synapse-sdk 2026.2.17), so the same calls work against both backends.
//
// Importing the package registers synapse.ModeRemote, so synapse.RunPlugin
// can run a plugin directory (or a published plugin by its code) there:
//
//	import _ "github.com/synapse-sdk/synapse-go/remote"
//
//	res, err := synapse.RunPlugin(ctx, "./my-plugin", "train", params,
//		synapse.WithMode(synapse.ModeRemote),
//		synapse.WithModeOptions(remote.Options{Backend: remote.Backend{Host: "http://127.0.0.1:8080", Token: token}}))
//
// Executor is the same mode as a Go value (a synapse.Submitter, like
// ray.JobExecutor); Job is a backend job (OpenJob, ListJobs); Pack and
// Publish upload a plugin as a release, the package job mode builds.
//
// A Python plugin directory (synapse-sdk; docs/modes.md) works too: Pack
// and Publish pack it as the Python SDK's `synapse plugin publish` does
// (no binary), and Executor runs its release, the params checked by the
// agent's worker rather than here.
package remote

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/plugin"
)

func init() {
	synapse.RegisterMode(synapse.ModeRemote, func(path string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
		var opts Options
		switch o := cfg.Options.(type) {
		case nil:
		case Options:
			opts = o
		case *Options:
			if o != nil {
				opts = *o
			}
		default:
			return nil, fmt.Errorf("run plugin %q in remote mode: mode options must be remote.Options (got %T)", path, cfg.Options)
		}
		p, err := openPlugin(path, &opts)
		if err != nil {
			return nil, err
		}
		return NewExecutor(p, opts, synapse.WithEnv(cfg.Env), synapse.WithJobID(cfg.JobID), synapse.WithLogger(cfg.Logger))
	})
}

// openPlugin loads the plugin directory at path; a path that names no file
// and looks like a plugin code is taken as the code of a published plugin
// (opts.Plugin), with no directory.
func openPlugin(path string, opts *Options) (*plugin.Plugin, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && codeLike(path) {
		if opts.Plugin == "" {
			opts.Plugin = path
		}
		return nil, nil
	}
	return plugin.Load(path)
}

// codeLike reports whether s could be a plugin code (config.yaml `code`:
// lowercase letters, digits and dashes).
func codeLike(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Environment variables BackendFromEnv reads, as the Python SDK does.
const (
	EnvHost  = "SYNAPSE_HOST"         // the backend's URL
	EnvToken = "SYNAPSE_ACCESS_TOKEN" // its access token
)

// Backend is where remote runs go: a Synapse backend's URL and the access
// token sent with every request ("Synapse-Access-Token: Token <Token>").
// An empty Host or Token is taken from SYNAPSE_HOST or SYNAPSE_ACCESS_TOKEN
// when the client is made. The CLI resolves it from flags, the environment
// and ~/.synapse/config.json; the token is a secret: errors show it masked.
type Backend struct {
	// Host is the backend's http:// or https:// URL, such as
	// http://127.0.0.1:8080 (a path prefix is kept).
	Host string
	// Token is the access token (synapse server: `synapse server token
	// create`; the platform: the user's access token).
	Token string
	// Tenant, when set, is sent as "Synapse-Tenant: Token <Tenant>".
	Tenant string
	// HTTPClient sends the requests; nil uses a client with connection
	// timeouts (connect 5 s, answer headers 30 s) and none on bodies, so
	// console log streams stay open.
	HTTPClient *http.Client
	// HostFrom and TokenFrom, when set, name where Host and Token came
	// from (such as "--host", "SYNAPSE_HOST", "-t" or a config file's
	// path), so that an unreachable host, a host that is no Synapse
	// backend and a refused token (HTTP 401) say which setting to fix.
	HostFrom, TokenFrom string
}

// String shows the backend with its token and tenant masked
// (backend.Mask), so printing options never shows the secret.
func (b Backend) String() string {
	return fmt.Sprintf("remote.Backend{Host: %q, Token: %q, Tenant: %q}", b.Host, backend.Mask(b.Token), backend.Mask(b.Tenant))
}

// GoString is String, so %#v masks the token too.
func (b Backend) GoString() string { return b.String() }

// BackendFromEnv returns the Backend of SYNAPSE_HOST and
// SYNAPSE_ACCESS_TOKEN (either may be "").
func BackendFromEnv() Backend {
	return Backend{Host: os.Getenv(EnvHost), Token: os.Getenv(EnvToken)}
}

// client returns a client of the backend. Errors: no host (an
// *OptionError), a host that is no http(s) URL (a *backend.HostError), no
// token (matching backend.ErrNoToken); all usage errors, nothing sent.
func (b Backend) client() (*backend.Client, error) {
	env := BackendFromEnv()
	if b.Host == "" {
		b.Host = env.Host
	}
	if b.Token == "" {
		b.Token = env.Token
	}
	if strings.TrimSpace(b.Host) == "" {
		return nil, &OptionError{Field: "Backend.Host", Err: errors.New("no backend host: set it (--host, synapse login) or SYNAPSE_HOST, such as http://127.0.0.1:8080")}
	}
	c, err := backend.New(b.Host, b.Token, backend.WithTenant(b.Tenant), backend.WithHTTPClient(b.HTTPClient), backend.WithSources(b.HostFrom, b.TokenFrom))
	if errors.Is(err, backend.ErrNoToken) {
		return nil, &OptionError{Field: "Backend.Token", Err: err}
	}
	return c, err
}

// Options configures remote mode. Only Backend is needed; the zero values
// of the rest are the defaults.
type Options struct {
	Backend
	// Plugin is the plugin's code on the backend; default: config.yaml
	// `code` of the plugin directory. Without a directory it is required;
	// when it is not the directory's code, the directory does not check
	// the params (the backend does).
	Plugin string
	// Agent is the ID of the agent that runs the jobs (GET /agents/); 0
	// takes the backend's only agent, and is an *OptionError listing them
	// when it has several.
	Agent int64
	// Release is the release version to run; "" runs the newest (debug
	// releases included when Debug is set). It is run/'s "version".
	Release string
	// Debug lets the newest debug release run when Release is "" (run/'s
	// "debug"; the Python CLI sends true by default).
	Debug bool
	// Language is the run's language tag (en, ko, pt-BR, …), the action's
	// SYNAPSE_LANGUAGE; default the WithLanguage option's, else none (the
	// backend's default).
	Language string
}

// String shows the options with the token masked (see Backend.String).
func (o Options) String() string {
	return fmt.Sprintf("remote.Options{Backend: %s, Plugin: %q, Agent: %d, Release: %q, Debug: %t, Language: %q}", o.Backend, o.Plugin, o.Agent, o.Release, o.Debug, o.Language)
}

// GoString is String, so %#v masks the token too.
func (o Options) GoString() string { return o.String() }

// OptionError is an option remote mode cannot use: nothing was sent. It is
// a usage error (exit code 2).
type OptionError struct {
	Field string // the option, such as "Agent" or "WithEnv"
	Err   error
}

// Error implements error.
func (e *OptionError) Error() string { return "remote: option " + e.Field + ": " + e.Err.Error() }

// Unwrap returns what is wrong with the value.
func (e *OptionError) Unwrap() error { return e.Err }

// ExitCode makes a bad option a usage error.
func (e *OptionError) ExitCode() int { return 2 }

// Category is the category of the messages remote mode adds to a run's
// events: console log lines that are not the plugin binary's events (the
// backend's own lines, a Python plugin's output) and notes such as the
// job's place in its agent's queue.
const Category = "remote"
