package cli_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdAge sets the modification time of the files matching each pattern
// to AGE ago (a Go duration, or days as 30d); there must be a match:
// `age AGE PATTERN...`.
func cmdAge(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: age AGE PATTERN...")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(args[0], "d"); ok {
		n, err := strconv.Atoi(days)
		ts.Check(err)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(args[0])
		ts.Check(err)
	}
	when := time.Now().Add(-d)
	for _, pat := range args[1:] {
		m, err := filepath.Glob(ts.MkAbs(pat))
		ts.Check(err)
		if len(m) == 0 {
			ts.Fatalf("age: nothing matches %s", pat)
		}
		for _, p := range m {
			ts.Check(os.Chtimes(p, when, when))
		}
	}
}

// cmdFlock holds a shared flock on FILE (created when missing) until the
// script ends, as a process using a Python environment does with its lock
// file: `flock FILE`.
func cmdFlock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: flock FILE")
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_RDWR|os.O_CREATE, 0o644)
	ts.Check(err)
	ts.Check(syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB))
	ts.Defer(func() { f.Close() })
}
