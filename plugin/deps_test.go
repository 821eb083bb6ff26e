package plugin_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoClusterCode: a plugin binary links no cluster code (the Ray client,
// packager, Serve deployer, WebSocket, go-git) and no Synapse backend client
// (it reports through internal/report), so it stays small.
func TestNoClusterCode(t *testing.T) {
	forbidden := []string{
		"github.com/synapse-sdk/synapse-go/ray",
		"github.com/synapse-sdk/synapse-go/internal/ray",
		"github.com/synapse-sdk/synapse-go/internal/pack",
		"github.com/synapse-sdk/synapse-go/internal/serve",
		"github.com/synapse-sdk/synapse-go/internal/backend",
		"github.com/coder/websocket",
		"github.com/go-git/go-git/v5",
	}
	for _, pkg := range []string{".", "../examples/train", "../executortest/testdata/plugin"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %q", pkg, deps)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
	}
}
