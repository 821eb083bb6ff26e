// Command taskcall is the Go side of the per-call task-mode measurement of
// scripts/bench-peer.sh: one long-lived process with one ray.TaskExecutor
// (the deployed Serve worker reused by every call), driven one call at a
// time over stdin so that the benchmark can alternate its calls with the
// Python SDK's warm actor (scripts/bench-peer/peer_task.py).
//
//	taskcall -plugin DIR -ray-address ADDRESS
//
// It deploys the worker (or finds it deployed), runs each line's call and
// answers on stdout, one line per call:
//
//	in:  ACTION PARAMS_JSON           e.g. events {"n":1000}
//	out: ok TOTAL_US VALIDATE_US CALL_US RESULT_JSON
//	     error MESSAGE
//
// TOTAL_US is the whole TaskExecutor.Run in microseconds, VALIDATE_US and
// CALL_US its parts (ray.TaskTimings). The first line it prints is "ready"
// once the executor is set up; it exits at the end of stdin. Events go to
// a logger that drops them (they are still streamed back and decoded).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/ray"
)

func main() {
	dir := flag.String("plugin", "", "the Go plugin directory")
	addr := flag.String("ray-address", os.Getenv("RAY_ADDRESS"), "the Ray dashboard address")
	flag.Parse()
	if err := run(context.Background(), *dir, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "taskcall:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, addr string) error {
	if dir == "" || addr == "" {
		return fmt.Errorf("-plugin and -ray-address are required")
	}
	p, err := plugin.Load(dir)
	if err != nil {
		return err
	}
	task, err := ray.NewTaskExecutor(p, ray.TaskOptions{Cluster: ray.Cluster{Address: addr}}, synapse.WithLogger(synapse.DiscardLogger))
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	reply := func(format string, a ...any) error {
		fmt.Fprintf(out, format+"\n", a...)
		return out.Flush()
	}
	if err := reply("ready"); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		action, params, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		if action == "" {
			continue
		}
		var pm map[string]any
		if err := json.Unmarshal([]byte(params), &pm); err != nil {
			if err := reply("error params %q: %v", params, err); err != nil {
				return err
			}
			continue
		}
		start := time.Now()
		res, err := task.Run(ctx, action, pm)
		total := time.Since(start)
		if err != nil {
			if err := reply("error %s", strings.ReplaceAll(err.Error(), "\n", " ")); err != nil {
				return err
			}
			continue
		}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		tm := task.Timings()
		if err := reply("ok %d %d %d %s", total.Microseconds(), tm.Validate.Microseconds(), tm.Call.Microseconds(), b); err != nil {
			return err
		}
	}
	return in.Err()
}
