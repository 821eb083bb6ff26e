// Command train is an example plugin: it runs its actions in local mode.
//
//	go run ./examples/train train '{"epochs": 10, "delay_ms": 100}'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"

	synapse "github.com/synapse-sdk/synapse-go"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: train ACTION [PARAMS_JSON]   (actions: train, evaluate)")
		return 2
	}
	actions := map[string]synapse.Action{Train.Name(): Train, Evaluate.Name(): Evaluate}
	action, ok := actions[args[0]]
	if !ok {
		fmt.Fprintln(os.Stderr, "error:", &synapse.ActionNotFoundError{Action: args[0], Available: []string{"evaluate", "train"}})
		return 2
	}
	params := "{}"
	if len(args) == 2 {
		params = args[1]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	result, err := synapse.NewLocalExecutor().Execute(ctx, action, params)
	switch {
	case errors.Is(err, synapse.ErrValidation):
		fmt.Fprintln(os.Stderr, "error:", err)
		return 2
	case err != nil:
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	out, _ := json.MarshalIndent(result, "", "  ")
	fmt.Println(string(out))
	return 0
}
