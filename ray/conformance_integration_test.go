//go:build integration

package ray_test

import (
	"context"
	"encoding/json"
	"reflect"
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

// TestIntegrationProgressRecordLocalVsJob runs the same action in local mode
// (a plugin binary on this machine) and as a Ray job, and compares the
// progress records each caller rebuilt from the events it received.
func TestIntegrationProgressRecordLocalVsJob(t *testing.T) {
	p := conformancePlugin(t)
	record := func(ex synapse.Executor, tracker *synapse.ProgressTracker) synapse.ProgressRecord {
		t.Helper()
		if _, err := ex.Run(t.Context(), "context", nil); err != nil {
			t.Fatal(err)
		}
		r := tracker.Record()
		for name, s := range r.Steps { // times differ between runs
			s.TimeRemaining = nil
			r.Steps[name] = s
		}
		r.TimeRemaining, r.Current.TimeRemaining, r.Current.TimeElapsed = nil, nil, nil
		return r
	}
	localTracker, jobTracker := synapse.NewProgressTracker(), synapse.NewProgressTracker()
	local := record(plugin.NewExecutor(p, synapse.WithLogger(localTracker)), localTracker)
	jobEx, err := ray.NewJobExecutor(p, jobOptions(t), synapse.WithLogger(jobTracker))
	if err != nil {
		t.Fatal(err)
	}
	job := record(jobEx, jobTracker)
	if !reflect.DeepEqual(local, job) {
		lb, _ := json.Marshal(local)
		jb, _ := json.Marshal(job)
		t.Errorf("progress records differ:\nlocal %s\njob   %s", lb, jb)
	}
	if len(local.Steps) != 4 || local.Current.Overall != 100 {
		lb, _ := json.Marshal(local)
		t.Errorf("record = %s, want 4 steps and overall 100", lb)
	}
}

// TestIntegrationTaskLanguagePerCall: the run's language travels with each
// call, so runs in another language reuse the deployed workers.
func TestIntegrationTaskLanguagePerCall(t *testing.T) {
	p := conformancePlugin(t)
	t.Cleanup(func() {
		if _, err := ray.DownTasks(context.Background(), rayAddress(t), p.Code()); err != nil {
			t.Errorf("remove the worker application: %v", err)
		}
	})
	for i, lang := range []string{"ko", "de"} {
		e, err := ray.NewTaskExecutor(p, ray.TaskOptions{Cluster: ray.Cluster{Address: rayAddress(t)}}, synapse.WithLogger(synapse.DiscardLogger), synapse.WithLanguage(lang))
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Run(t.Context(), "context", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.(map[string]any)["language"]; got != lang {
			t.Errorf("language = %v, want %s", got, lang)
		}
		if i > 0 && e.Deployed() {
			t.Errorf("a run in %s redeployed the workers", lang)
		}
	}
}
