// Command go-plugin is the Go side of scripts/bench-peer.sh, the benchmark
// beside the Python SDK (synapse-sdk): the same two actions as
// ../python-plugin, action for action, param for param, result for result.
package main

import (
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// noop is the trivial action: no params, one small result.
var noop = synapse.NewAction("noop", func(ctx *synapse.Context, _ struct{}) (map[string]any, error) {
	return map[string]any{"ok": true}, nil
}, synapse.WithDescription(`Returns {"ok": true} and nothing else`))

type eventsParams struct {
	// N is how many log events to write (default 1,000).
	N int `json:"n" default:"1000" validate:"min=0,max=1000000"`
}

// events writes N log events, one a line, as the Python side's
// ctx.log('event', {'i': i}) does.
var events = synapse.NewAction("events", func(ctx *synapse.Context, p eventsParams) (map[string]any, error) {
	for i := range p.N {
		ctx.Log("event", map[string]any{"i": i})
	}
	return map[string]any{"events": p.N}, nil
}, synapse.WithDescription(`Logs n events ("event", {"i": i}) and returns {"events": n}`))

func main() { plugin.Main(noop, events) }
