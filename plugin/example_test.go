package plugin_test

import (
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// A plugin binary's main function: the actions and nothing else. The
// binary then has the commands `plugin run`, `actions`, `schema`, `worker`,
// `job` and `validate` (docs/protocol.md).
func ExampleMain() {
	train := synapse.NewAction("train", func(ctx *synapse.Context, p struct {
		Epochs int `json:"epochs" default:"10" validate:"min=1"`
	}) (map[string]int, error) {
		return map[string]int{"epochs": p.Epochs}, nil
	})
	main := func() { plugin.Main(train) }
	_ = main // in package main: func main() { plugin.Main(train) }
}
