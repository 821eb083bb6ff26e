package params

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/invopop/jsonschema"
)

// Schema returns the JSON Schema (draft 2020-12) of the params type: JSON
// types from the Go types, plus `default`, `description` and the
// `validate` rules that JSON Schema can express (required, bounds, enum,
// formats). Unknown properties are not allowed, as in Decode.
func (c *Codec) Schema(title, description string) json.RawMessage {
	var s *jsonschema.Schema
	switch {
	case c.typ == reflect.TypeOf(json.RawMessage(nil)):
		s = &jsonschema.Schema{}
	case c.typ.Kind() == reflect.Map:
		s = &jsonschema.Schema{Type: "object"}
	default:
		r := &jsonschema.Reflector{
			DoNotReference:             true,
			ExpandedStruct:             true,
			RequiredFromJSONSchemaTags: true,
			Anonymous:                  true,
		}
		s = r.ReflectFromType(c.typ)
		if c.isStruct {
			annotate(s, c.typ, "", c.defaults)
		}
	}
	s.Version = "https://json-schema.org/draft/2020-12/schema"
	s.ID = ""
	s.Title = title
	if description != "" {
		s.Description = description
	}
	b, err := json.Marshal(s)
	if err != nil {
		// The schema holds only values produced above; this cannot happen.
		panic("params: marshal schema: " + err.Error())
	}
	return b
}

// annotate walks struct t alongside its schema s and adds what the reflector
// does not know about: our default, description and validate tags.
func annotate(s *jsonschema.Schema, t reflect.Type, path string, defaults map[string]any) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s == nil || s.Properties == nil || t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && name == "" {
			annotate(s, sf.Type, path, defaults)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		prop, ok := s.Properties.Get(name)
		if !ok {
			continue
		}
		fpath := name
		if path != "" {
			fpath = path + "." + name
		}
		if d := sf.Tag.Get("description"); d != "" {
			prop.Description = d
		}
		def, hasDefault := defaults[fpath]
		if hasDefault {
			prop.Default = jsonValue(def)
		}
		for _, rule := range strings.Split(sf.Tag.Get("validate"), ",") {
			tag, param, _ := strings.Cut(rule, "=")
			if tag == "dive" {
				break // the rules after dive apply to elements
			}
			if tag == "required" && !hasDefault {
				s.Required = append(s.Required, name)
				continue
			}
			applyRule(prop, sf.Type, tag, param)
		}
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			annotate(prop, ft, fpath, defaults)
		case reflect.Slice, reflect.Array:
			annotate(prop.Items, ft.Elem(), fpath+"[]", defaults)
		}
	}
}

// applyRule maps one validator rule onto schema keywords, where one exists.
func applyRule(s *jsonschema.Schema, t reflect.Type, tag, param string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	kind := t.Kind()
	num := func() json.Number { return json.Number(param) }
	count := func() *uint64 {
		n, err := strconv.ParseUint(param, 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	switch tag {
	case "min", "gte", "max", "lte", "gt", "lt", "len":
		if _, err := strconv.ParseFloat(param, 64); err != nil {
			return
		}
		switch kind {
		case reflect.String:
			switch tag {
			case "min", "gte":
				s.MinLength = count()
			case "max", "lte":
				s.MaxLength = count()
			case "len":
				s.MinLength, s.MaxLength = count(), count()
			}
		case reflect.Slice, reflect.Array:
			switch tag {
			case "min", "gte":
				s.MinItems = count()
			case "max", "lte":
				s.MaxItems = count()
			case "len":
				s.MinItems, s.MaxItems = count(), count()
			}
		case reflect.Map:
			switch tag {
			case "min", "gte":
				s.MinProperties = count()
			case "max", "lte":
				s.MaxProperties = count()
			}
		default:
			switch tag {
			case "min", "gte":
				s.Minimum = num()
			case "max", "lte":
				s.Maximum = num()
			case "gt":
				s.ExclusiveMinimum = num()
			case "lt":
				s.ExclusiveMaximum = num()
			case "len":
				s.Minimum, s.Maximum = num(), num()
			}
		}
	case "oneof":
		s.Enum = nil
		for _, v := range strings.Fields(param) {
			s.Enum = append(s.Enum, enumValue(kind, v))
		}
	case "email":
		s.Format = "email"
	case "url", "uri":
		s.Format = "uri"
	case "uuid", "uuid4":
		s.Format = "uuid"
	case "ipv4", "ipv6", "hostname":
		s.Format = tag
	case "unique":
		s.UniqueItems = true
	}
}

func enumValue(kind reflect.Kind, v string) any {
	switch kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return json.Number(v)
	}
	return v
}

// jsonValue converts a Go default to its plain JSON form (a Duration stays
// in nanoseconds, as encoding/json writes it).
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
