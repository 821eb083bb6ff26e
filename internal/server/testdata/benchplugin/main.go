// Command benchplugin is the plugin the synapse server benchmarks
// (../../bench_test.go) publish and run. Every line an action prints
// carries its emission time as t=UNIXNANO, so a reader can tell how long
// the line took to reach it.
//
//	hello   prints one line and returns {"ok": true} (the trivial job)
//	lines   prints n lines at rate lines a second, then returns {"lines": n}
//	wait    waits until the file at path exists (holds an agent's slot)
package main

import (
	"fmt"
	"os"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// LinesParams are the params of "lines".
type LinesParams struct {
	N    int `json:"n" default:"1000" validate:"min=1"`
	Rate int `json:"rate" default:"10000" validate:"min=1"` // lines per second
}

// WaitParams are the params of "wait".
type WaitParams struct {
	Path    string  `json:"path" validate:"required"`
	Timeout float64 `json:"timeout" default:"600" validate:"gt=0"` // seconds
}

func main() {
	plugin.Main(
		synapse.NewAction("hello", func(ctx *synapse.Context, _ struct{}) (map[string]bool, error) {
			fmt.Printf("hello t=%d\n", time.Now().UnixNano())
			return map[string]bool{"ok": true}, nil
		}),
		synapse.NewAction("lines", lines),
		synapse.NewAction("wait", func(ctx *synapse.Context, p WaitParams) (map[string]bool, error) {
			deadline := time.Now().Add(time.Duration(p.Timeout * float64(time.Second)))
			for {
				if _, err := os.Stat(p.Path); err == nil {
					return map[string]bool{"ok": true}, nil
				}
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("%s did not appear within %gs", p.Path, p.Timeout)
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}),
	)
}

// lines prints p.N lines, line i due at start + i/p.Rate seconds: each
// time it wakes it prints every line that is due, so the rate holds on
// average whatever the timer's resolution. Each line is one write.
func lines(ctx *synapse.Context, p LinesParams) (map[string]int, error) {
	start := time.Now()
	interval := time.Second / time.Duration(p.Rate)
	for i := 0; i < p.N; {
		now := time.Now()
		for ; i < p.N && start.Add(time.Duration(i)*interval).Compare(now) <= 0; i++ {
			fmt.Printf("line seq=%d t=%d\n", i, time.Now().UnixNano())
		}
		if i < p.N {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
	}
	return map[string]int{"lines": p.N, "elapsed_ms": int(time.Since(start).Milliseconds())}, nil
}
