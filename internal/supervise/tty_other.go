//go:build !unix

package supervise

// inTerminalForeground is not known here; supervise is not used.
func inTerminalForeground() bool { return false }
