package synapse

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Env holds the values an action reads through Context.Env: settings and
// credentials from the OS environment, config.yaml, env files and explicit
// overrides. An Env is immutable and safe for concurrent use.
//
// Getters return the default for a missing key or a null value, and an
// error naming the key and the value when a present value cannot be
// converted: a typo in a setting is never silently replaced by a default.
type Env struct {
	values map[string]any
}

// NewEnv returns an Env holding a deep copy of values: changing values (or
// the tables and arrays inside it) afterwards does not change the Env.
func NewEnv(values map[string]any) *Env {
	out, _ := deepCopy(values).(map[string]any)
	return &Env{values: out}
}

// deepCopy copies the maps and slices a decoded TOML or JSON value is made of.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return map[string]any(nil)
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = deepCopy(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = deepCopy(val)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(x))
		for i, val := range x {
			out[i], _ = deepCopy(val).(map[string]any)
		}
		return out
	case []string:
		return slices.Clone(x)
	}
	return v
}

// EnvFromOS returns the OS environment as an Env. With a non-empty prefix
// only variables whose names start with it (case-sensitive) are kept, with
// the prefix removed: EnvFromOS("SYNAPSE_") turns SYNAPSE_HOST into HOST.
func EnvFromOS(prefix string) *Env {
	values := map[string]any{}
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, prefix) {
			continue
		}
		if k = strings.TrimPrefix(k, prefix); k != "" {
			values[k] = v
		}
	}
	return &Env{values: values}
}

// EnvFromFile reads a TOML file. Nested tables stay nested (as
// map[string]any); arrays stay arrays.
func EnvFromFile(path string) (*Env, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read env file: %s does not exist", path)
		}
		return nil, fmt.Errorf("read env file: %w", err)
	}
	values := map[string]any{}
	if err := toml.Unmarshal(data, &values); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := fmt.Sprintf("read env file: %s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
			if looksLikeDotenv(data) {
				msg += "\nenv files are TOML, not dotenv: quote strings and may space the equals sign, e.g.\n  DATASET = \"/data/cats\"\n  SEED = 7"
			}
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("read env file: %s: %w", path, err)
	}
	return &Env{values: values}, nil
}

// looksLikeDotenv reports whether data has a dotenv line: KEY=value with
// the value unquoted (or an `export` prefix), which TOML rejects.
func looksLikeDotenv(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "export ") {
			return true
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || strings.ContainsAny(k, " \t\"'") {
			continue
		}
		v = strings.TrimSpace(v)
		if v != "" && !strings.ContainsAny(v[:1], "\"'[{0123456789-+tf") {
			return true
		}
	}
	return false
}

// MergeEnv returns an Env with the values of every env, later ones winning
// key by key. Nil envs are skipped.
func MergeEnv(envs ...*Env) *Env {
	values := map[string]any{}
	for _, e := range envs {
		if e != nil {
			maps.Copy(values, e.values)
		}
	}
	return &Env{values: values}
}

// Keys returns the keys, sorted.
func (e *Env) Keys() []string {
	if e == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(e.values))
}

// Map returns a deep copy of the values.
func (e *Env) Map() map[string]any {
	if e == nil {
		return map[string]any{}
	}
	out, _ := deepCopy(e.values).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// Strings returns the values as strings, the way environment variables
// hold them: numbers in plain notation, booleans as true/false, nested
// values as JSON. Keys set to null are left out.
func (e *Env) Strings() map[string]string {
	out := map[string]string{}
	if e == nil {
		return out
	}
	for k, v := range e.values {
		if v != nil {
			out[k] = scalarString(v)
		}
	}
	return out
}

// Get returns the raw value of key. A key that is missing, or whose value
// is null, reports false.
func (e *Env) Get(key string) (any, bool) {
	if e == nil {
		return nil, false
	}
	v, ok := e.values[key]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// GetString returns the value of key as a string (numbers and booleans are
// formatted, tables and arrays written as JSON), or def when it is missing.
func (e *Env) GetString(key, def string) string {
	v, ok := e.Get(key)
	if !ok {
		return def
	}
	return scalarString(v)
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// GetInt returns the value of key as an int. Strings are trimmed and parsed;
// a float must be whole.
func (e *Env) GetInt(key string, def int) (int, error) {
	v, ok := e.Get(key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x), nil
		}
	case float64:
		// float64(math.MaxInt) rounds up to 2^63 (on 64-bit), which does
		// not fit in an int: the upper bound is exclusive.
		if x == math.Trunc(x) && x >= math.MinInt && x < -math.MinInt {
			return int(x), nil
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n, nil
		}
	default:
		if n, err := strconv.Atoi(scalarString(x)); err == nil {
			return n, nil
		}
	}
	return def, convError(key, v, "an integer")
}

// GetFloat returns the value of key as a float64. Strings are trimmed and parsed.
func (e *Env) GetFloat(key string, def float64) (float64, error) {
	v, ok := e.Get(key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	case bool:
	default:
		if f, err := strconv.ParseFloat(scalarString(x), 64); err == nil {
			return f, nil
		}
	}
	return def, convError(key, v, "a number")
}

// GetBool returns the value of key as a bool. Strings true/1/yes/on and
// false/0/no/off are accepted, trimmed and in any case; numbers 1 and 0 too.
func (e *Env) GetBool(key string, def bool) (bool, error) {
	v, ok := e.Get(key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "on":
			return true, nil
		case "false", "0", "no", "off":
			return false, nil
		}
	case int, int64, float64:
		switch scalarString(x) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
	}
	return def, convError(key, v, "a boolean (true/false, 1/0, yes/no, on/off)")
}

// GetList returns the value of key as a list of strings. A string is split
// on commas, items trimmed and empty items dropped; an array converts
// element by element (numbers and booleans are formatted).
func (e *Env) GetList(key string, def []string) ([]string, error) {
	v, ok := e.Get(key)
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case string:
		out := []string{}
		for _, item := range strings.Split(x, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return out, nil
	case []string:
		out := make([]string, 0, len(x))
		for _, item := range x {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return out, nil
	case []map[string]any: // a TOML array of tables ([[key]])
		if len(x) == 0 {
			return []string{}, nil
		}
		return def, fmt.Errorf("read env %s: item 0 is %s; want a string, number or boolean", key, describe(x[0]))
	case []any:
		out := make([]string, 0, len(x))
		for i, item := range x {
			switch item.(type) {
			case string, bool, int, int64, float64:
				out = append(out, scalarString(item))
			default:
				return def, fmt.Errorf("read env %s: item %d is %s; want a string, number or boolean", key, i, describe(item))
			}
		}
		return out, nil
	}
	return def, convError(key, v, "a list (comma-separated string or array)")
}

func convError(key string, v any, want string) error {
	return fmt.Errorf("read env %s: cannot convert %s to %s", key, describe(v), want)
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%v", v)
}
