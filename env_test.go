package synapse_test

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	synapse "github.com/synapse-sdk/synapse-go"
)

// checkConvErr asserts that err is non-nil and names the key and every
// fragment in want (typically the offending value).
func checkConvErr(t *testing.T, err error, key string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want an error naming %q", key)
	}
	msg := err.Error()
	if !strings.Contains(msg, key) {
		t.Errorf("error %q does not name the key %q", msg, key)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

func TestEnvGetString(t *testing.T) {
	env := synapse.NewEnv(map[string]any{
		"str":     "hello",
		"empty":   "",
		"nil":     nil,
		"int":     42,
		"int64":   int64(-7),
		"float":   1.5,
		"whole":   3.0,
		"float32": float32(0.1),
		"bool":    true,
		"table":   map[string]any{"a": int64(1)},
		"array":   []any{"x", int64(2)},
	})
	tests := []struct {
		key, def, want string
	}{
		{"missing", "def", "def"},
		{"nil", "def", "def"},
		{"str", "def", "hello"},
		{"empty", "def", ""},
		{"int", "def", "42"},
		{"int64", "def", "-7"},
		{"float", "def", "1.5"},
		{"whole", "def", "3"},
		{"float32", "def", "0.1"},
		{"bool", "def", "true"},
		{"table", "def", `{"a":1}`},
		{"array", "def", `["x",2]`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := env.GetString(tt.key, tt.def); got != tt.want {
				t.Errorf("GetString(%q, %q) = %q, want %q", tt.key, tt.def, got, tt.want)
			}
		})
	}
}

func TestEnvGetInt(t *testing.T) {
	const def = 99
	tests := []struct {
		name    string
		value   any
		want    int
		wantErr string // fragment of the error besides the key; "" means no error
	}{
		{"int", 42, 42, ""},
		{"negative int", -3, -3, ""},
		{"int64", int64(8080), 8080, ""},
		{"int32", int32(12), 12, ""},
		{"uint8", uint8(200), 200, ""},
		{"whole float", 3.0, 3, ""},
		{"negative whole float", -2.0, -2, ""},
		{"string", "42", 42, ""},
		{"padded string", " \t42\n", 42, ""},
		{"signed string", "+7", 7, ""},
		{"negative string", "-13", -13, ""},
		{"fractional float", 2.5, def, "2.5"},
		{"float 2^63", math.Ldexp(1, 63), def, "9.223372036854776e+18"},
		{"float -2^64", -math.Ldexp(1, 64), def, "-1.8446744073709552e+19"},
		{"NaN", math.NaN(), def, "NaN"},
		{"Inf", math.Inf(1), def, "+Inf"},
		{"word", "abc", def, `"abc"`},
		{"empty string", "", def, `""`},
		{"blank string", "   ", def, `"   "`},
		{"decimal string", "4.0", def, `"4.0"`},
		{"hex string", "0x10", def, `"0x10"`},
		{"overflowing string", "99999999999999999999", def, `"99999999999999999999"`},
		{"bool", true, def, "true"},
		{"table", map[string]any{"a": 1}, def, "a table"},
		{"array", []any{1}, def, "an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "THE_KEY"
			env := synapse.NewEnv(map[string]any{key: tt.value})
			got, err := env.GetInt(key, def)
			if tt.wantErr != "" {
				checkConvErr(t, err, key, tt.wantErr, "integer")
			} else if err != nil {
				t.Fatalf("GetInt(%#v) error = %v", tt.value, err)
			}
			if got != tt.want {
				t.Errorf("GetInt(%#v) = %d, want %d", tt.value, got, tt.want)
			}
		})
	}
}

// The float bounds of GetInt are exact: -2^63 and the largest float below
// 2^63 fit in an int64, 2^63 does not (it must not wrap around).
func TestEnvGetIntFloatBounds(t *testing.T) {
	if strconv.IntSize != 64 {
		t.Skip("bounds are for 64-bit ints")
	}
	tests := []struct {
		value   float64
		want    int
		wantErr bool
	}{
		{-math.Ldexp(1, 63), math.MinInt, false},
		{math.Nextafter(math.Ldexp(1, 63), 0), 1<<63 - 1024, false},
		{math.Ldexp(1, 63), -1, true},
		{math.Nextafter(-math.Ldexp(1, 63), math.Inf(-1)), -1, true},
	}
	for _, tt := range tests {
		env := synapse.NewEnv(map[string]any{"N": tt.value})
		got, err := env.GetInt("N", -1)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("GetInt(%v) = %d, %v; want %d, error %v", tt.value, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestEnvGetFloat(t *testing.T) {
	const def = -1.25
	tests := []struct {
		name    string
		value   any
		want    float64
		wantErr string
	}{
		{"float", 0.5, 0.5, ""},
		{"int", 3, 3, ""},
		{"int64", int64(-4), -4, ""},
		{"int32", int32(6), 6, ""},
		{"float32", float32(0.25), 0.25, ""},
		{"string", "2.5", 2.5, ""},
		{"padded string", "  1e3 ", 1000, ""},
		{"integer string", "7", 7, ""},
		{"negative string", "-0.75", -0.75, ""},
		{"word", "fast", def, `"fast"`},
		{"empty string", "", def, `""`},
		{"comma decimal", "1,5", def, `"1,5"`},
		{"bool", false, def, "false"},
		{"table", map[string]any{}, def, "a table"},
		{"array", []any{1.0}, def, "an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "RATIO"
			env := synapse.NewEnv(map[string]any{key: tt.value})
			got, err := env.GetFloat(key, def)
			if tt.wantErr != "" {
				checkConvErr(t, err, key, tt.wantErr, "number")
			} else if err != nil {
				t.Fatalf("GetFloat(%#v) error = %v", tt.value, err)
			}
			if got != tt.want {
				t.Errorf("GetFloat(%#v) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestEnvGetBool(t *testing.T) {
	tests := []struct {
		name    string
		value   any
		def     bool
		want    bool
		wantErr string
	}{
		// Each accepted value uses the opposite default, so that returning
		// the default would fail the test.
		{"bool true", true, false, true, ""},
		{"bool false", false, true, false, ""},
		{"true", "true", false, true, ""},
		{"TRUE", "TRUE", false, true, ""},
		{"1", "1", false, true, ""},
		{"yes", "yes", false, true, ""},
		{"padded Yes", "  Yes\t", false, true, ""},
		{"on", "on", false, true, ""},
		{"ON", "ON", false, true, ""},
		{"false", "false", true, false, ""},
		{"False", "False", true, false, ""},
		{"0", "0", true, false, ""},
		{"no", "no", true, false, ""},
		{"NO padded", "\nNO ", true, false, ""},
		{"off", "off", true, false, ""},
		{"oFf", "oFf", true, false, ""},
		{"int 1", 1, false, true, ""},
		{"int 0", 0, true, false, ""},
		{"int64 1", int64(1), false, true, ""},
		{"float 0", 0.0, true, false, ""},
		{"float 1", 1.0, false, true, ""},
		{"int 2", 2, true, true, "2"},
		{"float 0.5", 0.5, false, false, "0.5"},
		{"maybe", "maybe", true, true, `"maybe"`},
		{"empty", "", false, false, `""`},
		{"truee", "truee", false, false, `"truee"`},
		{"y", "y", false, false, `"y"`},
		{"table", map[string]any{"on": true}, true, true, "a table"},
		{"array", []any{true}, false, false, "an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "DEBUG"
			env := synapse.NewEnv(map[string]any{key: tt.value})
			got, err := env.GetBool(key, tt.def)
			if tt.wantErr != "" {
				checkConvErr(t, err, key, tt.wantErr, "boolean")
			} else if err != nil {
				t.Fatalf("GetBool(%#v) error = %v", tt.value, err)
			}
			if got != tt.want {
				t.Errorf("GetBool(%#v, %v) = %v, want %v", tt.value, tt.def, got, tt.want)
			}
		})
	}
}

func TestEnvGetList(t *testing.T) {
	def := []string{"default"}
	tests := []struct {
		name    string
		value   any
		want    []string
		wantErr string
	}{
		{"single", "a", []string{"a"}, ""},
		{"comma separated", "a,b,c", []string{"a", "b", "c"}, ""},
		{"trimmed and empty dropped", " a , b ,, c ,", []string{"a", "b", "c"}, ""},
		{"inner spaces kept", "new york, los angeles", []string{"new york", "los angeles"}, ""},
		{"empty string", "", []string{}, ""},
		{"only separators", " , ,\t,", []string{}, ""},
		{"string slice", []string{"x", "y"}, []string{"x", "y"}, ""},
		{"array of strings", []any{"a", "b"}, []string{"a", "b"}, ""},
		{"mixed array", []any{"x", int64(2), 3, 1.5, true}, []string{"x", "2", "3", "1.5", "true"}, ""},
		{"empty array", []any{}, []string{}, ""},
		{"nested array", []any{"a", []any{"b"}}, def, "item 1"},
		{"nested table", []any{map[string]any{"a": 1}}, def, "item 0"},
		{"array of tables", []map[string]any{{"a": int64(1)}}, def, "item 0"},
		{"int", 5, def, "5"},
		{"bool", true, def, "true"},
		{"table", map[string]any{"a": "b"}, def, "a table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "TAGS"
			env := synapse.NewEnv(map[string]any{key: tt.value})
			got, err := env.GetList(key, def)
			if tt.wantErr != "" {
				checkConvErr(t, err, key, tt.wantErr)
			} else if err != nil {
				t.Fatalf("GetList(%#v) error = %v", tt.value, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GetList(%#v) = %#v, want %#v", tt.value, got, tt.want)
			}
		})
	}
}

func TestEnvGetListReturnsCopy(t *testing.T) {
	env := synapse.NewEnv(map[string]any{"L": []string{"a", "b"}})
	got, err := env.GetList("L", nil)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = "changed"
	again, _ := env.GetList("L", nil)
	if want := []string{"a", "b"}; !reflect.DeepEqual(again, want) {
		t.Errorf("after mutating a returned list, GetList = %q, want %q", again, want)
	}
}

// Missing keys, null values and a nil *Env all give the default without an
// error, for every getter.
func TestEnvGettersDefault(t *testing.T) {
	envs := []struct {
		name string
		env  *synapse.Env
		key  string
	}{
		{"missing key", synapse.NewEnv(map[string]any{"other": "1"}), "K"},
		{"nil value", synapse.NewEnv(map[string]any{"K": nil}), "K"},
		{"nil map", synapse.NewEnv(nil), "K"},
		{"nil env", nil, "K"},
	}
	for _, tt := range envs {
		t.Run(tt.name, func(t *testing.T) {
			if v, ok := tt.env.Get(tt.key); ok || v != nil {
				t.Errorf("Get = %v, %v; want nil, false", v, ok)
			}
			if got := tt.env.GetString(tt.key, "d"); got != "d" {
				t.Errorf("GetString = %q, want %q", got, "d")
			}
			if got, err := tt.env.GetInt(tt.key, 17); got != 17 || err != nil {
				t.Errorf("GetInt = %d, %v; want 17, nil", got, err)
			}
			if got, err := tt.env.GetFloat(tt.key, 2.5); got != 2.5 || err != nil {
				t.Errorf("GetFloat = %v, %v; want 2.5, nil", got, err)
			}
			for _, def := range []bool{true, false} {
				if got, err := tt.env.GetBool(tt.key, def); got != def || err != nil {
					t.Errorf("GetBool(def %v) = %v, %v; want %v, nil", def, got, err, def)
				}
			}
			def := []string{"x", "y"}
			if got, err := tt.env.GetList(tt.key, def); !reflect.DeepEqual(got, def) || err != nil {
				t.Errorf("GetList = %q, %v; want %q, nil", got, err, def)
			}
		})
	}
}

func TestEnvGet(t *testing.T) {
	env := synapse.NewEnv(map[string]any{"s": "v", "zero": 0, "empty": ""})
	tests := []struct {
		key    string
		want   any
		wantOK bool
	}{
		{"s", "v", true},
		{"zero", 0, true},
		{"empty", "", true},
		{"missing", nil, false},
		{"S", nil, false}, // keys are case-sensitive
	}
	for _, tt := range tests {
		got, ok := env.Get(tt.key)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Get(%q) = %#v, %v; want %#v, %v", tt.key, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestNewEnvCopiesMap(t *testing.T) {
	src := map[string]any{"A": "1", "B": "2"}
	env := synapse.NewEnv(src)
	src["A"] = "changed"
	src["C"] = "added"
	delete(src, "B")

	if got := env.GetString("A", ""); got != "1" {
		t.Errorf("A = %q after mutating the source map, want %q", got, "1")
	}
	if got := env.GetString("B", ""); got != "2" {
		t.Errorf("B = %q after deleting it from the source map, want %q", got, "2")
	}
	if _, ok := env.Get("C"); ok {
		t.Error("C added to the source map after NewEnv is visible in the Env")
	}
	if got, want := env.Keys(), []string{"A", "B"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
}

func TestEnvMapReturnsCopy(t *testing.T) {
	env := synapse.NewEnv(map[string]any{"A": "1"})
	m := env.Map()
	if want := map[string]any{"A": "1"}; !reflect.DeepEqual(m, want) {
		t.Fatalf("Map = %#v, want %#v", m, want)
	}
	m["A"] = "changed"
	m["B"] = "added"
	if got := env.GetString("A", ""); got != "1" {
		t.Errorf("A = %q after mutating Map's result, want %q", got, "1")
	}
	if _, ok := env.Get("B"); ok {
		t.Error("key added to Map's result is visible in the Env")
	}
}

func TestEnvKeys(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"sorted", map[string]any{"b": 1, "C": 2, "a": 3, "_": 4}, []string{"C", "_", "a", "b"}},
		{"nil value key listed", map[string]any{"x": nil}, []string{"x"}},
		{"empty", map[string]any{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := synapse.NewEnv(tt.values).Keys()
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("Keys = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	osEnv := synapse.NewEnv(map[string]any{"HOST": "os", "PORT": "1", "USER": "os-user", "DEBUG": "off"})
	configEnv := synapse.NewEnv(map[string]any{"HOST": "config", "PORT": "2", "REGION": "eu"})
	fileEnv := synapse.NewEnv(map[string]any{"PORT": int64(3), "TAGS": []any{"f"}})
	explicitEnv := synapse.NewEnv(map[string]any{"PORT": 4, "DEBUG": "on"})

	tests := []struct {
		name string
		envs []*synapse.Env
		want map[string]any
	}{
		{"none", nil, map[string]any{}},
		{"only nil", []*synapse.Env{nil, nil}, map[string]any{}},
		{"single", []*synapse.Env{configEnv}, configEnv.Map()},
		{"nil skipped", []*synapse.Env{nil, configEnv, nil}, configEnv.Map()},
		{"later wins", []*synapse.Env{osEnv, configEnv}, map[string]any{
			"HOST": "config", "PORT": "2", "USER": "os-user", "DEBUG": "off", "REGION": "eu",
		}},
		{"earlier loses regardless of order", []*synapse.Env{configEnv, osEnv}, map[string]any{
			"HOST": "os", "PORT": "1", "USER": "os-user", "DEBUG": "off", "REGION": "eu",
		}},
		{"precedence chain", []*synapse.Env{osEnv, configEnv, fileEnv, explicitEnv}, map[string]any{
			"HOST": "config", "PORT": 4, "USER": "os-user", "DEBUG": "on", "REGION": "eu", "TAGS": []any{"f"},
		}},
		{"missing file layer", []*synapse.Env{osEnv, configEnv, nil, explicitEnv}, map[string]any{
			"HOST": "config", "PORT": 4, "USER": "os-user", "DEBUG": "on", "REGION": "eu",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := synapse.MergeEnv(tt.envs...)
			if got == nil {
				t.Fatal("MergeEnv returned nil")
			}
			if m := got.Map(); !reflect.DeepEqual(m, tt.want) {
				t.Errorf("MergeEnv = %#v, want %#v", m, tt.want)
			}
		})
	}

	// The inputs are left untouched.
	if got := osEnv.GetString("HOST", ""); got != "os" {
		t.Errorf("osEnv HOST = %q after merging, want %q", got, "os")
	}
	if _, ok := osEnv.Get("REGION"); ok {
		t.Error("merging added REGION to osEnv")
	}
}

func TestEnvFromOS(t *testing.T) {
	t.Setenv("SYNENVTEST_HOST", "db.local")
	t.Setenv("SYNENVTEST_PORT", " 5432 ")
	t.Setenv("SYNENVTEST_DSN", "user=a password=b=c")
	t.Setenv("SYNENVTEST_EMPTY", "")
	t.Setenv("SYNENVTEST_", "bare prefix")
	t.Setenv("synenvtest_lower", "wrong case")
	t.Setenv("X_SYNENVTEST_OTHER", "prefix not at start")

	t.Run("prefix kept and stripped", func(t *testing.T) {
		env := synapse.EnvFromOS("SYNENVTEST_")
		want := map[string]any{
			"HOST":  "db.local",
			"PORT":  " 5432 ",
			"DSN":   "user=a password=b=c",
			"EMPTY": "",
		}
		if got := env.Map(); !reflect.DeepEqual(got, want) {
			t.Errorf("EnvFromOS(prefix) = %#v, want %#v", got, want)
		}
		if port, err := env.GetInt("PORT", 0); port != 5432 || err != nil {
			t.Errorf("GetInt(PORT) = %d, %v; want 5432, nil", port, err)
		}
	})

	t.Run("prefix is case-sensitive", func(t *testing.T) {
		env := synapse.EnvFromOS("synenvtest_")
		want := map[string]any{"lower": "wrong case"}
		if got := env.Map(); !reflect.DeepEqual(got, want) {
			t.Errorf("EnvFromOS(lower prefix) = %#v, want %#v", got, want)
		}
	})

	t.Run("empty prefix keeps everything", func(t *testing.T) {
		env := synapse.EnvFromOS("")
		tests := map[string]string{
			"SYNENVTEST_HOST":    "db.local",
			"SYNENVTEST_":        "bare prefix",
			"synenvtest_lower":   "wrong case",
			"X_SYNENVTEST_OTHER": "prefix not at start",
			"SYNENVTEST_EMPTY":   "",
		}
		for k, want := range tests {
			got, ok := env.Get(k)
			if !ok || got != want {
				t.Errorf("Get(%q) = %#v, %v; want %q, true", k, got, ok, want)
			}
		}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			if k == "" {
				continue
			}
			if got, ok := env.Get(k); !ok || got != v {
				t.Errorf("Get(%q) = %#v, %v; want %q, true", k, got, ok, v)
			}
		}
	})

	t.Run("snapshot at call time", func(t *testing.T) {
		env := synapse.EnvFromOS("SYNENVTEST_")
		t.Setenv("SYNENVTEST_HOST", "changed")
		if got := env.GetString("HOST", ""); got != "db.local" {
			t.Errorf("HOST = %q after changing the variable, want the snapshot %q", got, "db.local")
		}
	})
}

func writeTOML(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "env.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const sampleTOML = `# service settings
name = "svc"
port = 8080
ratio = 0.5
debug = true
verbose = "yes"
tags = ["a", "b"]
csv = "x, y ,z"
mixed = [1, "two", true, 2.5]
nested = [[1], [2]]
inline = [{ a = 1 }]

[db]
host = "localhost"

[db.pool]
size = 4

[[servers]]
addr = "s1"
`

func TestEnvFromFile(t *testing.T) {
	path := writeTOML(t, sampleTOML)
	env, err := synapse.EnvFromFile(path)
	if err != nil {
		t.Fatalf("EnvFromFile: %v", err)
	}

	wantKeys := []string{"csv", "db", "debug", "inline", "mixed", "name", "nested", "port", "ratio", "servers", "tags", "verbose"}
	if got := env.Keys(); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("Keys = %q, want %q", got, wantKeys)
	}

	t.Run("scalars", func(t *testing.T) {
		if got := env.GetString("name", ""); got != "svc" {
			t.Errorf("name = %q, want %q", got, "svc")
		}
		if got, err := env.GetInt("port", 0); got != 8080 || err != nil {
			t.Errorf("port = %d, %v; want 8080, nil", got, err)
		}
		if got, err := env.GetFloat("ratio", 0); got != 0.5 || err != nil {
			t.Errorf("ratio = %v, %v; want 0.5, nil", got, err)
		}
		if got, err := env.GetFloat("port", 0); got != 8080 || err != nil {
			t.Errorf("port as float = %v, %v; want 8080, nil", got, err)
		}
		if got, err := env.GetBool("debug", false); !got || err != nil {
			t.Errorf("debug = %v, %v; want true, nil", got, err)
		}
		if got, err := env.GetBool("verbose", false); !got || err != nil {
			t.Errorf("verbose = %v, %v; want true, nil", got, err)
		}
		if got := env.GetString("port", ""); got != "8080" {
			t.Errorf("port as string = %q, want %q", got, "8080")
		}
	})

	t.Run("lists", func(t *testing.T) {
		lists := []struct {
			key     string
			want    []string
			wantErr string
		}{
			{"tags", []string{"a", "b"}, ""},
			{"csv", []string{"x", "y", "z"}, ""},
			{"mixed", []string{"1", "two", "true", "2.5"}, ""},
			{"nested", nil, "item 0"},
			{"inline", nil, "item 0"},
			{"servers", nil, "item 0"},
			{"db", nil, "a table"},
		}
		for _, tt := range lists {
			got, err := env.GetList(tt.key, nil)
			if tt.wantErr != "" {
				checkConvErr(t, err, tt.key, tt.wantErr)
			} else if err != nil {
				t.Errorf("GetList(%q) error = %v", tt.key, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GetList(%q) = %#v, want %#v", tt.key, got, tt.want)
			}
		}
	})

	t.Run("nested tables stay nested", func(t *testing.T) {
		raw, ok := env.Get("db")
		if !ok {
			t.Fatal("db missing")
		}
		db, ok := raw.(map[string]any)
		if !ok {
			t.Fatalf("db is %T, want map[string]any", raw)
		}
		want := map[string]any{
			"host": "localhost",
			"pool": map[string]any{"size": int64(4)},
		}
		if !reflect.DeepEqual(db, want) {
			t.Errorf("db = %#v, want %#v", db, want)
		}
		if _, ok := env.Get("db.host"); ok {
			t.Error(`nested key flattened to "db.host"`)
		}
		if got, want := env.GetString("db", ""), `{"host":"localhost","pool":{"size":4}}`; got != want {
			t.Errorf("GetString(db) = %q, want %q", got, want)
		}
		if _, err := env.GetInt("db", 0); err == nil {
			t.Error("GetInt(db) on a table: error = nil")
		}
	})

	t.Run("type errors name key and value", func(t *testing.T) {
		if got, err := env.GetInt("name", 7); got != 7 {
			t.Errorf("GetInt(name) = %d, want the default 7", got)
		} else {
			checkConvErr(t, err, "name", `"svc"`)
		}
		if got, err := env.GetInt("ratio", 7); got != 7 {
			t.Errorf("GetInt(ratio) = %d, want the default 7", got)
		} else {
			checkConvErr(t, err, "ratio", "0.5")
		}
		if got, err := env.GetBool("port", true); !got {
			t.Errorf("GetBool(port) = %v, want the default true", got)
		} else {
			checkConvErr(t, err, "port", "8080")
		}
	})
}

func TestEnvFromFileEmpty(t *testing.T) {
	env, err := synapse.EnvFromFile(writeTOML(t, ""))
	if err != nil {
		t.Fatalf("EnvFromFile(empty file): %v", err)
	}
	if env == nil || len(env.Keys()) != 0 {
		t.Errorf("EnvFromFile(empty file) = %v, want an empty Env", env)
	}
}

func TestEnvFromFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")

	tests := []struct {
		name    string
		content string // written to env.toml unless path is set
		path    string
		want    []string // fragments; the path is always required
		notWant string
	}{
		{name: "missing file", path: missing, want: []string{"does not exist"}},
		{name: "directory", path: dir, notWant: "does not exist"},
		{name: "missing value", content: "a = 1\n\nb = = 2\n", want: []string{":3:5:"}},
		{name: "bad value", content: "ok = true\nkey = tru\n", want: []string{":2:7:"}},
		{name: "unterminated string", content: "a = \"x\nb = 2\n", want: []string{":1:7:"}},
		{name: "bad table header", content: "ok = true\n[a]]\n", want: []string{":2:4:"}},
		{name: "duplicate key", content: "a = 1\na = 2\n", want: []string{":2:7:"}},
		{name: "double comma in array", content: "x = [1,\n 2,,]\n", want: []string{":2:4:"}, notWant: "dotenv"},
		{name: "dotenv syntax", content: "# settings\nDATASET=/data/cats\nSEED=7\n", want: []string{":2:", "env files are TOML, not dotenv", `DATASET = "/data/cats"`}},
		{name: "dotenv export", content: "export TOKEN=\"x\"\n", want: []string{"env files are TOML, not dotenv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = writeTOML(t, tt.content)
			}
			env, err := synapse.EnvFromFile(path)
			if err == nil {
				t.Fatalf("EnvFromFile(%s) error = nil, Env %v", path, env.Map())
			}
			if env != nil {
				t.Errorf("EnvFromFile returned a non-nil Env with an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not contain the path %q", msg, path)
			}
			for _, w := range tt.want {
				// Positions must follow the path directly: path:line:col.
				if strings.HasPrefix(w, ":") {
					w = path + w
				}
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tt.notWant != "" && strings.Contains(msg, tt.notWant) {
				t.Errorf("error %q contains %q", msg, tt.notWant)
			}
		})
	}
}
