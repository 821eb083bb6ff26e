// Command train is an example Synapse plugin. Run its actions with the CLI:
//
//	synapse plugin run train --path examples/train --params '{"epochs": 10, "delay_ms": 100}'
//
// or directly: go run ./examples/train plugin run train --params '{"epochs": 3}'
package main

import "github.com/synapse-sdk/synapse-go/plugin"

func main() { plugin.Main(Train, Evaluate, Tune) }
