package synapse

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels for errors.Is. Every error the executors return for these
// classes is a typed error (ValidationError, ExecutionError,
// ActionNotFoundError) that matches its sentinel.
var (
	// ErrValidation matches a *ValidationError: params were rejected before the action ran.
	ErrValidation = errors.New("invalid params")
	// ErrExecution matches an *ExecutionError: the action ran and failed, panicked or was cancelled.
	ErrExecution = errors.New("action failed")
	// ErrActionNotFound matches an *ActionNotFoundError.
	ErrActionNotFound = errors.New("action not found")
)

// FieldError is one rejected param. Field is the dotted JSON path of the
// param ("optimizer.lr"), or empty when the whole params document is at
// fault (for example invalid JSON).
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String returns "field: message", or the message alone when there is no field.
func (f FieldError) String() string {
	if f.Field == "" {
		return f.Message
	}
	return f.Field + ": " + f.Message
}

// ValidationError reports params rejected before the action ran: bad JSON, a
// wrong type, an unknown field, a failed `validate` rule or a failed
// Validate method. It lists every failing field.
type ValidationError struct {
	Action string       `json:"action"`
	Fields []FieldError `json:"fields"`
	// Err is the error returned by the params' Validate method, if that is
	// what failed.
	Err error `json:"-"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return fmt.Sprintf("validate params of action %q: %s", e.Action, strings.Join(parts, "; "))
}

// Is reports whether target is ErrValidation.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// Unwrap returns the error of the params' Validate method, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

// ExecutionError reports an action that returned an error, panicked or was
// cancelled. errors.Is reaches the action's own error, and
// context.Canceled / context.DeadlineExceeded for a cancelled run.
type ExecutionError struct {
	Action string `json:"action"`
	JobID  string `json:"job_id,omitempty"`
	Err    error  `json:"-"`
	// Stack is the goroutine stack at the panic; empty unless the action panicked.
	Stack string `json:"stack,omitempty"`
}

func (e *ExecutionError) Error() string {
	if e.Action == "" {
		if e.JobID != "" {
			return fmt.Sprintf("run job %s: %v", e.JobID, e.Err)
		}
		return fmt.Sprintf("run action: %v", e.Err)
	}
	return fmt.Sprintf("run action %q: %v", e.Action, e.Err)
}

// Is reports whether target is ErrExecution.
func (e *ExecutionError) Is(target error) bool { return target == ErrExecution }

// Unwrap returns the action's error.
func (e *ExecutionError) Unwrap() error { return e.Err }

// Panicked reports whether the action panicked.
func (e *ExecutionError) Panicked() bool {
	var p *PanicError
	return errors.As(e.Err, &p)
}

// PanicError is the Err of an ExecutionError for an action that panicked.
// Value is what the action panicked with.
type PanicError struct {
	Value any
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Unwrap returns the panic value when it is an error, so errors.Is reaches it.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// ActionNotFoundError reports a request for an action that does not exist.
// Available lists the actions that do.
type ActionNotFoundError struct {
	Action    string   `json:"action"`
	Available []string `json:"available"`
	// Suggestion is the available action closest to Action, if one is close.
	Suggestion string `json:"suggestion,omitempty"`
}

func (e *ActionNotFoundError) Error() string {
	msg := fmt.Sprintf("find action %q: no such action", e.Action)
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	if len(e.Available) == 0 {
		return msg + "; there are no actions"
	}
	return msg + "; available: " + strings.Join(e.Available, ", ")
}

// Is reports whether target is ErrActionNotFound.
func (e *ActionNotFoundError) Is(target error) bool { return target == ErrActionNotFound }

// ErrInterrupted marks a run stopped by the user (Ctrl-C). A run cancelled
// any other way is an ordinary failure.
var ErrInterrupted = errors.New("interrupted")

// ErrJobStopped matches the error of a job that was stopped before it
// finished (Job.Result).
var ErrJobStopped = errors.New("job stopped")
