// Package params decodes action params from JSON into Go values: it applies
// `default:"…"` tags, rejects unknown fields, runs go-playground/validator
// `validate:"…"` tags and turns every failure into a field-level message a
// person can act on ("epochs: must be >= 1 (got 0)").
//
// A Codec is built once per params type and is safe for concurrent use.
package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/go-playground/validator/v10"
)

// FieldError is one failing field. Field is the dotted JSON path
// ("optimizer.lr"); it is empty for errors about the whole params document.
type FieldError struct {
	Field   string
	Message string
}

func (f FieldError) String() string {
	if f.Field == "" {
		return f.Message
	}
	return f.Field + ": " + f.Message
}

// Error lists every failing field of one decode, in a stable order.
type Error struct {
	Fields []FieldError
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// field is one top-level JSON property of a struct params type.
type field struct {
	name  string
	index []int
	typ   reflect.Type
}

// freshDefault is a default that must be built anew for every decode because
// its value is a reference (slice, map, pointer) that decoding would mutate.
type freshDefault struct {
	index []int
	raw   string
}

// Codec decodes JSON into one params type.
type Codec struct {
	typ      reflect.Type // the params type (never a pointer)
	isStruct bool
	fields   map[string]field
	names    []string // sorted JSON names, for messages
	template reflect.Value
	fresh    []freshDefault
	defaults map[string]any // JSON path -> default value, for the schema
}

var (
	validateOnce sync.Once
	validate     *validator.Validate
)

// embeddedName is the validator namespace segment of an embedded struct whose
// fields encoding/json promotes; Validate drops it so paths are JSON paths.
const embeddedName = "\x00embedded"

func structValidator() *validator.Validate {
	validateOnce.Do(func() {
		validate = validator.New(validator.WithRequiredStructEnabled())
		validate.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				return ""
			}
			if name == "" {
				if f.Anonymous && isStruct(f.Type) {
					return embeddedName
				}
				return f.Name
			}
			return name
		})
	})
	return validate
}

// NewCodec prepares decoding into values of type t. It fails when a
// `default` tag cannot be parsed into its field's type: that is a bug in the
// params type, reported once, at registration.
func NewCodec(t reflect.Type) (*Codec, error) {
	c := &Codec{typ: t, defaults: map[string]any{}}
	if t.Kind() != reflect.Struct {
		return c, nil
	}
	c.isStruct = true
	c.fields = map[string]field{}
	collectFields(t, nil, c.fields)
	for name := range c.fields {
		c.names = append(c.names, name)
	}
	sort.Strings(c.names)
	c.template = reflect.New(t).Elem()
	if err := c.buildDefaults(t, nil, ""); err != nil {
		return nil, err
	}
	return c, nil
}

// collectFields lists the JSON properties of struct t the way encoding/json
// sees them, promoting fields of embedded structs.
func collectFields(t reflect.Type, index []int, out map[string]field) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		ft := sf.Type
		if sf.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
				if !sf.IsExported() && ft.Kind() == reflect.Struct {
					continue // encoding/json cannot allocate it, so its fields cannot be set
				}
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, idx, out)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		// As in encoding/json, a shallower field hides a promoted one.
		if old, dup := out[name]; !dup || len(idx) < len(old.index) {
			out[name] = field{name: name, index: idx, typ: sf.Type}
		}
	}
}

// buildDefaults applies every `default` tag of struct t (and of nested
// struct fields) to the template, or records it as fresh. path is the dotted
// JSON path of t ("" at the top).
func (c *Codec) buildDefaults(t reflect.Type, index []int, path string) error {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() && !sf.Anonymous {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		promoted := sf.Anonymous && name == "" && isStruct(sf.Type)
		if name == "" {
			name = sf.Name
		}
		fpath := name
		if promoted {
			fpath = path // promoted fields live at the parent's path
		} else if path != "" {
			fpath = path + "." + name
		}
		raw, has := sf.Tag.Lookup("default")
		if has {
			fv := fieldAlloc(c.template, idx)
			v, fresh, err := parseDefault(sf.Type, raw)
			if err != nil {
				return fmt.Errorf("field %s: invalid default %q: %w", fpath, raw, err)
			}
			if fresh {
				c.fresh = append(c.fresh, freshDefault{index: idx, raw: raw})
			} else {
				fv.Set(v)
			}
			c.defaults[fpath] = v.Interface()
			continue
		}
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Time{}) {
			if err := c.buildDefaults(sf.Type, idx, fpath); err != nil {
				return err
			}
		}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// parseDefault converts a default tag into a value of type t. fresh reports
// that the value holds references and must be rebuilt for every decode.
func parseDefault(t reflect.Type, raw string) (v reflect.Value, fresh bool, err error) {
	v = reflect.New(t).Elem()
	switch {
	case t == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return v, false, err
		}
		v.SetInt(int64(d))
		return v, false, nil
	case t.Kind() == reflect.String:
		v.SetString(raw)
		return v, false, nil
	}
	fresh = t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Pointer
	if err := setDefault(v, raw); err != nil {
		return v, false, err
	}
	return v, fresh, nil
}

// setDefault decodes raw into v: JSON first, then a comma-separated list for
// string slices, then a bare string for string-like pointers.
func setDefault(v reflect.Value, raw string) error {
	t := v.Type()
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String && !strings.HasPrefix(strings.TrimSpace(raw), "[") {
		items := []string{}
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			s.Index(i).SetString(item)
		}
		v.Set(s)
		return nil
	}
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String {
		p := reflect.New(t.Elem())
		p.Elem().SetString(raw)
		v.Set(p)
		return nil
	}
	return json.Unmarshal([]byte(raw), v.Addr().Interface())
}

// fieldAlloc is reflect.Value.FieldByIndex that allocates nil embedded
// pointers on the way.
func fieldAlloc(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// Names returns the JSON property names of a struct params type, sorted.
func (c *Codec) Names() []string { return c.names }

// Defaults returns the default value of every field that has one, keyed by
// dotted JSON path.
func (c *Codec) Defaults() map[string]any { return c.defaults }

// reset sets dst to the defaults, except map defaults: encoding/json would
// merge a given object into them, so fillMaps applies them after decoding.
func (c *Codec) reset(dst reflect.Value) {
	dst.Set(c.template)
	c.setFresh(dst, false)
}

// fillMaps sets the map fields that decoding left nil (absent or null) to
// their defaults.
func (c *Codec) fillMaps(dst reflect.Value) { c.setFresh(dst, true) }

func (c *Codec) setFresh(dst reflect.Value, maps bool) {
	for _, f := range c.fresh {
		fv := fieldAlloc(dst, f.index)
		if isMap := fv.Kind() == reflect.Map; isMap != maps || (isMap && !fv.IsNil()) {
			continue
		}
		v, _, _ := parseDefault(fv.Type(), f.raw) // parsed once in NewCodec: cannot fail
		fv.Set(v)
	}
}

// CheckKeys reports the keys of an already-decoded JSON object that are not
// fields of the params type. It lets callers holding a map skip a decode.
func (c *Codec) CheckKeys(keys map[string]any) []FieldError {
	if !c.isStruct {
		return nil
	}
	var errs []FieldError
	for k := range keys {
		if _, ok := c.lookup(k); !ok {
			errs = append(errs, c.unknown(k))
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// lookup finds the field of JSON key k as encoding/json does: an exact match
// first, then a case-insensitive one.
func (c *Codec) lookup(k string) (field, bool) {
	if f, ok := c.fields[k]; ok {
		return f, true
	}
	for _, name := range c.names {
		if strings.EqualFold(name, k) {
			return c.fields[name], true
		}
	}
	return field{}, false
}

func (c *Codec) unknown(name string) FieldError {
	if len(c.names) == 0 {
		return FieldError{Field: name, Message: "unknown field (this action takes no params)"}
	}
	hint := ""
	if s := suggest(name, c.names); s != "" {
		hint = fmt.Sprintf("did you mean %q? ", s)
	}
	return FieldError{Field: name, Message: "unknown field (" + hint + "valid fields: " + strings.Join(c.names, ", ") + ")"}
}

// Decode decodes the JSON document data into dst, a pointer to the params
// type, applying defaults first and validation after. It returns *Error.
func (c *Codec) Decode(data []byte, dst any) error {
	rv := reflect.ValueOf(dst).Elem()
	if fe := checkStrict(data); fe != nil {
		return &Error{Fields: []FieldError{*fe}}
	}
	if !c.isStruct {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, dst); err != nil {
			return &Error{Fields: []FieldError{{Message: describeDecodeError(data, err, "")}}}
		}
		return nil
	}
	c.reset(rv)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return c.diagnose(data, rv, err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return &Error{Fields: []FieldError{{Message: errTrailing.Error()}}}
	}
	c.fillMaps(rv)
	return c.validate(rv.Addr().Interface(), presence(data))
}

var errTrailing = errors.New("unexpected data after the params object")

// diagnose re-decodes a document the fast path rejected, field by field, so
// that every bad field is reported, not just the first.
func (c *Codec) diagnose(data []byte, rv reflect.Value, first error) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		c.reset(rv)
		c.fillMaps(rv)
		return c.Validate(rv.Addr().Interface())
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &Error{Fields: []FieldError{{Message: "params must be a JSON object (got " + jsonKind(trimmed) + ")"}}}
		}
		return &Error{Fields: []FieldError{{Message: describeDecodeError(data, err, "")}}}
	}
	c.reset(rv)
	var errs []FieldError
	failed := map[string]bool{}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := c.lookup(k)
		if !ok {
			errs = append(errs, c.unknown(k))
			continue
		}
		fv := fieldAlloc(rv, f.index)
		dec := json.NewDecoder(bytes.NewReader(obj[k]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(fv.Addr().Interface()); err != nil {
			failed[f.name] = true
			errs = append(errs, fieldDecodeError(f.name, f.typ, obj[k], err))
		}
	}
	if len(errs) == 0 {
		// The fast path failed for a reason the field-wise pass does not
		// reproduce; report it as it is.
		return &Error{Fields: []FieldError{{Message: describeDecodeError(data, first, "")}}}
	}
	c.fillMaps(rv)
	if verr := c.Validate(rv.Addr().Interface()); verr != nil {
		var pe *Error
		if errors.As(verr, &pe) {
			for _, fe := range pe.Fields {
				top := fe.Field
				if i := strings.IndexAny(top, ".["); i >= 0 {
					top = top[:i]
				}
				if !failed[top] {
					errs = append(errs, fe)
				}
			}
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return &Error{Fields: errs}
}

// fieldDecodeError explains why raw could not be decoded into field name.
func fieldDecodeError(name string, t reflect.Type, raw json.RawMessage, err error) FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := name
		if te.Field != "" {
			path = name + "." + te.Field
			return FieldError{Field: path, Message: fmt.Sprintf("must be %s (got %s)", describeType(te.Type), te.Value)}
		}
		elem := t
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if te.Type != nil && te.Type != elem {
			// The bad value is inside the field's array or object.
			what := "item"
			if elem.Kind() == reflect.Map {
				what = "value"
			}
			return FieldError{Field: path, Message: fmt.Sprintf("every %s must be %s (got %s)", what, describeType(te.Type), te.Value)}
		}
		return FieldError{Field: path, Message: fmt.Sprintf("must be %s (got %s)", describeType(t), shorten(string(raw)))}
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if strings.HasPrefix(msg, "unknown field ") {
		return FieldError{Field: name, Message: msg}
	}
	if t == durationType || strings.Contains(msg, "cannot unmarshal") {
		return FieldError{Field: name, Message: fmt.Sprintf("must be %s (got %s)", describeType(t), shorten(string(raw)))}
	}
	return FieldError{Field: name, Message: msg + " (got " + shorten(string(raw)) + ")"}
}

// describeDecodeError turns a JSON decoding error into a message with a line
// and column for syntax errors.
func describeDecodeError(data []byte, err error, _ string) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, se.Offset)
		return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, errTrailing) {
		return err.Error()
	}
	if err.Error() == "unexpected EOF" {
		return "invalid JSON: unexpected end of input"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("must be %s (got %s)", describeType(te.Type), te.Value)
	}
	return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// strictChecker is a reusable jsontext reader for checkStrict.
type strictChecker struct {
	r   bytes.Reader
	dec jsontext.Decoder
}

var strictPool = sync.Pool{New: func() any { return new(strictChecker) }}

// checkStrict rejects what encoding/json lets through silently: a key given
// twice in one object (encoding/json keeps the last) and bytes that are not
// UTF-8 (it replaces them). It reads data with jsontext, whose defaults
// reject both; other syntax errors are left to the decoder's messages.
func checkStrict(data []byte) *FieldError {
	sc := strictPool.Get().(*strictChecker)
	sc.r.Reset(data)
	sc.dec.Reset(&sc.r)
	err := sc.dec.SkipValue()
	sc.r.Reset(nil)
	strictPool.Put(sc)
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return nil
	}
	field := strings.ReplaceAll(strings.TrimPrefix(string(se.JSONPointer), "/"), "/", ".")
	line, col := position(data, se.ByteOffset+1)
	switch {
	case errors.Is(se.Err, jsontext.ErrDuplicateName):
		return &FieldError{Field: field, Message: fmt.Sprintf("given twice (line %d, column %d); give each key once", line, col)}
	case strings.Contains(se.Err.Error(), "UTF-8"):
		return &FieldError{Field: field, Message: fmt.Sprintf("invalid UTF-8 at line %d, column %d; params must be UTF-8 text", line, col)}
	}
	return nil
}

func position(data []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset-1 && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

func jsonKind(b []byte) string {
	switch b[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

func shorten(s string) string {
	const max = 40
	s = strings.TrimSpace(s)
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// describeType names a Go type the way a JSON user thinks of it.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	if t == durationType {
		return "an integer number of nanoseconds"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return "a valid " + t.String()
}

// Validate runs the `validate` tags of the struct pointed to by v.
func (c *Codec) Validate(v any) error { return c.validate(v, nil) }

// validate is Validate; present, when not nil, reports whether the params
// document gave the field at a dotted path, so that a rule such as
// `required,min=1` on a field given as 0 says "must be >= 1 (got 0)", not
// "is required".
func (c *Codec) validate(v any, present func(path string) bool) error {
	if !c.isStruct {
		return nil
	}
	err := structValidator().Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return &Error{Fields: []FieldError{{Message: err.Error()}}}
	}
	// Namespaces start with the type name, if it has one ("TrainParams.epochs").
	prefix, t := "", reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		prefix = t.Name() + "."
	}
	out := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		path := strings.TrimPrefix(fe.Namespace(), prefix)
		path = strings.ReplaceAll(path, embeddedName+".", "")
		path = strings.TrimSuffix(strings.TrimSuffix(path, embeddedName), ".") // a rule on the embedded struct itself
		msg := constraintMessage(fe)
		if fe.Tag() == "required" && present != nil && present(path) {
			msg = givenZeroMessage(t, fe)
		}
		out = append(out, FieldError{Field: path, Message: msg})
	}
	return &Error{Fields: out}
}

// presence returns a function reporting whether the JSON object data has
// a value at a dotted path (keys matched as encoding/json matches fields).
func presence(data []byte) func(path string) bool {
	return func(path string) bool {
		cur := data
		for _, key := range strings.Split(path, ".") {
			var obj map[string]json.RawMessage
			if json.Unmarshal(cur, &obj) != nil {
				return false
			}
			found := false
			for k, v := range obj {
				if strings.EqualFold(k, key) {
					cur, found = v, true
					if k == key {
						break
					}
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
}

// givenZeroMessage phrases a `required` rule that failed on a value the
// params did give (a zero value): the field's other rules speak if they
// fail too ("must be >= 1 (got 0)"), else "must not be zero (got 0)".
func givenZeroMessage(root reflect.Type, fe validator.FieldError) string {
	if tag, ok := validateTag(root, fe.StructNamespace()); ok {
		var rest []string
		for _, r := range strings.Split(tag, ",") {
			if r != "required" && r != "omitempty" {
				rest = append(rest, r)
			}
		}
		if len(rest) > 0 {
			var verrs validator.ValidationErrors
			if errors.As(structValidator().Var(fe.Value(), strings.Join(rest, ",")), &verrs) && len(verrs) > 0 {
				return constraintMessage(verrs[0])
			}
		}
	}
	if fe.Kind() == reflect.String {
		return "must not be empty (got \"\")"
	}
	return "must not be empty or zero (got " + formatValue(fe.Value()) + ")"
}

// validateTag returns the `validate` tag of the field at a validator
// struct namespace ("TrainParams.Optimizer.LR": Go field names).
func validateTag(root reflect.Type, ns string) (string, bool) {
	t := root
	parts := strings.Split(ns, ".")
	if len(parts) > 0 && parts[0] == t.Name() {
		parts = parts[1:]
	}
	var f reflect.StructField
	for _, name := range parts {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return "", false
		}
		var ok bool
		if f, ok = t.FieldByName(name); !ok {
			return "", false
		}
		t = f.Type
	}
	return f.Tag.Get("validate"), len(parts) > 0
}

// isStruct reports whether t is a struct or a pointer to one.
func isStruct(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// suggest returns the candidate closest to name by edit distance, if close.
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := distance(strings.ToLower(name), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= 2 || (bestD <= 3 && len(name) > 6) {
		return best
	}
	return ""
}

// Suggest returns the candidate closest to name, or "" when none is close.
func Suggest(name string, candidates []string) string { return suggest(name, candidates) }

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// JSON returns params as JSON: the JSON forms ([]byte, json.RawMessage,
// string) as they are, nil as nil, anything else encoded with
// encoding/json. It is how every executor turns its params argument into
// the JSON a plugin binary receives.
func JSON(v any) (json.RawMessage, error) {
	switch p := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return p, nil
	case []byte:
		return p, nil
	case string:
		return json.RawMessage(p), nil
	}
	return json.Marshal(v)
}
