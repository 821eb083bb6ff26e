// Command jobtest is the plugin the cluster integration tests run.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

type echoParams struct {
	Text  string `json:"text"`
	Steps int    `json:"steps" default:"3" validate:"min=0,max=1000"`
}

var echo = synapse.NewAction("echo", func(ctx *synapse.Context, p echoParams) (map[string]any, error) {
	for i := 0; i <= p.Steps; i++ {
		ctx.SetProgress(i, max(p.Steps, 1), "echo")
		ctx.Log("step", map[string]any{"i": i})
	}
	ctx.SetMetrics(map[string]any{"steps": p.Steps}, "echo")
	env := ctx.Env()
	return map[string]any{
		"text_len":    len(p.Text),
		"job_id":      ctx.JobID(),
		"layer":       env.GetString("LAYER", ""),
		"from_config": env.GetString("FROM_CONFIG", ""),
		"from_flag":   env.GetString("FROM_FLAG", ""),
		"pid":         os.Getpid(),
		"node":        os.Getenv("SYNAPSE_TEST_NODE"), // set on the test cluster's nodes (scripts/ray-head.sh)
		"home_leaked": env.GetString("SYNAPSE_TEST_SECRET", "") != "",
	}, nil
}, synapse.WithDescription("Echo params, env and job id"))

var fail = synapse.NewAction("fail", func(ctx *synapse.Context, p map[string]any) (any, error) {
	ctx.LogMessage("about to fail", synapse.LevelWarning)
	return nil, errors.New("the dataset is empty")
})

var crash = synapse.NewAction("crash", func(ctx *synapse.Context, p map[string]any) (any, error) {
	var m map[string]int
	m["boom"]++
	return nil, nil
})

type sleepParams struct {
	Seconds int `json:"seconds" default:"600" validate:"min=1"`
}

var sleep = synapse.NewAction("sleep", func(ctx *synapse.Context, p sleepParams) (string, error) {
	ctx.LogMessage("sleeping", synapse.LevelInfo)
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(time.Duration(p.Seconds) * time.Second):
		return "woke up", nil
	}
})

// noisy writes to stdout and stderr as careless code does: bytes that are
// not UTF-8, a line of several MiB, and a progress bar without a final
// newline right before it returns.
var noisy = synapse.NewAction("noisy", func(ctx *synapse.Context, p struct {
	BigMiB int `json:"big_mib" default:"5"`
}) (map[string]int, error) {
	fmt.Println("debug: starting")
	os.Stderr.Write([]byte("warn: bytes \xff\xfe on stderr\n"))
	os.Stdout.Write([]byte(strings.Repeat("x", p.BigMiB<<20) + "\n"))
	ctx.Log("after_noise", map[string]any{"ok": true})
	fmt.Print("\rprogress 50%\rprogress 100%")
	return map[string]int{"ok": 1}, nil
})

func main() { plugin.Main(echo, fail, crash, sleep, noisy) }
