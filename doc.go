// Package synapse is the Go SDK for writing Synapse plugin actions and
// running them: in-process for development (local mode), on a Ray cluster,
// or through a Synapse backend. Action code is the same in every mode.
//
// An action is a typed function whose params are decoded from JSON and
// validated before it runs:
//
//	type TrainParams struct {
//		Epochs int    `json:"epochs" default:"10" validate:"min=1,max=1000"`
//		Model  string `json:"model" validate:"required,oneof=small large"`
//	}
//
//	var Train = synapse.NewAction("train", func(ctx *synapse.Context, p TrainParams) (map[string]any, error) {
//		for epoch := range p.Epochs {
//			ctx.SetProgress(epoch+1, p.Epochs, "train")
//		}
//		return map[string]any{"epochs": p.Epochs}, nil
//	})
//
// The *Context an action receives is a context.Context (cancellation reaches
// the action through it) and reports logs, messages, progress and metrics
// to a Logger: NewConsoleLogger for people, NewJSONLogger for programs.
// The plugintest package runs actions in tests and records what they
// reported.
//
// A plugin is a directory with config.yaml and a main package whose main
// function is plugin.Main(Train, …); `synapse plugin run train` builds and
// runs it.
//
// # Running actions
//
// Every execution mode implements Executor, which runs a plugin's actions
// by name with the same results and typed errors: ActionSet and
// LocalExecutor run in this process (LocalExecutor takes Action values,
// and a debugger's breakpoints in action code work); package plugin runs a
// plugin directory in its own binary; package ray runs it on a Ray
// cluster as a job or on a reused worker (task mode). RunPlugin reaches
// any of them through the modes their packages register (RegisterMode, in
// the manner of database/sql drivers), and package executortest is the
// conformance suite each passes.
//
// Errors are typed: *ValidationError for rejected params (the action did
// not run), *ExecutionError for an action that failed, panicked or was
// cancelled, *ActionNotFoundError for an unknown action name. Each matches
// its sentinel with errors.Is.
package synapse
