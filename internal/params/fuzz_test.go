package params

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

type fuzzOptimizer struct {
	Name  string    `json:"name" default:"adam" validate:"oneof=adam sgd"`
	LR    float64   `json:"lr" default:"0.01" validate:"gt=0,lt=1"`
	Betas []float64 `json:"betas" validate:"max=3"`
}

type FuzzCommon struct {
	Debug bool `json:"debug"`
	Level int  `json:"level" default:"1" validate:"min=0,max=5"`
}

// fuzzParams has one field of most kinds a params type uses: scalars,
// durations, slices, maps, pointers, untyped values, a nested struct and an
// embedded one, with defaults and validate tags.
type fuzzParams struct {
	FuzzCommon
	Epochs    int               `json:"epochs" default:"10" validate:"min=1,max=1000"`
	Model     string            `json:"model" default:"small" validate:"required,oneof=small large"`
	Ratio     float32           `json:"ratio" validate:"gte=0,lte=1"`
	Count     uint8             `json:"count"`
	Verbose   bool              `json:"verbose" default:"true"`
	Timeout   time.Duration     `json:"timeout" default:"1s"`
	Tags      []string          `json:"tags" default:"a,b" validate:"max=5,dive,min=1"`
	Labels    map[string]string `json:"labels" default:"{\"env\":\"dev\"}"`
	Seed      *int              `json:"seed" default:"42"`
	Email     string            `json:"email" validate:"omitempty,email"`
	Meta      map[string]any    `json:"meta"`
	Optimizer fuzzOptimizer     `json:"optimizer"`
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		``,
		`null`,
		`{}`,
		`{"epochs": 5, "model": "large", "ratio": 0.5, "count": 3, "verbose": false, "timeout": 2000000000}`,
		`{"tags": ["x", "y"], "labels": {"team": "ml"}, "seed": 7, "email": "a@example.com"}`,
		`{"tags": [], "labels": {}, "seed": null, "labels": null, "tags": null}`,
		`{"meta": {"a": [1, 2.5, "x", null, true, {"b": {}}]}}`,
		`{"optimizer": {"name": "sgd", "lr": 0.5, "betas": [0.9, 0.99]}}`,
		`{"optimizer": {"lr": 0}}`,
		`{"optimizer": {"nme": "sgd"}}`,
		`{"optimizer": null, "debug": true, "level": 3}`,
		`{"epoch": 5}`,
		`{"zeta": 1, "alpha": 2}`,
		`{"EPOCHS": 3, "Model": "large"}`,
		`{"epochs": "abc", "ratio": true, "count": -1, "timeout": "1m"}`,
		`{"tags": [1, 2], "labels": {"a": 1}, "seed": "x"}`,
		`{"epochs": 0, "model": "medium", "email": "nope", "level": 9}`,
		`{"epochs": 1e400, "count": 256, "ratio": 1e39}`,
		`{"epochs": 2,}`,
		`{"epochs": 2} {"epochs": 3}`,
		`{"epochs"`,
		`[1, 2]`,
		`"params"`,
		`42`,
		"{\n  \"epochs\": 3,\n  \"model\" \"large\"\n}",
		"{\"model\": \"\xff\xfe\"}",
		`{"meta": {"x": "\u0000\ud800"}}`,
	} {
		f.Add([]byte(seed))
	}
	c, err := NewCodec(reflect.TypeFor[fuzzParams]())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p fuzzParams
		if err := c.Decode(data, &p); err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode(%q) returned %T %v, want *Error", data, err, err)
			}
			if len(pe.Fields) == 0 {
				t.Fatalf("Decode(%q) returned an *Error without fields", data)
			}
			for _, fe := range pe.Fields {
				if fe.Message == "" {
					t.Fatalf("Decode(%q): field %q has an empty message (all: %q)", data, fe.Field, pe.Fields)
				}
			}
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("Decode(%q) = %+v, which does not encode: %v", data, p, err)
		}
		var q fuzzParams
		if err := c.Decode(again, &q); err != nil {
			t.Fatalf("Decode(%q) = %+v, but its encoding %s is rejected: %v", data, p, again, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip of %q changed the value:\n first  %+v\n encoded %s\n second %+v", data, p, again, q)
		}
	})
}
