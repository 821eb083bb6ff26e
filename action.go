package synapse

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"

	"github.com/synapse-sdk/synapse-go/internal/params"
)

// Action is a named unit of plugin work with typed, validated params. Create
// one with NewAction; run it with an Executor.
type Action interface {
	// Name is the name the action is run by ("train").
	Name() string
	// Description is a one-line summary for listings.
	Description() string
	// Schema is the JSON Schema (draft 2020-12) of the action's params.
	Schema() json.RawMessage
	// Decode checks params the way a run would, without running the action.
	// It returns nil or a *ValidationError.
	Decode(params any) error
	// ParamsType and ResultType are the action's P and R, for code that
	// wires actions together (package pipeline checks that each action's
	// params are provided by the ones before it).
	ParamsType() reflect.Type
	ResultType() reflect.Type

	// invoke decodes params and calls the action. A *ValidationError comes
	// back as verr (the action did not run); what the action returned or
	// panicked with comes back raw as err, for the executor to wrap.
	invoke(c *Context, params any) (result any, verr, err error)
}

// ActionOption configures an action created by NewAction.
type ActionOption func(*actionConfig)

type actionConfig struct {
	description string
}

// WithDescription sets the action's one-line description.
func WithDescription(text string) ActionOption {
	return func(c *actionConfig) { c.description = text }
}

// NewAction defines an action named name that runs fn.
//
// P is normally a struct decoded from JSON: `json` tags name its fields,
// `default:"…"` gives the value of an absent field, `validate:"…"` constrains
// values (go-playground/validator syntax: required, min=1, max=1000,
// oneof=a b, …) and `description:"…"` documents the field in the schema.
// Unknown fields are rejected. If *P has a `Validate() error` method it runs
// after the tags. P may also be map[string]any or json.RawMessage for an
// untyped action. R may be any JSON-encodable type.
//
// NewAction panics if a `default` tag of P cannot be parsed into its field:
// that is a bug in the params type, best found when the program starts.
func NewAction[P, R any](name string, fn func(ctx *Context, params P) (R, error), opts ...ActionOption) Action {
	cfg := actionConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	codec, err := params.NewCodec(reflect.TypeFor[P]())
	if err != nil {
		panic(fmt.Sprintf("synapse: NewAction(%q): params type %v: %v", name, reflect.TypeFor[P](), err))
	}
	a := &typedAction[P, R]{name: name, description: cfg.description, fn: fn, codec: codec}
	a.schema = sync.OnceValue(func() json.RawMessage { return codec.Schema(name, cfg.description) })
	return a
}

type typedAction[P, R any] struct {
	name        string
	description string
	fn          func(*Context, P) (R, error)
	codec       *params.Codec
	schema      func() json.RawMessage
}

func (a *typedAction[P, R]) Name() string             { return a.name }
func (a *typedAction[P, R]) ParamsType() reflect.Type { return reflect.TypeFor[P]() }
func (a *typedAction[P, R]) ResultType() reflect.Type { return reflect.TypeFor[R]() }
func (a *typedAction[P, R]) Description() string      { return a.description }
func (a *typedAction[P, R]) Schema() json.RawMessage  { return a.schema() }

func (a *typedAction[P, R]) Decode(params any) error {
	_, err := a.decode(params)
	return err
}

// decode turns any accepted params form into a validated P.
func (a *typedAction[P, R]) decode(in any) (P, error) {
	var p P
	var data []byte
	switch x := in.(type) {
	case P:
		p = x
		if err := a.codec.Validate(&p); err != nil {
			return p, a.validationError(err)
		}
		return p, a.runValidateMethod(&p)
	case *P:
		if x != nil {
			p = *x
			if err := a.codec.Validate(&p); err != nil {
				return p, a.validationError(err)
			}
			return p, a.runValidateMethod(&p)
		}
		data = []byte("{}")
	default:
		b, err := params.JSON(in)
		if err != nil {
			return p, &ValidationError{Action: a.name, Fields: []FieldError{{Message: "params cannot be encoded as JSON: " + err.Error()}}}
		}
		data = b
		if data == nil {
			data = []byte("{}")
		}
	}
	if err := a.codec.Decode(data, &p); err != nil {
		return p, a.validationError(err)
	}
	return p, a.runValidateMethod(&p)
}

func (a *typedAction[P, R]) validationError(err error) error {
	var pe *params.Error
	if !errors.As(err, &pe) {
		return &ValidationError{Action: a.name, Fields: []FieldError{{Message: err.Error()}}}
	}
	fields := make([]FieldError, len(pe.Fields))
	for i, f := range pe.Fields {
		fields[i] = FieldError{Field: f.Field, Message: f.Message}
	}
	return &ValidationError{Action: a.name, Fields: fields}
}

// runValidateMethod calls P's Validate method, if it has one. The method may
// return a *ValidationError or FieldError to name the failing fields.
func (a *typedAction[P, R]) runValidateMethod(p *P) error {
	v, ok := any(p).(interface{ Validate() error })
	if !ok {
		return nil
	}
	err := v.Validate()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return &ValidationError{Action: a.name, Fields: ve.Fields, Err: err}
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return &ValidationError{Action: a.name, Fields: []FieldError{fe}, Err: err}
	}
	return &ValidationError{Action: a.name, Fields: []FieldError{{Message: err.Error()}}, Err: err}
}

// Error makes FieldError usable as the error of a Validate method.
func (f FieldError) Error() string { return f.String() }

func (a *typedAction[P, R]) invoke(c *Context, in any) (any, error, error) {
	p, verr := a.decode(in)
	if verr != nil {
		return nil, verr, nil
	}
	if err := c.Err(); err != nil {
		return nil, nil, err
	}
	result, err := a.call(c, p)
	return result, nil, err
}

// call runs fn in the caller's goroutine, turning a panic into a
// *PanicError that keeps the stack.
func (a *typedAction[P, R]) call(c *Context, p P) (result any, err error) {
	defer func() {
		if v := recover(); v != nil {
			result = nil
			err = &panicked{PanicError: &PanicError{Value: v}, stack: string(debug.Stack())}
		}
	}()
	r, err := a.fn(c, p)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// panicked carries the stack of a recovered panic to the executor.
type panicked struct {
	*PanicError
	stack string
}
