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
	"fmt"
	"os"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

func init() {
	synapse.RegisterMode(synapse.ModeJob, func(path string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
		var opts JobOptions
		switch o := cfg.Options.(type) {
		case nil:
		case JobOptions:
			opts = o
		case *JobOptions:
			opts = *o
		default:
			return nil, fmt.Errorf("run plugin %q in job mode: mode options must be ray.JobOptions (got %T)", path, cfg.Options)
		}
		p, err := plugin.Load(path)
		if err != nil {
			return nil, err
		}
		return NewJobExecutor(p, opts, synapse.WithEnv(cfg.Env), synapse.WithJobID(cfg.JobID), synapse.WithLogger(cfg.Logger))
	})
	synapse.RegisterMode(synapse.ModeTask, func(path string, cfg synapse.ExecutorConfig) (synapse.Executor, error) {
		var opts TaskOptions
		switch o := cfg.Options.(type) {
		case nil:
		case TaskOptions:
			opts = o
		case *TaskOptions:
			opts = *o
		default:
			return nil, fmt.Errorf("run plugin %q in task mode: mode options must be ray.TaskOptions (got %T)", path, cfg.Options)
		}
		p, err := plugin.Load(path)
		if err != nil {
			return nil, err
		}
		return NewTaskExecutor(p, opts, synapse.WithEnv(cfg.Env), synapse.WithJobID(cfg.JobID), synapse.WithLogger(cfg.Logger))
	})
}

// Resources are what a cluster run asks Ray for. Zero values ask for
// nothing.
type Resources struct {
	CPUs   float64 // entrypoint_num_cpus (job) or ray_actor_options.num_cpus (task)
	GPUs   float64 // entrypoint_num_gpus or ray_actor_options.num_gpus
	Memory int64   // bytes: entrypoint_memory or ray_actor_options.memory
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
