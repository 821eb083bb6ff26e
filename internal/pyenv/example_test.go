package pyenv_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/cachedir"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
)

// A plugin's environment: synapse-sdk as its config.yaml `requires.sdk`
// asks and its requirements.txt, built on first use (pip's output on
// stderr) and reused afterwards. It is in use (never pruned) until Close.
func ExampleCache_Prepare() {
	cache := &pyenv.Cache{Dir: "my-plugin/.synapse/venvs"}
	env, err := cache.Prepare(context.Background(), pyenv.Spec{
		SDK:          pyenv.SDKRequirement(">=2026.1.0"),
		Requirements: "my-plugin/requirements.txt",
		Dir:          "my-plugin",
	}, os.Stderr)
	if err != nil {
		fmt.Println(err) // *pyenv.InstallError: pip's ERROR lines; *pyenv.PythonError: no Python >= 3.12
		return
	}
	defer env.Close() // once env.Python has exited
	fmt.Println(env.Python, env.Reused)
}

// Removing the environments not used for 30 days, as `synapse cache prune`
// does; those in use by another run are kept.
func ExampleCache_Prune() {
	cache := &pyenv.Cache{Dir: "my-plugin/.synapse/venvs"}
	res, err := cache.Prune(cachedir.PruneOptions{Before: time.Now().Add(-30 * 24 * time.Hour)})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.Skipped {
		fmt.Println("kept", s.Key, s.Reason) // pyenv.ReasonInUse
	}
	fmt.Println(len(res.Removed), "removed,", res.Freed, "bytes freed;", res.Err())
}
