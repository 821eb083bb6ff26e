package worker

import (
	"context"
	"errors"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// ToError converts a run error to its protocol form.
func ToError(err error) *protocol.Error {
	var (
		ve *synapse.ValidationError
		xe *synapse.ExecutionError
		ne *synapse.ActionNotFoundError
	)
	switch {
	case errors.As(err, &ve):
		w := &protocol.Error{Kind: protocol.KindValidation, Message: err.Error(), Action: ve.Action}
		for _, f := range ve.Fields {
			w.Fields = append(w.Fields, protocol.FieldError{Field: f.Field, Message: f.Message})
		}
		return w
	case errors.As(err, &ne):
		return &protocol.Error{Kind: protocol.KindActionNotFound, Message: err.Error(), Action: ne.Action, Available: ne.Available, Suggestion: ne.Suggestion}
	case errors.As(err, &xe):
		w := &protocol.Error{Kind: protocol.KindExecution, Message: xe.Err.Error(), Action: xe.Action, JobID: xe.JobID, Stack: xe.Stack, Panic: xe.Panicked()}
		switch {
		case errors.Is(err, context.Canceled):
			w.Cause = "canceled"
		case errors.Is(err, context.DeadlineExceeded):
			w.Cause = "deadline_exceeded"
		}
		return w
	}
	return &protocol.Error{Kind: protocol.KindExecution, Message: err.Error()}
}

// CauseWorkerExited is the cause of an execution error a worker's host
// reports for a run whose worker process died mid-run (the task-mode
// host's synapse_bridge.py); FromError makes it match ErrWorkerLost.
const CauseWorkerExited = "worker_exited"

// ErrWorkerLost matches a run whose worker process died before the run
// ended (ray.ErrWorkerLost is this value).
var ErrWorkerLost = errors.New("task worker lost")

// remoteError is an action's error as reported by another process: only its
// message survives the trip.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return e.msg }

// FromError rebuilds the typed error of a protocol error: the same
// error types as a run in this process, with the message of an action's
// own error (its type does not survive the trip).
func FromError(w *protocol.Error) error {
	switch w.Kind {
	case protocol.KindValidation:
		ve := &synapse.ValidationError{Action: w.Action}
		for _, f := range w.Fields {
			ve.Fields = append(ve.Fields, synapse.FieldError{Field: f.Field, Message: f.Message})
		}
		return ve
	case protocol.KindActionNotFound:
		return &synapse.ActionNotFoundError{Action: w.Action, Available: w.Available, Suggestion: w.Suggestion}
	case protocol.KindExecution:
		var inner error = &remoteError{msg: w.Message}
		if w.Panic {
			inner = &synapse.PanicError{Value: remotePanic(w.Message)}
		}
		switch w.Cause {
		case "canceled":
			inner = WrapCause(context.Canceled, inner)
		case "deadline_exceeded":
			inner = WrapCause(context.DeadlineExceeded, inner)
		case CauseWorkerExited:
			inner = WrapCause(ErrWorkerLost, inner)
		}
		return &synapse.ExecutionError{Action: w.Action, JobID: w.JobID, Err: inner, Stack: w.Stack}
	}
	return &synapse.ExecutionError{Action: w.Action, Err: &remoteError{msg: w.Kind + ": " + w.Message}}
}

// remotePanic is the panic value of a panic in another process: its text.
type remotePanic string

func (p remotePanic) String() string {
	const prefix = "panic: "
	s := string(p)
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}

// causeError keeps a cancellation cause beside a message that may already
// mention it, without repeating it.
type causeError struct {
	cause error
	err   error
}

func (e *causeError) Error() string   { return e.err.Error() }
func (e *causeError) Unwrap() []error { return []error{e.cause, e.err} }

// WrapCause returns err marked with a cancellation cause (errors.Is
// matches both) whose message is err's alone.
func WrapCause(cause, err error) error {
	if ce, ok := err.(*causeError); ok { // a cause already there is replaced
		return &causeError{cause: cause, err: ce.err}
	}
	return &causeError{cause: cause, err: err}
}

// Rename returns err with the action name entry (the binary's action that
// ran) replaced by action (the name the caller asked for), so errors name
// the same action in every mode.
func Rename(err error, entry, action string) error {
	if entry == action {
		return err
	}
	var (
		ve *synapse.ValidationError
		xe *synapse.ExecutionError
		ne *synapse.ActionNotFoundError
	)
	switch {
	case errors.As(err, &ve) && ve.Action == entry:
		ve.Action = action
	case errors.As(err, &xe) && xe.Action == entry:
		xe.Action = action
	case errors.As(err, &ne) && ne.Action == entry:
		ne.Action = action
	}
	return err
}
