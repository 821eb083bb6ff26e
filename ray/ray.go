// Package ray runs plugin actions on a Ray cluster: job mode (each run is
// a Ray job, submitted through the Jobs REST API) and task mode (runs go
// to a long-lived worker, a Ray Serve application running the plugin
// binary). The plugin ships as one static binary in the job's working_dir
// package, so the cluster installs nothing per job.
//
// Importing the package registers synapse.ModeJob and synapse.ModeTask, so
// synapse.RunPlugin can run a plugin directory in either mode:
//
//	import _ "github.com/synapse-sdk/synapse-go/ray"
//
//	res, err := synapse.RunPlugin(ctx, "./my-plugin", "train", params,
//		synapse.WithMode(synapse.ModeJob),
//		synapse.WithModeOptions(ray.JobOptions{Cluster: ray.Cluster{Address: "http://head:8265"}}))
//
// JobExecutor and TaskExecutor are the same modes as Go values.
package ray

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	rayapi "github.com/synapse-sdk/synapse-go/internal/ray"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/plugin"
)

func init() {
	synapse.RegisterMode(synapse.ModeJob, func(path string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
		opts, p, err := open[JobOptions](synapse.ModeJob, path, cfg)
		if err != nil {
			return nil, err
		}
		return NewJobExecutor(p, opts, synapse.WithEnv(cfg.Env), synapse.WithJobID(cfg.JobID), synapse.WithLogger(cfg.Logger))
	})
	synapse.RegisterMode(synapse.ModeTask, func(path string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
		opts, p, err := open[TaskOptions](synapse.ModeTask, path, cfg)
		if err != nil {
			return nil, err
		}
		return NewTaskExecutor(p, opts, synapse.WithEnv(cfg.Env), synapse.WithJobID(cfg.JobID), synapse.WithLogger(cfg.Logger))
	})
}

// open takes the mode options (O, *O or nil for the defaults; anything else
// is an error) and loads the plugin at path, for RunPlugin.
func open[O any](mode synapse.Mode, path string, cfg synapse.ExecutorConfig) (O, *plugin.Plugin, error) {
	var opts O
	switch o := cfg.Options.(type) {
	case nil:
	case O:
		opts = o
	case *O:
		if o != nil {
			opts = *o
		}
	default:
		return opts, nil, fmt.Errorf("run plugin %q in %s mode: mode options must be %T (got %T)", path, mode, opts, cfg.Options)
	}
	p, err := plugin.Load(path)
	return opts, p, err
}

// Resources are what a cluster run asks Ray for. Zero values ask for
// nothing.
type Resources struct {
	CPUs   float64 // entrypoint_num_cpus (job) or ray_actor_options.num_cpus (task)
	GPUs   float64 // entrypoint_num_gpus or ray_actor_options.num_gpus
	Memory int64   // bytes: entrypoint_memory or ray_actor_options.memory
	// Custom are custom resources by name (entrypoint_resources, or
	// ray_actor_options.resources): Ray places the run on a node that has
	// them, such as {"worker_node": 1} for a node started with
	// `ray start --resources='{"worker_node": 1}'`.
	Custom map[string]float64
}

// Cluster is where a cluster mode runs and what the plugin binary is built
// for; JobOptions and TaskOptions embed it.
type Cluster struct {
	// Address is the Ray dashboard: "http://host:8265", "host:8265",
	// "ray://host:10001" (mapped to the dashboard port 8265), or "" /
	// "auto" for $RAY_ADDRESS, else http://127.0.0.1:8265.
	Address string
	// Resources for each run.
	Resources Resources
	// Arch is the cluster's CPU architecture (GOARCH) the plugin binary is
	// built for; default amd64.
	Arch string
}

// check validates the options as Ray will, before anything is built or
// sent: a usage error (exit code 2) names the field.
func (c Cluster) check() error {
	for _, r := range []struct {
		field string
		v     float64
	}{{"Resources.CPUs", c.Resources.CPUs}, {"Resources.GPUs", c.Resources.GPUs}} {
		if err := runflags.CheckResource(r.v); err != nil {
			return &OptionError{Field: r.field, Err: err}
		}
	}
	for name, v := range c.Resources.Custom {
		if name == "" {
			return &OptionError{Field: "Resources.Custom", Err: errors.New("a resource needs a name")}
		}
		if err := runflags.CheckResource(v); err != nil {
			return &OptionError{Field: "Resources.Custom[" + name + "]", Err: err}
		}
	}
	if c.Resources.Memory < 0 {
		return &OptionError{Field: "Resources.Memory", Err: fmt.Errorf("must be >= 0 bytes (got %d)", c.Resources.Memory)}
	}
	switch c.Arch {
	case "", "amd64", "arm64":
	default:
		return &OptionError{Field: "Arch", Err: fmt.Errorf("must be amd64 or arm64 (got %q)", c.Arch)}
	}
	return nil
}

// OptionError is a mode option Ray could not use. It is a usage error
// (exit code 2): nothing was built or sent.
type OptionError struct {
	Field string // the option, such as "Resources.GPUs"
	Err   error
}

func (e *OptionError) Error() string { return "ray: option " + e.Field + ": " + e.Err.Error() }

// Unwrap returns what is wrong with the value.
func (e *OptionError) Unwrap() error { return e.Err }

// ExitCode makes a bad option a usage error.
func (e *OptionError) ExitCode() int { return 2 }

func (c Cluster) arch() string {
	if c.Arch == "" {
		return "amd64"
	}
	return c.Arch
}

// JobOptions configures job mode. The zero value is the default.
type JobOptions struct {
	Cluster
}

// TaskOptions configures task mode. The zero value is the default.
type TaskOptions struct {
	Cluster
	// Replicas is how many workers (Serve replicas) run; default 1.
	Replicas int
	// MaxOngoingRequests is how many runs one worker takes at once (Serve's
	// max_ongoing_requests); default 1.
	MaxOngoingRequests int
	// ServeAddress is the Ray Serve HTTP proxy calls go to; default the
	// dashboard's host, port 8000.
	ServeAddress string
	// DeployStatus, if set, receives progress messages while the worker
	// application is deployed.
	DeployStatus func(status string)
	// ProxyOnly sends every call through the Serve HTTP proxy. By default
	// a call goes straight to a worker whose address an earlier call
	// learned (TaskExecutor, "Direct calls"), and through the proxy when
	// none is known, reachable or free.
	ProxyOnly bool
}

// clusterEnv returns the env of a cluster run: config.yaml env < explicit,
// plus SYNAPSE_HOST of this process when set (never this process's whole
// environment, and never its SYNAPSE_ACCESS_TOKEN: Ray keeps env_vars in
// clear in the job's record, readable by anyone who can reach the
// dashboard). Values are strings, as Ray's runtime_env env_vars must be.
func clusterEnv(p *plugin.Plugin, explicit *synapse.Env) map[string]string {
	env := synapse.MergeEnv(p.Env(), explicit).Strings()
	if v := os.Getenv("SYNAPSE_HOST"); v != "" {
		if _, set := env["SYNAPSE_HOST"]; !set {
			env["SYNAPSE_HOST"] = v
		}
	}
	return env
}

// reachable remembers that a cluster answered GET /api/version as a Ray
// dashboard, so an unreachable or wrong address fails at once, before a
// plugin is built and packaged for it, and is asked only once.
type reachable struct {
	mu sync.Mutex
	ok bool
}

func (r *reachable) check(ctx context.Context, c *rayapi.Client) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ok {
		return nil
	}
	if _, err := c.Version(ctx); err != nil {
		return err
	}
	r.ok = true
	return nil
}

// ensurePackage makes sure the cluster holds pkg (see
// rayapi.Client.EnsurePackage). A package from the package cache is read
// and checked (pack.Package.Load) only when the cluster lacks it; a
// damaged cache entry is packed again then, and pkg becomes the new
// package. uploaded reports whether a PUT happened.
func ensurePackage(ctx context.Context, c *rayapi.Client, pkg *pack.Package) (uploaded bool, err error) {
	if pkg.Data == nil {
		has, err := c.HasPackage(ctx, pkg.Name)
		if err != nil || has {
			return false, err
		}
		if _, err := pkg.Load(); err != nil {
			return false, err
		}
	}
	return c.EnsurePackage(ctx, pkg.Name, pkg.Data)
}

// packageCache is the cache of cluster packages beside the build cache
// that built came from.
func packageCache(built *build.Result) pack.Cache {
	return pack.Cache{Dir: filepath.Join(built.CacheDir, pack.CacheSubdir)}
}
