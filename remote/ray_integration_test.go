//go:build integration

package remote

import (
	"os"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/executortest"
	"github.com/synapse-sdk/synapse-go/internal/server"
)

// rayAddress is the integration suite's Ray head (make test-integration
// starts one); without it the test skips, except under CI=true.
func rayAddress(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("SYNAPSE_TEST_RAY_ADDRESS")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SYNAPSE_TEST_RAY_ADDRESS is not set: CI must run the integration suite against a real Ray head (make test-integration)")
		}
		t.Skip("no Ray head: run `make test-integration` (it starts one) or set SYNAPSE_TEST_RAY_ADDRESS")
	}
	return addr
}

// TestIntegrationConformanceRayAgent runs the executor suite against
// remote mode on a synapse server whose agent is the test Ray head: every
// run is a backend job that the server runs as a Ray job.
func TestIntegrationConformanceRayAgent(t *testing.T) {
	addr := rayAddress(t)
	p, b := published(t, server.AgentSpec{Name: "ray", Ray: addr})
	executortest.RunLimited(t, func(t *testing.T, opts ...synapse.Option) synapse.Executor {
		e, err := NewExecutor(p, Options{Backend: b}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}, executortest.Limits{NoEnv: true, NoJobID: true})
}
