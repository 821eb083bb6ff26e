package supervise

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun: a child that marks its exit is passed through with its code; one
// that exits on its own is an error, exit 1, that says how it ended.
func TestRun(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!"+sh+"\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chosen := script("chosen", `[ "$SYNAPSE_PLUGIN_SUPERVISED" = 1 ] || exit 99; echo exit >&3; exit 2`)
	forced := script("forced", `exit 3`)
	killed := script("killed", `kill -9 $$`)
	for _, tt := range []struct {
		bin  string
		code int
		msg  string
	}{
		{chosen, 2, ""},
		{forced, 1, "exited with status 3 before the run ended"},
		{killed, 1, "was killed by signal 9 (killed) before the run ended: the system may have run out of memory"},
	} {
		var stderr strings.Builder
		code, ok := Run(tt.bin, nil, &stderr)
		if !ok || code != tt.code || (tt.msg == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tt.msg) {
			t.Errorf("%s: Run = %d, %v; stderr %q", filepath.Base(tt.bin), code, ok, stderr.String())
		}
	}
}
