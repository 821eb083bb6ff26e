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
// NewLocalExecutor runs actions in the calling goroutine; the plugintest
// package runs them in tests and records what they reported.
//
// Errors are typed: *ValidationError for rejected params (the action did
// not run), *ExecutionError for an action that failed, panicked or was
// cancelled, *ActionNotFoundError for an unknown action name. Each matches
// its sentinel with errors.Is.
package synapse
