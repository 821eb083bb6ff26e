package pyenv_test

import (
	"context"
	"fmt"
	"os"

	"github.com/synapse-sdk/synapse-go/internal/pyenv"
)

// A plugin's environment: synapse-sdk as its config.yaml `requires.sdk`
// asks and its requirements.txt, built on first use (pip's output on
// stderr) and reused afterwards.
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
	fmt.Println(env.Python, env.Reused)
}
