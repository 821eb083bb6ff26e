//go:build !unix

package build

import "os/exec"

// setCancel leaves cmd's default cancellation in place: killing the go
// command.
func setCancel(cmd *exec.Cmd) {}
