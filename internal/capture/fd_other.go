//go:build !unix

package capture

import (
	"errors"
	"os"
)

// redirect is not available without dup2: output is not captured.
func redirect(fd int) (*os.File, func() error, *os.File, error) {
	return nil, nil, nil, errors.New("not supported on this system")
}

func writeFD(int, []byte) error { return errors.New("not supported on this system") }
