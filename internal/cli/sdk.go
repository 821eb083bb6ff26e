package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

const sdkModule = "github.com/synapse-sdk/synapse-go"

// sdkDir returns the directory of this SDK's source checkout: $SYNAPSE_SDK_DIR,
// else the checkout this CLI was built from.
func sdkDir() (string, error) {
	if dir := os.Getenv("SYNAPSE_SDK_DIR"); dir != "" {
		if err := checkSDKDir(dir); err != nil {
			return "", fmt.Errorf("SYNAPSE_SDK_DIR=%s: %w", dir, err)
		}
		return filepath.Abs(dir)
	}
	_, file, _, ok := runtime.Caller(0)
	if ok {
		dir := filepath.Join(filepath.Dir(file), "..", "..")
		if checkSDKDir(dir) == nil {
			return filepath.Abs(dir)
		}
	}
	return "", errors.New("cannot find the synapse-go SDK source checkout; set SYNAPSE_SDK_DIR to it")
}

func checkSDKDir(dir string) error {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("not an SDK checkout: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			if strings.TrimSpace(strings.TrimPrefix(line, "module ")) == sdkModule {
				return nil
			}
			break
		}
	}
	return fmt.Errorf("not an SDK checkout: go.mod is not module %s", sdkModule)
}
