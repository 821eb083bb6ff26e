package params

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- helpers ---------------------------------------------------------------

func newCodec[T any](t *testing.T) *Codec {
	t.Helper()
	c, err := NewCodec(reflect.TypeFor[T]())
	if err != nil {
		t.Fatalf("NewCodec(%v): %v", reflect.TypeFor[T](), err)
	}
	return c
}

// fieldErrors returns the FieldErrors of err, failing the test if err is
// neither nil nor a *Error.
func fieldErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	return pe.Fields
}

func checkFields(t *testing.T, in string, got, want []FieldError) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decode %s:\n got  %q\n want %q", in, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

// ---- types -----------------------------------------------------------------

type trainOptimizer struct {
	Name     string  `json:"name" default:"adam" validate:"oneof=adam sgd"`
	LR       float64 `json:"lr" default:"0.001" validate:"gt=0,lt=1"`
	Momentum float64 `json:"momentum"`
}

type trainParams struct {
	Epochs    int               `json:"epochs" default:"10" validate:"min=1,max=1000"`
	Rate      float64           `json:"rate" default:"0.5"`
	Model     string            `json:"model" default:"small"`
	Verbose   bool              `json:"verbose" default:"true"`
	Timeout   time.Duration     `json:"timeout" default:"1m30s"`
	Tags      []string          `json:"tags" default:"a, b,c"`
	Sizes     []int             `json:"sizes" default:"[1, 2, 3]"`
	Labels    map[string]string `json:"labels" default:"{\"env\": \"dev\"}"`
	Seed      *int              `json:"seed" default:"42"`
	Note      *string           `json:"note" default:"hello"`
	Optimizer trainOptimizer    `json:"optimizer"`
}

func trainDefaults() trainParams {
	return trainParams{
		Epochs:    10,
		Rate:      0.5,
		Model:     "small",
		Verbose:   true,
		Timeout:   90 * time.Second,
		Tags:      []string{"a", "b", "c"},
		Sizes:     []int{1, 2, 3},
		Labels:    map[string]string{"env": "dev"},
		Seed:      ptr(42),
		Note:      ptr("hello"),
		Optimizer: trainOptimizer{Name: "adam", LR: 0.001},
	}
}

type smallOpt struct {
	Name string  `json:"name"`
	LR   float64 `json:"lr" validate:"gte=0"`
}

type smallParams struct {
	Epochs    int      `json:"epochs" default:"1" validate:"min=1"`
	LR        float64  `json:"lr"`
	Optimizer smallOpt `json:"optimizer"`
}

const smallValid = "valid fields: epochs, lr, optimizer"

// ---- defaults --------------------------------------------------------------

func TestDefaultsApplied(t *testing.T) {
	c := newCodec[trainParams](t)
	for _, in := range []string{`{}`, ``, "  \n\t", `null`, " null \n", `{"optimizer": {}}`, `{"optimizer": null}`} {
		var p trainParams
		if err := c.Decode([]byte(in), &p); err != nil {
			t.Fatalf("decode %q: %v", in, err)
		}
		if want := trainDefaults(); !reflect.DeepEqual(p, want) {
			t.Errorf("decode %q:\n got  %+v\n want %+v", in, p, want)
		}
	}
}

func TestDefaultsOverwriteDestination(t *testing.T) {
	c := newCodec[trainParams](t)
	p := trainParams{Epochs: 999, Model: "stale", Tags: []string{"stale"}, Labels: map[string]string{"stale": "1"}}
	if err := c.Decode([]byte(`{}`), &p); err != nil {
		t.Fatal(err)
	}
	if want := trainDefaults(); !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v, want %+v", p, want)
	}
}

func TestExplicitValueOverridesDefault(t *testing.T) {
	c := newCodec[trainParams](t)
	tests := []struct {
		in   string
		edit func(p *trainParams)
	}{
		{`{"epochs": 3}`, func(p *trainParams) { p.Epochs = 3 }},
		{`{"rate": 0}`, func(p *trainParams) { p.Rate = 0 }},
		{`{"model": ""}`, func(p *trainParams) { p.Model = "" }},
		{`{"verbose": false}`, func(p *trainParams) { p.Verbose = false }},
		{`{"timeout": 5000000000}`, func(p *trainParams) { p.Timeout = 5 * time.Second }},
		{`{"tags": ["x"]}`, func(p *trainParams) { p.Tags = []string{"x"} }},
		{`{"tags": []}`, func(p *trainParams) { p.Tags = []string{} }},
		{`{"tags": null}`, func(p *trainParams) { p.Tags = nil }},
		{`{"sizes": [9, 8, 7, 6]}`, func(p *trainParams) { p.Sizes = []int{9, 8, 7, 6} }},
		// A given object replaces the default map; it is not merged into it.
		{`{"labels": {"team": "ml"}}`, func(p *trainParams) { p.Labels = map[string]string{"team": "ml"} }},
		{`{"labels": {}}`, func(p *trainParams) { p.Labels = map[string]string{} }},
		{`{"labels": null}`, func(p *trainParams) {}}, // null map: the default
		{`{"seed": 7}`, func(p *trainParams) { p.Seed = ptr(7) }},
		{`{"seed": null}`, func(p *trainParams) { p.Seed = nil }},
		{`{"note": "bye"}`, func(p *trainParams) { p.Note = ptr("bye") }},
		// Nested: given fields override, absent ones keep their defaults.
		{`{"optimizer": {"momentum": 0.9}}`, func(p *trainParams) { p.Optimizer.Momentum = 0.9 }},
		{`{"optimizer": {"name": "sgd", "lr": 0.5}}`, func(p *trainParams) { p.Optimizer = trainOptimizer{Name: "sgd", LR: 0.5} }},
		{`{"epochs": 2, "model": "big", "optimizer": {"lr": 0.1}}`, func(p *trainParams) {
			p.Epochs, p.Model, p.Optimizer.LR = 2, "big", 0.1
		}},
	}
	for _, tt := range tests {
		var got trainParams
		if err := c.Decode([]byte(tt.in), &got); err != nil {
			t.Errorf("decode %s: %v", tt.in, err)
			continue
		}
		want := trainDefaults()
		tt.edit(&want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decode %s:\n got  %+v\n want %+v", tt.in, got, want)
		}
	}
}

func TestDefaultsMap(t *testing.T) {
	c := newCodec[trainParams](t)
	d := c.Defaults()
	var keys []string
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"epochs", "labels", "model", "note", "optimizer.lr", "optimizer.name", "rate", "seed", "sizes", "tags", "timeout", "verbose"}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("Defaults() keys = %q, want %q", keys, wantKeys)
	}
	checks := map[string]any{
		"epochs":         10,
		"rate":           0.5,
		"model":          "small",
		"verbose":        true,
		"timeout":        90 * time.Second,
		"tags":           []string{"a", "b", "c"},
		"sizes":          []int{1, 2, 3},
		"labels":         map[string]string{"env": "dev"},
		"optimizer.name": "adam",
		"optimizer.lr":   0.001,
	}
	for k, want := range checks {
		if !reflect.DeepEqual(d[k], want) {
			t.Errorf("Defaults()[%q] = %#v, want %#v", k, d[k], want)
		}
	}
	if p, ok := d["seed"].(*int); !ok || p == nil || *p != 42 {
		t.Errorf("Defaults()[seed] = %#v, want pointer to 42", d["seed"])
	}
	if p, ok := d["note"].(*string); !ok || p == nil || *p != "hello" {
		t.Errorf("Defaults()[note] = %#v, want pointer to hello", d["note"])
	}
}

func TestDefaultsInEmbeddedStruct(t *testing.T) {
	c := newCodec[embedParams](t)
	var p embedParams
	if err := c.Decode([]byte(`{}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Seed != 7 || p.Extra != nil || p.Name != "" {
		t.Errorf("got %+v, want Seed 7 and no Extra", p)
	}
	if got := c.Defaults()["seed"]; got != 7 {
		t.Errorf("Defaults()[seed] = %#v, want 7 (promoted path)", got)
	}
}

// Decodes share nothing: mutating a decoded slice, map or pointer never
// changes what the next decode gets. Run with -race.
func TestConcurrentDecodesDoNotShareDefaults(t *testing.T) {
	c := newCodec[trainParams](t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				var p trainParams
				if err := c.Decode([]byte(`{"epochs": 5}`), &p); err != nil {
					t.Errorf("goroutine %d decode %d: %v", g, i, err)
					return
				}
				want := trainDefaults()
				want.Epochs = 5
				if !reflect.DeepEqual(p, want) {
					t.Errorf("goroutine %d decode %d: got %+v, want %+v", g, i, p, want)
					return
				}
				p.Tags[0] = "mutated"
				p.Tags = append(p.Tags, "more")
				p.Sizes[1] = -1
				p.Labels["env"] = "mutated"
				p.Labels["extra"] = "x"
				*p.Seed = -1
				*p.Note = "mutated"
			}
		}()
	}
	wg.Wait()

	// And sequentially, after all that mutation.
	var p trainParams
	if err := c.Decode(nil, &p); err != nil {
		t.Fatal(err)
	}
	if want := trainDefaults(); !reflect.DeepEqual(p, want) {
		t.Errorf("after mutation: got %+v, want %+v", p, want)
	}
	if got := c.Defaults()["tags"]; !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("Defaults()[tags] changed: %#v", got)
	}
}

type badEmbedded struct {
	N int `json:"n" default:"x"`
}

func TestInvalidDefaultFailsNewCodec(t *testing.T) {
	tests := []struct {
		name  string
		typ   reflect.Type
		field string
		raw   string
	}{
		{"int", reflect.TypeOf(struct {
			N int `json:"n" default:"abc"`
		}{}), "n", "abc"},
		{"float", reflect.TypeOf(struct {
			F float64 `json:"rate" default:"fast"`
		}{}), "rate", "fast"},
		{"bool", reflect.TypeOf(struct {
			B bool `json:"on" default:"yes"`
		}{}), "on", "yes"},
		{"duration", reflect.TypeOf(struct {
			D time.Duration `json:"wait" default:"soon"`
		}{}), "wait", "soon"},
		{"int slice as comma list", reflect.TypeOf(struct {
			S []int `json:"sizes" default:"1,2"`
		}{}), "sizes", "1,2"},
		{"map", reflect.TypeOf(struct {
			M map[string]int `json:"m" default:"{"`
		}{}), "m", "{"},
		{"pointer", reflect.TypeOf(struct {
			P *int `json:"p" default:"x"`
		}{}), "p", "x"},
		{"no json tag", reflect.TypeOf(struct {
			Count uint `default:"-1"`
		}{}), "Count", "-1"},
		{"nested", reflect.TypeOf(struct {
			Opt struct {
				LR float64 `json:"lr" default:"high"`
			} `json:"optimizer"`
		}{}), "optimizer.lr", "high"},
		{"embedded", reflect.TypeOf(struct{ badEmbedded }{}), "n", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCodec(tt.typ)
			if err == nil {
				t.Fatalf("NewCodec succeeded (%v), want an error", c)
			}
			want := "field " + tt.field + ": invalid default \"" + tt.raw + "\": "
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

// ---- unknown fields ----------------------------------------------------------

func TestUnknownFields(t *testing.T) {
	c := newCodec[smallParams](t)
	unknown := func(field, hint string) FieldError {
		if hint != "" {
			hint = `did you mean "` + hint + `"? `
		}
		return FieldError{Field: field, Message: "unknown field (" + hint + smallValid + ")"}
	}
	tests := []struct {
		in   string
		want []FieldError
	}{
		{`{"epoch": 3}`, []FieldError{unknown("epoch", "epochs")}},
		{`{"optimzer": {}}`, []FieldError{unknown("optimzer", "optimizer")}},
		{`{"bogus": 1}`, []FieldError{unknown("bogus", "")}},
		{`{"zeta": 1, "alpha": 2, "epochs": 3}`, []FieldError{unknown("alpha", ""), unknown("zeta", "")}},
		{`{"lrr": 1, "epoch": 2, "bogus": true}`, []FieldError{unknown("bogus", ""), unknown("epoch", "epochs"), unknown("lrr", "lr")}},
		// Unknown fields are reported with the other errors, sorted by field.
		{`{"epoch": 1, "lr": "x"}`, []FieldError{unknown("epoch", "epochs"), {"lr", `must be a number (got "x")`}}},
		{`{"epochs": 0, "bogus": 1}`, []FieldError{unknown("bogus", ""), {"epochs", "must be >= 1 (got 0)"}}},
		// Nested unknown field.
		{`{"optimizer": {"nam": "x"}}`, []FieldError{{"optimizer", `unknown field "nam"`}}},
	}
	for _, tt := range tests {
		var p smallParams
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), tt.want)
	}
}

type noParams struct {
	hidden int // unexported: not a param
}

var _ = noParams{hidden: 0} // the field exists only to show it is not a param

func TestNoParams(t *testing.T) {
	c := newCodec[noParams](t)
	if len(c.Names()) != 0 {
		t.Errorf("Names() = %q, want none", c.Names())
	}
	var p noParams
	for _, in := range []string{``, `{}`, `null`} {
		if err := c.Decode([]byte(in), &p); err != nil {
			t.Errorf("decode %q: %v", in, err)
		}
	}
	in := `{"b": 1, "a": 2, "hidden": 3}`
	want := []FieldError{
		{"a", "unknown field (this action takes no params)"},
		{"b", "unknown field (this action takes no params)"},
		{"hidden", "unknown field (this action takes no params)"},
	}
	checkFields(t, in, fieldErrors(t, c.Decode([]byte(in), &p)), want)
}

// Keys match fields the way encoding/json matches them (exact first, then
// case-insensitively), whether or not another field is bad.
func TestCaseInsensitiveKeys(t *testing.T) {
	c := newCodec[smallParams](t)
	var p smallParams
	if err := c.Decode([]byte(`{"EPOCHS": 5, "Optimizer": {"NAME": "x"}}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Epochs != 5 || p.Optimizer.Name != "x" {
		t.Errorf("got %+v, want epochs 5, optimizer.name x", p)
	}
	tests := []struct {
		in   string
		want []FieldError
	}{
		{`{"Epochs": "x"}`, []FieldError{{"epochs", `must be an integer (got "x")`}}},
		{`{"EPOCHS": 0, "lr": "x"}`, []FieldError{{"epochs", "must be >= 1 (got 0)"}, {"lr", `must be a number (got "x")`}}},
	}
	for _, tt := range tests {
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), tt.want)
	}
	if errs := c.CheckKeys(map[string]any{"EPOCHS": 1, "Lr": 2}); errs != nil {
		t.Errorf("CheckKeys = %q, want none (Decode accepts these keys)", errs)
	}
}

// ---- type errors -------------------------------------------------------------

type typeParams struct {
	Count  int               `json:"count"`
	Size   uint              `json:"size"`
	Ratio  float64           `json:"ratio"`
	Name   string            `json:"name"`
	On     bool              `json:"on"`
	Wait   time.Duration     `json:"wait"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	Ptr    *int              `json:"ptr"`
	Opt    smallOpt          `json:"optimizer"`
}

func TestTypeErrors(t *testing.T) {
	c := newCodec[typeParams](t)
	long := `{"k": "` + strings.Repeat("x", 60) + `"}`
	tests := []struct {
		in   string
		want []FieldError
	}{
		{`{"count": "abc"}`, []FieldError{{"count", `must be an integer (got "abc")`}}},
		{`{"count": 1.5}`, []FieldError{{"count", "must be an integer (got 1.5)"}}},
		{`{"count": 1e400}`, []FieldError{{"count", "must be an integer (got 1e400)"}}},
		{`{"size": -1}`, []FieldError{{"size", "must be a non-negative integer (got -1)"}}},
		{`{"ratio": "x"}`, []FieldError{{"ratio", `must be a number (got "x")`}}},
		{`{"name": 5}`, []FieldError{{"name", "must be a string (got 5)"}}},
		{`{"on": "yes"}`, []FieldError{{"on", `must be a boolean (got "yes")`}}},
		{`{"wait": "2s"}`, []FieldError{{"wait", `must be an integer number of nanoseconds (got "2s")`}}},
		{`{"tags": "a,b"}`, []FieldError{{"tags", `must be an array (got "a,b")`}}},
		{`{"tags": ["a", 1]}`, []FieldError{{"tags", "every item must be a string (got number)"}}},
		{`{"labels": []}`, []FieldError{{"labels", "must be an object (got [])"}}},
		{`{"labels": {"a": 1}}`, []FieldError{{"labels", "every value must be a string (got number)"}}},
		{`{"ptr": "x"}`, []FieldError{{"ptr", `must be an integer (got "x")`}}},
		{`{"optimizer": 5}`, []FieldError{{"optimizer", "must be an object (got 5)"}}},
		{`{"optimizer": {"lr": "fast"}}`, []FieldError{{"optimizer.lr", "must be a number (got string)"}}},
		{`{"name": ` + long + `}`, []FieldError{{"name", `must be a string (got {"k": "` + strings.Repeat("x", 33) + "…)"}}},
		// Every bad field is reported, sorted, not only the first.
		{`{"ratio": "b", "on": 0, "count": "a", "name": 1, "size": 2}`, []FieldError{
			{"count", `must be an integer (got "a")`},
			{"name", "must be a string (got 1)"},
			{"on", "must be a boolean (got 0)"},
			{"ratio", `must be a number (got "b")`},
		}},
	}
	for _, tt := range tests {
		var p typeParams
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), tt.want)
	}
}

type dupParams struct {
	Count int      `json:"count" validate:"min=1"`
	Tags  []string `json:"tags" validate:"dive,min=2"`
	Level int      `json:"level" default:"1" validate:"max=3"`
}

func TestTypeAndValidationErrors(t *testing.T) {
	c := newCodec[dupParams](t)
	tests := []struct {
		in   string
		want []FieldError
	}{
		// count stays 0, which also fails min=1: reported once, as a type error.
		{`{"count": "x"}`, []FieldError{{"count", `must be an integer (got "x")`}}},
		// tags[1] stays "", which fails the dive rule: not reported.
		{`{"count": 2, "tags": ["abc", 7]}`, []FieldError{{"tags", "every item must be a string (got number)"}}},
		// A type error and a validation error on other fields: both reported.
		{`{"count": "x", "level": 9}`, []FieldError{{"count", `must be an integer (got "x")`}, {"level", "must be <= 3 (got 9)"}}},
		{`{"count": 0, "level": "x"}`, []FieldError{{"count", "must be >= 1 (got 0)"}, {"level", `must be an integer (got "x")`}}},
		{`{"count": 2, "tags": ["abc", "d"], "level": true}`, []FieldError{{"level", "must be an integer (got true)"}, {"tags[1]", "must be at least 2 characters long (got 1)"}}},
	}
	for _, tt := range tests {
		var p dupParams
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), tt.want)
	}
}

// ---- document-level errors -----------------------------------------------

func TestInvalidJSON(t *testing.T) {
	c := newCodec[smallParams](t)
	tests := []struct {
		in, want string
	}{
		{`{"epochs": }`, "invalid JSON at line 1, column 12: invalid character '}' looking for beginning of value"},
		{`{"epochs": 1,}`, "invalid JSON at line 1, column 14: invalid character '}' looking for beginning of object key string"},
		{"{\n  \"lr\": 1,\n  \"epochs\" 2\n}", "invalid JSON at line 3, column 12: invalid character '2' after object key"},
		{"{\n\n\"epochs\": tru}", "invalid JSON at line 3, column 14: invalid character '}' in literal true (expecting 'e')"},
		{`{"epoch": 2} {}`, "invalid JSON at line 1, column 14: invalid character '{' after top-level value"},
	}
	for _, tt := range tests {
		var p smallParams
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), []FieldError{{"", tt.want}})
	}

	// Truncated input: the position is at the end.
	var p smallParams
	errs := fieldErrors(t, c.Decode([]byte(`{"epochs": 1`), &p))
	if len(errs) != 1 || errs[0].Field != "" || !strings.HasPrefix(errs[0].Message, "invalid JSON at line 1, column ") ||
		!strings.HasSuffix(errs[0].Message, "unexpected end of JSON input") {
		t.Errorf("truncated input: got %q", errs)
	}
}

type requiredParams struct {
	Name string `json:"name" validate:"required"`
	N    int    `json:"n" default:"3"`
}

func TestEmptyAndNullMeanEmptyObject(t *testing.T) {
	c := newCodec[requiredParams](t)
	for _, in := range []string{``, "  \n", `null`, " null\n", `{}`} {
		p := requiredParams{N: 99}
		errs := fieldErrors(t, c.Decode([]byte(in), &p))
		checkFields(t, in, errs, []FieldError{{"name", "is required"}})
		if p.N != 3 {
			t.Errorf("decode %q: n = %d, want the default 3", in, p.N)
		}
	}
	var p requiredParams
	if err := c.Decode([]byte(`{"name": "x"}`), &p); err != nil || p != (requiredParams{Name: "x", N: 3}) {
		t.Errorf("got %+v, %v", p, err)
	}
}

func TestNotAnObject(t *testing.T) {
	c := newCodec[smallParams](t)
	tests := []struct{ in, kind string }{
		{`[1, 2]`, "an array"},
		{` []`, "an array"},
		{`"x"`, "a string"},
		{`42`, "a number"},
		{`-1.5`, "a number"},
		{`true`, "a boolean"},
		{`false`, "a boolean"},
	}
	for _, tt := range tests {
		var p smallParams
		want := []FieldError{{"", "params must be a JSON object (got " + tt.kind + ")"}}
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), want)
	}
}

func TestTrailingData(t *testing.T) {
	c := newCodec[smallParams](t)
	for _, in := range []string{`{"epochs": 2} {"epochs": 3}`, `{"epochs": 2} x`, `{"epochs": 2}]`, `{} null`, "{}\n{}"} {
		var p smallParams
		want := []FieldError{{"", "unexpected data after the params object"}}
		checkFields(t, in, fieldErrors(t, c.Decode([]byte(in), &p)), want)
	}
	var p smallParams
	if err := c.Decode([]byte("\n {\"epochs\": 2}\n\t "), &p); err != nil || p.Epochs != 2 {
		t.Errorf("surrounding whitespace: got %+v, %v", p, err)
	}
}

// ---- validator messages ---------------------------------------------------

type ruleParams struct {
	Req       string   `json:"req" validate:"required"`
	MinI      int      `json:"min_i" validate:"min=1"`
	MaxI      int      `json:"max_i" validate:"max=10"`
	MinF      float64  `json:"min_f" validate:"min=0.5"`
	MaxF      float64  `json:"max_f" validate:"max=1.5"`
	MinS      string   `json:"min_s" validate:"min=3"`
	MaxS      string   `json:"max_s" validate:"max=3"`
	MinL      []int    `json:"min_l" validate:"min=2"`
	MaxL      []int    `json:"max_l" validate:"max=2"`
	Gt        float64  `json:"gt" validate:"gt=0"`
	Lt        int      `json:"lt" validate:"lt=5"`
	GtS       string   `json:"gt_s" validate:"gt=2"`
	One       string   `json:"one" validate:"oneof=adam sgd"`
	OneI      int      `json:"one_i" validate:"oneof=1 2 3"`
	Len       string   `json:"len" validate:"len=4"`
	LenL      []string `json:"len_l" validate:"len=2"`
	Email     string   `json:"email" validate:"email"`
	UUID      string   `json:"uuid" validate:"uuid"`
	Hex       string   `json:"hex" validate:"hexcolor"`
	Excl      string   `json:"excl" validate:"excludes=/"`
	PtrS      *string  `json:"ptr_s" validate:"omitempty,min=3"`
	Optimizer struct {
		LR float64 `json:"lr" validate:"gt=0"`
	} `json:"optimizer"`
}

func validRules() map[string]any {
	return map[string]any{
		"req": "x", "min_i": 1, "max_i": 10, "min_f": 0.5, "max_f": 1.5,
		"min_s": "abc", "max_s": "abc", "min_l": []int{1, 2}, "max_l": []int{1, 2},
		"gt": 0.1, "lt": 4, "gt_s": "abc", "one": "adam", "one_i": 2, "len": "abcd", "len_l": []string{"a", "b"},
		"email": "a@example.com", "uuid": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "hex": "#fff", "excl": "ab",
		"ptr_s": "abc", "optimizer": map[string]any{"lr": 0.1},
	}
}

func TestValidationMessages(t *testing.T) {
	c := newCodec[ruleParams](t)
	var p ruleParams
	base, _ := json.Marshal(validRules())
	if err := c.Decode(base, &p); err != nil {
		t.Fatalf("valid document rejected: %v", err)
	}
	const absent = "<absent>"
	tests := []struct {
		key   string
		value any
		field string
		msg   string
	}{
		{"req", "", "req", `must not be empty (got "")`}, // given, but empty
		{"req", absent, "req", "is required"},
		{"min_i", 0, "min_i", "must be >= 1 (got 0)"},
		{"min_i", -7, "min_i", "must be >= 1 (got -7)"},
		{"max_i", 11, "max_i", "must be <= 10 (got 11)"},
		{"min_f", 0.25, "min_f", "must be >= 0.5 (got 0.25)"},
		{"max_f", 2, "max_f", "must be <= 1.5 (got 2)"},
		{"min_s", "ab", "min_s", "must be at least 3 characters long (got 2)"},
		{"min_s", "hé", "min_s", "must be at least 3 characters long (got 2)"}, // characters, not bytes
		{"max_s", "abcd", "max_s", "must be at most 3 characters long (got 4)"},
		{"min_l", []int{1}, "min_l", "must have at least 2 items (got 1)"},
		{"max_l", []int{1, 2, 3}, "max_l", "must have at most 2 items (got 3)"},
		{"gt", 0, "gt", "must be > 0 (got 0)"},
		{"gt", -1.5, "gt", "must be > 0 (got -1.5)"},
		{"lt", 5, "lt", "must be < 5 (got 5)"},
		{"gt_s", "ab", "gt_s", "must be more than 2 characters long (got 2)"},
		{"one", "x", "one", `must be one of adam, sgd (got "x")`},
		{"one", "", "one", `must be one of adam, sgd (got "")`},
		{"one_i", 4, "one_i", "must be one of 1, 2, 3 (got 4)"},
		{"len", "abc", "len", "must be exactly 4 characters long (got 3)"},
		{"len_l", []string{"a"}, "len_l", "must have exactly 2 items (got 1)"},
		{"email", "nope", "email", `must be a valid email address (got "nope")`},
		{"uuid", "nope", "uuid", `must be a valid UUID (got "nope")`},
		{"hex", "red", "hex", `does not satisfy "hexcolor" (got "red")`},
		{"excl", "a/b", "excl", `does not satisfy "excludes=/" (got "a/b")`},
		{"ptr_s", "ab", "ptr_s", "must be at least 3 characters long (got 2)"},
		{"optimizer", map[string]any{"lr": 0}, "optimizer.lr", "must be > 0 (got 0)"},
		{"optimizer", absent, "optimizer.lr", "must be > 0 (got 0)"},
	}
	for _, tt := range tests {
		doc := validRules()
		if tt.value == absent {
			delete(doc, tt.key)
		} else {
			doc[tt.key] = tt.value
		}
		in, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var p ruleParams
		checkFields(t, tt.key+"="+string(mustJSON(tt.value)), fieldErrors(t, c.Decode(in, &p)), []FieldError{{tt.field, tt.msg}})
	}

	// Several failing rules are all reported.
	doc := validRules()
	doc["min_i"], doc["max_i"], doc["one"] = 0, 11, "x"
	in, _ := json.Marshal(doc)
	errs := fieldErrors(t, c.Decode(in, &p))
	want := []FieldError{{"min_i", "must be >= 1 (got 0)"}, {"max_i", "must be <= 10 (got 11)"}, {"one", `must be one of adam, sgd (got "x")`}}
	checkFields(t, string(in), errs, want)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestValidateDirectly(t *testing.T) {
	c := newCodec[smallParams](t)
	if err := c.Validate(&smallParams{Epochs: 1}); err != nil {
		t.Errorf("valid value: %v", err)
	}
	errs := fieldErrors(t, c.Validate(&smallParams{Epochs: 0, Optimizer: smallOpt{LR: -1}}))
	checkFields(t, "Validate", errs, []FieldError{{"epochs", "must be >= 1 (got 0)"}, {"optimizer.lr", "must be >= 0 (got -1)"}})
}

// Field paths are JSON paths for unnamed struct types too (their validator
// namespace has no type name to strip).
func TestValidationPathsOfUnnamedType(t *testing.T) {
	type opt = struct {
		LR float64 `json:"lr" validate:"gt=0"`
	}
	c, err := NewCodec(reflect.TypeOf(struct {
		N   int `json:"n" validate:"min=1"`
		Opt opt `json:"optimizer"`
	}{}))
	if err != nil {
		t.Fatal(err)
	}
	p := reflect.New(c.typ).Interface()
	in := `{"n": 0, "optimizer": {"lr": 0}}`
	checkFields(t, in, fieldErrors(t, c.Decode([]byte(in), p)), []FieldError{{"n", "must be >= 1 (got 0)"}, {"optimizer.lr", "must be > 0 (got 0)"}})
}

// ---- embedded structs -------------------------------------------------------

type Common struct {
	Seed  int  `json:"seed" default:"7" validate:"min=1"`
	Debug bool `json:"debug"`
}

type Extra struct {
	Level int `json:"level" validate:"max=3"`
}

type embedParams struct {
	Common
	*Extra
	Name string `json:"name"`
}

func TestEmbeddedStructs(t *testing.T) {
	c := newCodec[embedParams](t)
	if got, want := c.Names(), []string{"debug", "level", "name", "seed"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	var p embedParams
	if err := c.Decode([]byte(`{"seed": 3, "debug": true, "level": 2, "name": "n"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Seed != 3 || !p.Debug || p.Extra == nil || p.Level != 2 || p.Name != "n" {
		t.Errorf("got %+v (extra %+v)", p, p.Extra)
	}
	tests := []struct {
		in   string
		want []FieldError
	}{
		{`{"seed": 0}`, []FieldError{{"seed", "must be >= 1 (got 0)"}}},
		{`{"level": 9}`, []FieldError{{"level", "must be <= 3 (got 9)"}}},
		{`{"seed": "x", "name": 1}`, []FieldError{{"name", "must be a string (got 1)"}, {"seed", `must be an integer (got "x")`}}},
		{`{"level": "x", "seed": 0}`, []FieldError{{"level", `must be an integer (got "x")`}, {"seed", "must be >= 1 (got 0)"}}},
		{`{"sed": 1}`, []FieldError{{"sed", `unknown field (did you mean "seed"? valid fields: debug, level, name, seed)`}}},
	}
	for _, tt := range tests {
		var p embedParams
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), tt.want)
	}
}

type shadowParams struct {
	Common
	Seed string `json:"seed"` // hides Common.Seed, as in encoding/json
}

func TestShallowFieldHidesPromotedField(t *testing.T) {
	c := newCodec[shadowParams](t)
	var p shadowParams
	if err := c.Decode([]byte(`{"seed": "abc"}`), &p); err != nil || p.Seed != "abc" {
		t.Fatalf("got %+v, %v", p, err)
	}
	in := `{"seed": 5, "debug": "x"}`
	want := []FieldError{{"debug", `must be a boolean (got "x")`}, {"seed", "must be a string (got 5)"}}
	checkFields(t, in, fieldErrors(t, c.Decode([]byte(in), &p)), want)
}

type hidden struct {
	X int `json:"x"`
}

type hiddenParams struct {
	*hidden
	N int `json:"n"`
}

// encoding/json cannot allocate an embedded pointer to an unexported struct,
// so its fields are not params: they are unknown, and never a panic.
func TestUnexportedEmbeddedPointer(t *testing.T) {
	c := newCodec[hiddenParams](t)
	if got := c.Names(); !slices.Equal(got, []string{"n"}) {
		t.Errorf("Names() = %q, want [n]", got)
	}
	var p hiddenParams
	in := `{"x": 1}`
	checkFields(t, in, fieldErrors(t, c.Decode([]byte(in), &p)), []FieldError{{"x", `unknown field (did you mean "n"? valid fields: n)`}})
	if err := c.Decode([]byte(`{"n": 1}`), &p); err != nil || p.N != 1 {
		t.Errorf("got %+v, %v", p, err)
	}
}

// ---- non-struct params ------------------------------------------------------

func TestNonStructParams(t *testing.T) {
	t.Run("map", func(t *testing.T) {
		c := newCodec[map[string]any](t)
		var m map[string]any
		if err := c.Decode([]byte(`{"anything": [1, "x"], "n": null}`), &m); err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"anything": []any{1.0, "x"}, "n": nil}; !reflect.DeepEqual(m, want) {
			t.Errorf("got %#v, want %#v", m, want)
		}
		var empty map[string]any
		if err := c.Decode([]byte("  "), &empty); err != nil || empty != nil {
			t.Errorf("empty input: %v, %v", empty, err)
		}
		errs := fieldErrors(t, c.Decode([]byte("{\n\"a\": }"), &m))
		checkFields(t, "bad map", errs, []FieldError{{"", "invalid JSON at line 2, column 6: invalid character '}' looking for beginning of value"}})
		errs = fieldErrors(t, c.Decode([]byte(`[1]`), &m))
		if len(errs) != 1 || errs[0].Message == "" {
			t.Errorf("array into map: %q", errs)
		}
		if c.CheckKeys(map[string]any{"whatever": 1}) != nil {
			t.Error("CheckKeys on a map type reported keys")
		}
		if c.Validate(&m) != nil {
			t.Error("Validate on a map type failed")
		}
	})
	t.Run("raw", func(t *testing.T) {
		c := newCodec[json.RawMessage](t)
		var raw json.RawMessage
		in := `{"x": [1, {"y": true}]}`
		if err := c.Decode([]byte(in), &raw); err != nil || string(raw) != in {
			t.Errorf("got %s, %v", raw, err)
		}
		if err := c.Decode([]byte(`[1, 2`), &raw); err == nil {
			t.Error("invalid JSON accepted")
		} else {
			fieldErrors(t, err)
		}
	})
}

// ---- schema -------------------------------------------------------------------

type schemaOpt struct {
	Name string  `json:"name" validate:"required"`
	LR   float64 `json:"lr" default:"0.01" validate:"required,gt=0" description:"Learning rate"`
}

type schemaParams struct {
	Common
	Epochs    int           `json:"epochs" default:"10" validate:"required,min=1,max=1000" description:"Number of epochs"`
	Model     string        `json:"model" validate:"required,oneof=small large"`
	Level     int           `json:"level" validate:"oneof=1 2 3"`
	Rate      float64       `json:"rate" validate:"gt=0,lt=1"`
	Name      string        `json:"name" validate:"min=2,max=5"`
	Code      string        `json:"code" validate:"len=3"`
	Tags      []string      `json:"tags" default:"a,b" validate:"min=1,max=4,dive,min=2"`
	Email     string        `json:"email" validate:"omitempty,email"`
	Timeout   time.Duration `json:"timeout" default:"2s"`
	Verbose   bool          `json:"verbose" default:"true"`
	Optimizer schemaOpt     `json:"optimizer"`
}

func schemaOf(t *testing.T, c *Codec, title, desc string) map[string]any {
	t.Helper()
	raw := c.Schema(title, desc)
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, raw)
	}
	return s
}

func obj(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%q is %#v, want an object", key, m[key])
	}
	return v
}

func TestSchema(t *testing.T) {
	c := newCodec[schemaParams](t)
	s := schemaOf(t, c, "train", "Train a model")
	top := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                "train",
		"description":          "Train a model",
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"model"}, // epochs is required but has a default
	}
	for k, want := range top {
		if !reflect.DeepEqual(s[k], want) {
			t.Errorf("schema[%q] = %#v, want %#v", k, s[k], want)
		}
	}
	if _, ok := s["$id"]; ok {
		t.Errorf("schema has an $id: %v", s["$id"])
	}
	props := obj(t, s, "properties")
	var names []string
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	wantNames := []string{"code", "debug", "email", "epochs", "level", "model", "name", "optimizer", "rate", "seed", "tags", "timeout", "verbose"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("properties = %q, want %q", names, wantNames)
	}

	wantProps := map[string]map[string]any{
		"seed":    {"type": "integer", "default": 7.0, "minimum": 1.0},
		"debug":   {"type": "boolean"},
		"epochs":  {"type": "integer", "default": 10.0, "minimum": 1.0, "maximum": 1000.0, "description": "Number of epochs"},
		"model":   {"type": "string", "enum": []any{"small", "large"}},
		"level":   {"type": "integer", "enum": []any{1.0, 2.0, 3.0}},
		"rate":    {"type": "number", "exclusiveMinimum": 0.0, "exclusiveMaximum": 1.0},
		"name":    {"type": "string", "minLength": 2.0, "maxLength": 5.0},
		"code":    {"type": "string", "minLength": 3.0, "maxLength": 3.0},
		"tags":    {"type": "array", "items": map[string]any{"type": "string"}, "default": []any{"a", "b"}, "minItems": 1.0, "maxItems": 4.0},
		"email":   {"type": "string", "format": "email"},
		"timeout": {"type": "integer", "default": 2e9},
		"verbose": {"type": "boolean", "default": true},
	}
	for name, want := range wantProps {
		if got := obj(t, props, name); !reflect.DeepEqual(got, want) {
			t.Errorf("properties.%s = %#v\n want %#v", name, got, want)
		}
	}

	opt := obj(t, props, "optimizer")
	if opt["type"] != "object" || opt["additionalProperties"] != false {
		t.Errorf("optimizer = %#v, want a closed object", opt)
	}
	if got := opt["required"]; !reflect.DeepEqual(got, []any{"name"}) {
		t.Errorf("optimizer.required = %#v, want [name] (lr has a default)", got)
	}
	optProps := obj(t, opt, "properties")
	wantLR := map[string]any{"type": "number", "default": 0.01, "exclusiveMinimum": 0.0, "description": "Learning rate"}
	if got := obj(t, optProps, "lr"); !reflect.DeepEqual(got, wantLR) {
		t.Errorf("optimizer.lr = %#v, want %#v", got, wantLR)
	}
	if got := obj(t, optProps, "name"); !reflect.DeepEqual(got, map[string]any{"type": "string"}) {
		t.Errorf("optimizer.name = %#v", got)
	}

	// Without a description, the schema has none.
	if d, ok := schemaOf(t, c, "train", "")["description"]; ok {
		t.Errorf("description = %v, want none", d)
	}
}

func TestSchemaNonStruct(t *testing.T) {
	m := schemaOf(t, newCodec[map[string]any](t), "untyped", "Anything goes")
	want := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
		"title": "untyped", "description": "Anything goes",
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("map schema = %#v, want %#v", m, want)
	}
	r := schemaOf(t, newCodec[json.RawMessage](t), "raw", "")
	want = map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "raw"}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("raw schema = %#v, want %#v", r, want)
	}
}

// ---- suggestions, CheckKeys, Error ------------------------------------------

func TestSuggest(t *testing.T) {
	names := []string{"batch_size", "epochs", "lr", "optimizer"}
	tests := []struct{ name, want string }{
		{"epoch", "epochs"},
		{"EPOCHS", "epochs"},
		{"epohcs", "epochs"}, // transposition: distance 2
		{"lrr", "lr"},
		{"l", "lr"},
		{"optimzer", "optimizer"},
		{"batchsz", "batch_size"}, // distance 3, long name
		{"btchsz", ""},            // distance 4
		{"bsize", ""},             // distance 5
		{"xyz", ""},               // distance 3, short name
		{"zzzzzzzz", ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.name, names); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := Suggest("epochs", nil); got != "" {
		t.Errorf("Suggest with no candidates = %q", got)
	}
	// The closest candidate wins; ties go to the first.
	if got := Suggest("ab", []string{"abcd", "abc", "xb"}); got != "abc" {
		t.Errorf("closest = %q, want abc", got)
	}
	if got := Suggest("ab", []string{"xb", "ax"}); got != "xb" {
		t.Errorf("tie = %q, want xb", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "abc", 0},
		{"abc", "abd", 1},
		{"abc", "ab", 1},
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
		{"epochs", "epohcs", 2},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance(tt.b, tt.a); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	c := newCodec[smallParams](t)
	if errs := c.CheckKeys(nil); errs != nil {
		t.Errorf("CheckKeys(nil) = %q", errs)
	}
	if errs := c.CheckKeys(map[string]any{"epochs": "not checked", "lr": 1, "optimizer": nil}); errs != nil {
		t.Errorf("known keys: %q", errs)
	}
	got := c.CheckKeys(map[string]any{"zeta": 1, "epoch": 2, "lr": 3, "bogus": 4})
	want := []FieldError{
		{"bogus", "unknown field (" + smallValid + ")"},
		{"epoch", `unknown field (did you mean "epochs"? ` + smallValid + ")"},
		{"zeta", "unknown field (" + smallValid + ")"},
	}
	checkFields(t, "CheckKeys", got, want)

	// CheckKeys agrees with Decode.
	doc := map[string]any{"epoch": 2, "lr": 3, "bogus": 4}
	in, _ := json.Marshal(doc)
	var p smallParams
	checkFields(t, string(in), fieldErrors(t, c.Decode(in, &p)), c.CheckKeys(doc))

	none := newCodec[noParams](t)
	checkFields(t, "CheckKeys noParams", none.CheckKeys(map[string]any{"x": 1}), []FieldError{{"x", "unknown field (this action takes no params)"}})
}

func TestErrorString(t *testing.T) {
	e := &Error{Fields: []FieldError{{"", "params must be a JSON object (got an array)"}, {"epochs", "must be >= 1 (got 0)"}, {"optimizer.lr", "is required"}}}
	want := "params must be a JSON object (got an array); epochs: must be >= 1 (got 0); optimizer.lr: is required"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (FieldError{"a", "b"}).String(); got != "a: b" {
		t.Errorf("String() = %q", got)
	}
	if got := (&Error{}).Error(); got != "" {
		t.Errorf("empty Error() = %q", got)
	}
}

// TestStrictJSON: what encoding/json lets through silently is rejected
// with its location.
func TestStrictJSON(t *testing.T) {
	c := newCodec[smallParams](t)
	tests := []struct {
		in   string
		want FieldError
	}{
		{`{"epochs": 1, "epochs": 2}`, FieldError{"epochs", "given twice (line 1, column 15); give each key once"}},
		{"{\n  \"lr\": 0.1,\n  \"lr\": 0.2\n}", FieldError{"lr", "given twice (line 3, column 3); give each key once"}},
		{"{\"epochs\": 1, \"name\": \"a\xffb\"}", FieldError{"name", "invalid UTF-8 at line 1, column 25; params must be UTF-8 text"}},
	}
	for _, tt := range tests {
		var p smallParams
		checkFields(t, tt.in, fieldErrors(t, c.Decode([]byte(tt.in), &p)), []FieldError{tt.want})
	}
	// Untyped params are held to the same rules.
	m := newCodec[map[string]any](t)
	var v map[string]any
	if err := m.Decode([]byte(`{"a": {"b": 1, "b": 2}}`), &v); err == nil || !strings.Contains(err.Error(), "a.b: given twice") {
		t.Errorf("nested duplicate in untyped params: %v", err)
	}
}

type givenZeroParams struct {
	Epochs int    `json:"epochs" validate:"required,min=1"`
	Seed   int    `json:"seed" validate:"required"`
	Name   string `json:"name" validate:"required,max=8"`
	Inner  struct {
		Steps int `json:"steps" validate:"required,gte=2"`
	} `json:"inner"`
}

// TestRequiredGivenZero: a field given as its zero value is not "missing".
func TestRequiredGivenZero(t *testing.T) {
	c := newCodec[givenZeroParams](t)
	var p givenZeroParams
	got := fieldErrors(t, c.Decode([]byte(`{"epochs": 0, "seed": 0, "name": "", "inner": {"steps": 0}}`), &p))
	checkFields(t, "zeros", got, []FieldError{
		{"epochs", "must be >= 1 (got 0)"},
		{"seed", "must not be empty or zero (got 0)"},
		{"name", `must not be empty (got "")`},
		{"inner.steps", "must be >= 2 (got 0)"},
	})
	got = fieldErrors(t, c.Decode([]byte(`{}`), &p))
	checkFields(t, "absent", got, []FieldError{
		{"epochs", "is required"}, {"seed", "is required"}, {"name", "is required"}, {"inner.steps", "is required"},
	})
}
