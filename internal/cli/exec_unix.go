//go:build unix

package cli

import (
	"fmt"
	"os"
	"syscall"
)

// replaceProcess runs argv in place of this process (exec), so the plugin
// binary owns the terminal and receives signals directly. It returns only
// on failure.
func replaceProcess(_ *IOStreams, argv []string) error {
	err := syscall.Exec(argv[0], argv, os.Environ())
	return fmt.Errorf("start %s: %w", argv[0], err)
}
