//go:build integration

package ray_test

import (
	"context"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/ray"
)

func conformancePlugin(t *testing.T) *plugin.Plugin {
	p, err := plugin.Load(executortest.PluginDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIntegrationConformanceJob runs the executor suite against job mode on
// the test Ray head: every run is a Ray job.
func TestIntegrationConformanceJob(t *testing.T) {
	p := conformancePlugin(t)
	executortest.Run(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
		e, err := ray.NewJobExecutor(p, jobOptions(t), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

// TestIntegrationConformanceTask runs the executor suite against task mode
// on the test Ray head: runs go to one deployed worker application.
func TestIntegrationConformanceTask(t *testing.T) {
	p := conformancePlugin(t)
	t.Cleanup(func() {
		if _, err := ray.DownTasks(context.Background(), rayAddress(t), p.Code()); err != nil {
			t.Errorf("remove the worker application: %v", err)
		}
	})
	executortest.Run(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
		e, err := ray.NewTaskExecutor(p, ray.TaskOptions{Cluster: ray.Cluster{Address: rayAddress(t)}, MaxOngoingRequests: 4}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}
