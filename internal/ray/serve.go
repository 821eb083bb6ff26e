package ray

import (
	"context"
	"errors"
	"net/http"
)

const serveApplicationsPath = "/api/serve/applications/"

// ErrServeNotInstalled matches the error of a cluster without Ray Serve.
var ErrServeNotInstalled = errors.New("ray serve is not installed on the cluster")

// ServeNotInstalledError is the dashboard's 501 answer to a Serve request.
type ServeNotInstalledError struct {
	Address string
	HTTP    *HTTPError
}

func (e *ServeNotInstalledError) Error() string {
	return "ray: the cluster at " + e.Address + ` has no Ray Serve (the dashboard answered 501): task mode needs it; install it on the cluster with pip install "ray[serve]", or run the action with --mode job`
}

// Is reports whether target is ErrServeNotInstalled.
func (e *ServeNotInstalledError) Is(target error) bool { return target == ErrServeNotInstalled }

// Unwrap returns the HTTP error.
func (e *ServeNotInstalledError) Unwrap() error { return e.HTTP }

// ServeDetails is the part of GET /api/serve/applications/ the SDK uses.
type ServeDetails struct {
	ProxyLocation string                      `json:"proxy_location,omitempty"`
	HTTPOptions   map[string]any              `json:"http_options,omitempty"`
	Applications  map[string]ServeApplication `json:"applications"`
}

// ServeApplication is one application's state.
type ServeApplication struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	Message     string `json:"message"`
	RoutePrefix string `json:"route_prefix"`
	// DeployedAppConfig is the config it was deployed with (only the options
	// that were set), or nil for an application not deployed declaratively.
	DeployedAppConfig map[string]any `json:"deployed_app_config"`
	// Deployments have their own status and message (where Serve puts the
	// real cause of a failed deploy, such as a replica's startup error).
	Deployments map[string]ServeDeployment `json:"deployments"`
}

// ServeDeployment is one deployment's state.
type ServeDeployment struct {
	Status        string `json:"status"`
	StatusTrigger string `json:"status_trigger"`
	Message       string `json:"message"`
}

// Serve application statuses.
const (
	AppRunning      = "RUNNING"
	AppDeployFailed = "DEPLOY_FAILED"
	AppDeploying    = "DEPLOYING"
	AppUnhealthy    = "UNHEALTHY"
	AppDeleting     = "DELETING"
)

// ServeApplications reads the declaratively deployed applications
// (GET /api/serve/applications/?api_type=declarative).
func (c *Client) ServeApplications(ctx context.Context) (*ServeDetails, error) {
	var d ServeDetails
	if err := c.serveDo(ctx, http.MethodGet, serveApplicationsPath+"?api_type=declarative", nil, &d); err != nil {
		return nil, err
	}
	if d.Applications == nil {
		d.Applications = map[string]ServeApplication{}
	}
	return &d, nil
}

// PutServeApplications writes the whole declarative Serve config. It
// replaces every declaratively deployed application: callers must
// read-merge-write (R9). The SDK never calls DELETE, which shuts Serve down.
func (c *Client) PutServeApplications(ctx context.Context, config map[string]any) error {
	return c.serveDo(ctx, http.MethodPut, serveApplicationsPath, config, nil)
}

func (c *Client) serveDo(ctx context.Context, method, path string, in, out any) error {
	err := c.do(ctx, method, path, in, out)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotImplemented {
		return &ServeNotInstalledError{Address: c.base, HTTP: he}
	}
	return err
}
