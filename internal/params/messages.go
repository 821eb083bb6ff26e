package params

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
)

// constraintMessage phrases a failed `validate` rule for a person:
// "must be >= 1 (got 0)", "is required", `must be one of adam, sgd (got "x")`.
func constraintMessage(fe validator.FieldError) string {
	got := " (got " + formatValue(fe.Value()) + ")"
	kind := fe.Kind()
	param := fe.Param()
	switch fe.Tag() {
	case "required", "required_if", "required_unless", "required_with", "required_without":
		return "is required"
	case "min", "gte":
		return sizeMessage(kind, ">=", "at least", param, fe.Value())
	case "max", "lte":
		return sizeMessage(kind, "<=", "at most", param, fe.Value())
	case "gt":
		return sizeMessage(kind, ">", "more than", param, fe.Value())
	case "lt":
		return sizeMessage(kind, "<", "fewer than", param, fe.Value())
	case "len":
		return sizeMessage(kind, "==", "exactly", param, fe.Value())
	case "eq":
		return "must be " + param + got
	case "ne":
		return "must not be " + param + got
	case "oneof":
		return "must be one of " + strings.Join(strings.Fields(param), ", ") + got
	case "email", "url", "uri", "uuid", "uuid4", "hostname", "ip", "ipv4", "ipv6", "cidr", "mac", "datetime", "json", "base64", "semver", "file", "dir":
		if fe.Tag() == "datetime" {
			return "must be a date/time in the layout " + param + got
		}
		return "must be a valid " + formatNames[fe.Tag()] + got
	case "alpha", "alphanum", "numeric", "lowercase", "uppercase", "ascii":
		return "must be " + fe.Tag() + got
	case "startswith":
		return fmt.Sprintf("must start with %q%s", param, got)
	case "endswith":
		return fmt.Sprintf("must end with %q%s", param, got)
	case "contains":
		return fmt.Sprintf("must contain %q%s", param, got)
	case "unique":
		return "must not contain duplicates" + got
	}
	rule := fe.Tag()
	if param != "" {
		rule += "=" + param
	}
	return fmt.Sprintf("does not satisfy %q%s", rule, got)
}

// formatNames names the values the format rules accept.
var formatNames = map[string]string{
	"email": "email address", "url": "URL", "uri": "URI", "uuid": "UUID", "uuid4": "UUID v4",
	"hostname": "hostname", "ip": "IP address", "ipv4": "IPv4 address", "ipv6": "IPv6 address",
	"cidr": "CIDR", "mac": "MAC address", "json": "JSON", "base64": "base64 string",
	"semver": "semantic version", "file": "path to an existing file", "dir": "path to an existing directory",
}

// sizeMessage handles the rules whose meaning depends on the kind: a bound
// on the value for numbers, on the length for strings, slices and maps.
func sizeMessage(kind reflect.Kind, op, words, param string, value any) string {
	switch kind {
	case reflect.String:
		return fmt.Sprintf("must be %s %s characters long (got %d)", words, param, len([]rune(fmt.Sprint(value))))
	case reflect.Slice, reflect.Array, reflect.Map:
		n := reflect.ValueOf(value).Len()
		return fmt.Sprintf("must have %s %s items (got %d)", words, param, n)
	}
	return fmt.Sprintf("must be %s %s (got %s)", op, param, formatValue(value))
}

func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", shorten(x))
	case nil:
		return "null"
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "null"
		}
		return formatValue(rv.Elem().Interface())
	}
	return shorten(fmt.Sprint(v))
}
