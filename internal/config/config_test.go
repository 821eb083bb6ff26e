package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// yml joins lines with "\n" (and ends with one), so that the i-th
// argument is on line i+1 of the file.
func yml(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// minimal is the smallest valid config.
var minimal = yml("name: My Plugin", "code: my-plugin")

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the whole Error() text
	}{
		// The file as a whole.
		{"empty file", "", "config.yaml: file is empty; a plugin config needs at least name and code"},
		{"only comments", yml("# a plugin", "# nothing yet"), "config.yaml: file is empty; a plugin config needs at least name and code"},
		{"only a document marker", yml("---"), "config.yaml: file is empty; a plugin config needs at least name and code"},
		{"explicit null document", yml("~"), "config.yaml: file is empty; a plugin config needs at least name and code"},
		{"syntax error on line 1", yml("name: a: b"), "config.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"syntax error on line 1 of 2", yml("name: a: b", "code: x"), "config.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"parser error on line 1", yml("[a, b] c", "# end"), "config.yaml:1: invalid YAML: did not find expected <document start>"},
		{"syntax error on line 3", yml("name: x", "code: y", "  bad: 1"), "config.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"unclosed flow sequence", yml("name: x", "code: x", "actions: [unclosed", "foo: 1"), "config.yaml:3: invalid YAML: did not find expected ',' or ']'"},
		{"key missing", yml("name: x", "code: y", ": 1"), "config.yaml:3: invalid YAML: did not find expected key"},
		{"sequence after mapping", yml("name: x", "code: y", "- c"), "config.yaml:3: invalid YAML: did not find expected key"},
		{"bad indentation", yml("env:", "  A: 1", " B: 2"), "config.yaml:3: invalid YAML: did not find expected key"},
		{"unclosed flow at the end", "name: x\ncode:\n- [A,", "config.yaml:3: invalid YAML: did not find expected node content"},
		{"unclosed flow mapping on line 1", yml("env: {A: 1", "B: 2"), "config.yaml:2: invalid YAML: did not find expected ',' or '}'"},
		{"unterminated quote", yml("name: x", "code: 'y", "a: 1"), "config.yaml:2: invalid YAML: found unexpected end of stream"},
		{"unknown anchor", yml("name: x", "code: *y"), "config.yaml: invalid YAML: unknown anchor 'y' referenced"},
		{"tab indentation", yml("name: x", "env:", "\tA: 1"), "config.yaml:3: invalid YAML: found character that cannot start any token"},
		{"top level sequence", yml("# list", "- name: x"), "config.yaml:2: the top level must be a mapping of settings such as name and code (got a sequence)"},
		{"top level string", yml("hello"), `config.yaml:1: the top level must be a mapping of settings such as name and code (got the string "hello")`},
		{"second document", yml("name: x", "code: y", "---", "name: z"), "config.yaml:3: a config file must hold a single YAML document, found a second one"},
		{"non-string key", yml("name: x", "code: y", "? [a, b]", ": 1"), "config.yaml:3: keys must be strings (got a sequence)"},
		{"missing key", yml("name: x", "code: y", "?", ": 1"), "config.yaml:3: keys must be strings (got null)"},
		{"duplicate key", yml("name: x", "code: y", "name: z"), "config.yaml:3: name: duplicate key (first defined at line 1)"},

		// name and code.
		{"name and code missing at the mapping's line", yml("# header", "version: 1.0.0"),
			"config.yaml:2: name: is required\nconfig.yaml:2: code: is required"},
		{"name null", yml("code: x", "name:"), "config.yaml:2: name: must not be empty (got null)"},
		{"name empty string", yml("code: x", `name: ""`), "config.yaml:2: name: must not be empty"},
		{"name number", yml("code: x", "name: 12"), "config.yaml:2: name: must be a string (got the number 12)"},
		{"name mapping", yml("code: x", "name:", "  first: a"), "config.yaml:3: name: must be a string (got a mapping)"},
		{"code with spaces", yml("name: x", "code: My Plugin"),
			`config.yaml:2: code: must be lowercase letters, digits and dashes, not starting or ending with a dash (got "My Plugin")`},
		{"code starting with a dash", yml("name: x", "code: -abc"),
			`config.yaml:2: code: must be lowercase letters, digits and dashes, not starting or ending with a dash (got "-abc")`},
		{"code ending with a dash", yml("name: x", "code: abc-"),
			`config.yaml:2: code: must be lowercase letters, digits and dashes, not starting or ending with a dash (got "abc-")`},
		{"code with underscore", yml("name: x", "code: a_b"),
			`config.yaml:2: code: must be lowercase letters, digits and dashes, not starting or ending with a dash (got "a_b")`},
		{"code single dash", yml("name: x", "code: '-'"),
			`config.yaml:2: code: must be lowercase letters, digits and dashes, not starting or ending with a dash (got "-")`},
		{"code boolean", yml("name: x", "code: true"), "config.yaml:2: code: must be a string (got the boolean true)"},
		{"code unquoted number", yml("name: x", "code: 123"), "config.yaml:2: code: must be a string (got the number 123)"},

		// Scalar settings.
		{"version mapping", minimal + yml("version:", "  major: 1"), "config.yaml:4: version: must be a string (got a mapping)"},
		{"version boolean", minimal + yml("version: false"), "config.yaml:3: version: must be a string (got the boolean false)"},
		{"version empty", minimal + yml("version: ''"), "config.yaml:3: version: must not be empty"},
		{"description number", minimal + yml("description: 3.5"), "config.yaml:3: description: must be a string (got the number 3.5)"},
		{"readme sequence", minimal + yml("readme: [a]"), "config.yaml:3: readme: must be a string (got a sequence)"},
		{"category unknown", minimal + yml("category: vision"),
			`config.yaml:3: category: must be one of neural_net, export, upload, smart_tool, pre_annotation, post_annotation, data_validation, converter, custom (got "vision")`},
		{"category wrong case", minimal + yml("category: Export"),
			`config.yaml:3: category: must be one of neural_net, export, upload, smart_tool, pre_annotation, post_annotation, data_validation, converter, custom (got "Export")`},
		{"package_manager unknown", minimal + yml("package_manager: poetry"), `config.yaml:3: package_manager: must be one of pip, uv (got "poetry")`},
		{"data_type unknown", minimal + yml("data_type: images"), `config.yaml:3: data_type: must be one of image, text, video, pcd, audio (got "images")`},
		{"neural_net without data_type", yml("# model", "name: x", "code: y", "category: neural_net"),
			"config.yaml:2: data_type: is required for neural_net plugins; add 'data_type: image' (or text, video, pcd, audio)"},
		{"neural_net with null data_type", yml("name: x", "code: y", "category: neural_net", "data_type:"),
			"config.yaml:4: data_type: is required for neural_net plugins; add 'data_type: image' (or text, video, pcd, audio)"},
		{"neural_net with bad data_type reports it once", yml("name: x", "code: y", "category: neural_net", "data_type: 3d"),
			`config.yaml:4: data_type: must be one of image, text, video, pcd, audio (got "3d")`},
		{"tasks string", minimal + yml("tasks: image.detection"), `config.yaml:3: tasks: must be a list of strings (got the string "image.detection")`},
		{"tasks item mapping", minimal + yml("tasks:", "  - image.detection", "  - {a: 1}"), "config.yaml:5: tasks[1]: must be a string (got a mapping)"},
		{"tasks item null", minimal + yml("tasks:", "  - ~"), "config.yaml:4: tasks[0]: must be a string (got null)"},
		{"env sequence", minimal + yml("env:", "  - A=1"), "config.yaml:4: env: must be a mapping (got a sequence)"},
		{"runtime_env string", minimal + yml("runtime_env: pip"), `config.yaml:3: runtime_env: must be a mapping (got the string "pip")`},
		{"env duplicate key", minimal + yml("env:", "  A: 1", "  A: 2"), "config.yaml:5: env.A: duplicate key (first defined at line 4)"},

		// actions.
		{"actions sequence", minimal + yml("actions:", "  - train"), "config.yaml:4: actions: must be a mapping of action name to settings (got a sequence)"},
		{"actions string", minimal + yml("actions: train"), `config.yaml:3: actions: must be a mapping of action name to settings (got the string "train")`},
		{"action value string", minimal + yml("actions:", "  train: plugin.train"), `config.yaml:4: actions.train: must be a mapping of action settings (got the string "plugin.train")`},
		{"action method local", minimal + yml("# actions", "actions:", "  train:", "    method: local"),
			`config.yaml:6: actions.train.method: must be one of job, task, serve, restapi (got "local")`},
		{"action method number", minimal + yml("actions:", "  train:", "    method: 1"), "config.yaml:5: actions.train.method: must be a string (got the number 1)"},
		{"action name differs from key", minimal + yml("actions:", "  train:", "    name: training"),
			`config.yaml:5: actions.train.name: must match the action key "train" (got "training")`},
		{"action entrypoint mapping", minimal + yml("actions:", "  train:", "    entrypoint:", "      a: b"),
			"config.yaml:6: actions.train.entrypoint: must be a string (got a mapping)"},
		{"action description sequence", minimal + yml("actions:", "  train:", "    description: [a]"),
			"config.yaml:5: actions.train.description: must be a string (got a sequence)"},
		{"action input_type number", minimal + yml("actions:", "  train:", "    input_type: 5"),
			"config.yaml:5: actions.train.input_type: must be a string (got the number 5)"},
		{"action output_type boolean", minimal + yml("actions:", "  train:", "    output_type: true"),
			"config.yaml:5: actions.train.output_type: must be a string (got the boolean true)"},
		{"duplicate action setting", minimal + yml("actions:", "  train:", "    method: job", "    method: task"),
			"config.yaml:6: actions.train.method: duplicate key (first defined at line 5)"},
		{"duplicate action", minimal + yml("actions:", "  train:", "  evaluate:", "  train:"), "config.yaml:6: actions.train: duplicate key (first defined at line 4)"},
		{"empty action name", minimal + yml("actions:", `  "": {}`), "config.yaml:4: actions: action names must not be empty"},
		{"bad merge value", minimal + yml("actions:", "  train:", "    <<: 5"),
			"config.yaml:5: actions.train.<<: must be a mapping or a list of mappings to merge (got the number 5)"},

		// pipelines.
		{"pipelines sequence", minimal + yml("pipelines:", "  - train"),
			"config.yaml:4: pipelines: must be a mapping of pipeline name to a list of action names (got a sequence)"},
		{"pipeline string", minimal + yml("pipelines:", "  nightly: train"), `config.yaml:4: pipelines.nightly: must be a list of action names (got the string "train")`},
		{"pipeline empty list", minimal + yml("pipelines:", "  nightly: []"), "config.yaml:4: pipelines.nightly: must list at least one action"},
		{"pipeline null", minimal + yml("pipelines:", "  nightly:"), "config.yaml:4: pipelines.nightly: must list at least one action"},
		{"pipeline item mapping", minimal + yml("pipelines:", "  nightly:", "    - {a: 1}"), "config.yaml:5: pipelines.nightly[0]: must be an action name (got a mapping)"},
		{"pipeline unknown action", minimal + yml("actions:", "  train:", "  evaluate:", "pipelines:", "  nightly:", "    - train", "    - trian"),
			`config.yaml:9: pipelines.nightly[1]: unknown action "trian" (actions: train, evaluate)`},
		{"pipelines before actions", minimal + yml("pipelines:", "  nightly: [train, evaluate]", "actions:", "  train:"),
			`config.yaml:4: pipelines.nightly[1]: unknown action "evaluate" (actions: train)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("testdir/config.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", cfg, tt.want)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error: %+v", cfg)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got: %s\nwant: %s", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("errors.As(%T, *Error) = false", err)
			}
			if ce.File != "testdir/config.yaml" {
				t.Errorf("Error.File = %q, want the filename given to Parse", ce.File)
			}
			if first := strings.SplitN(tt.want, "\n", 2)[0]; ce.Error() != first {
				t.Errorf("errors.As found %q, want the first problem %q", ce.Error(), first)
			}
			var ec interface{ ExitCode() int }
			if !errors.As(err, &ec) || ec.ExitCode() != 2 {
				t.Errorf("error has no ExitCode() of 2: %#v", err)
			}
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	src := yml(
		"name: My",                  // 1
		"code: My Plugin",           // 2
		"version: {a: 1}",           // 3
		"category: neural_net",      // 4
		"actions:",                  // 5
		"  train:",                  // 6
		"    method: local",         // 7
		"    timeout: 5",            // 8
		"  evaluate:",               // 9
		"  x: 5",                    // 10
		"pipelines:",                // 11
		"  nightly: [train, trian]", // 12
		"  empty: []",               // 13
		"foo: 1",                    // 14
		"name: dup",                 // 15
	)
	want := []string{
		"config.yaml:1: data_type: is required for neural_net plugins; add 'data_type: image' (or text, video, pcd, audio)",
		`config.yaml:2: code: must be lowercase letters, digits and dashes, not starting or ending with a dash (got "My Plugin")`,
		"config.yaml:3: version: must be a string (got a mapping)",
		`config.yaml:7: actions.train.method: must be one of job, task, serve, restapi (got "local")`,
		"config.yaml:10: actions.x: must be a mapping of action settings (got the number 5)",
		`config.yaml:12: pipelines.nightly[1]: unknown action "trian" (actions: train, evaluate)`,
		"config.yaml:13: pipelines.empty: must list at least one action",
		"config.yaml:15: name: duplicate key (first defined at line 1)",
	}
	_, err := Parse("/some/where/config.yaml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse error is %T (%v), want ErrorList", err, err)
	}
	if len(list) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(list), len(want), err)
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("error:\n got: %s\nwant: %s", got, strings.Join(want, "\n"))
	}
	if list[0].Line != 1 || list[0].Field != "data_type" || list[7].Line != 15 || list[7].Field != "name" {
		t.Errorf("problems not ordered by line with their fields: first %+v, last %+v", list[0], list[7])
	}
	var first *Error
	if !errors.As(err, &first) || first != list[0] {
		t.Errorf("errors.As(*Error) = %v, want the first problem %v", first, list[0])
	}
	if list.ExitCode() != 2 {
		t.Errorf("ExitCode() = %d, want 2", list.ExitCode())
	}
	if !errors.Is(err, list[3]) {
		t.Errorf("errors.Is does not see the fourth problem")
	}
}

func TestParseSingleProblemIsError(t *testing.T) {
	_, err := Parse("config.yaml", []byte(yml("name: x")))
	ce, ok := err.(*Error)
	if !ok {
		t.Fatalf("Parse error is %T, want *Error for a single problem", err)
	}
	want := Error{File: "config.yaml", Line: 1, Field: "code", Message: "is required"}
	if *ce != want {
		t.Errorf("error = %+v, want %+v", *ce, want)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("plugins/demo/config.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:           "plugins/demo/config.yaml",
		Dir:            "plugins/demo",
		Name:           "My Plugin",
		Code:           "my-plugin",
		Version:        "0.1.0",
		Category:       "custom",
		Readme:         "README.md",
		PackageManager: "pip",
		Env:            map[string]any{},
		RuntimeEnv:     map[string]any{},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", cfg, want)
	}
	if cfg.Env == nil || cfg.RuntimeEnv == nil {
		t.Errorf("Env or RuntimeEnv is nil")
	}
}

func TestParseNullsKeepDefaults(t *testing.T) {
	src := minimal + yml("version:", "category:", "readme:", "package_manager:", "description:", "tasks:", "env:", "runtime_env:", "actions:", "pipelines:")
	cfg, err := Parse("config.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Version != "0.1.0" || cfg.Category != "custom" || cfg.Readme != "README.md" || cfg.PackageManager != "pip" ||
		cfg.Description != "" || cfg.Tasks != nil || len(cfg.Env) != 0 || cfg.Env == nil || len(cfg.RuntimeEnv) != 0 ||
		cfg.Actions != nil || cfg.Pipelines != nil {
		t.Errorf("null settings did not keep their defaults: %+v", cfg)
	}
	if len(cfg.Unknown) != 0 {
		t.Errorf("Unknown = %v, want none", cfg.Unknown)
	}
}

func TestParseFull(t *testing.T) {
	src := yml(
		"# A full config",              // 1
		"name: Detector",               // 2
		"code: yolo-detector2",         // 3
		"version: 1.0",                 // 4
		"category: neural_net",         // 5
		"data_type: image",             // 6
		"description: Finds objects",   // 7
		"readme: docs/README.md",       // 8
		"package_manager: uv",          // 9
		"wheels_dir: wheels",           // 10
		"tasks:",                       // 11
		"  - image.object_detection",   // 12
		"  - image.classification",     // 13
		"env:",                         // 14
		"  STR: hello",                 // 15
		"  INT: 42",                    // 16
		"  FLOAT: 1.5",                 // 17
		"  BOOL: true",                 // 18
		"  NULL: ~",                    // 19
		"  QUOTED: '7'",                // 20
		"  NESTED: {a: [1, x, false]}", // 21
		"runtime_env:",                 // 22
		"  pip: [torch]",               // 23
		"actions:",                     // 24
		"  train:",                     // 25
		"    entrypoint: fit",          // 26
		"    method: job",              // 27
		"    description: Train it",    // 28
		"    input_type: dataset",      // 29
		"    output_type: model",       // 30
		"    timeout: 30",              // 31
		"    hyperparameters: {}",      // 32
		"  inference:",                 // 33
		"    name: inference",          // 34
		"    method: serve",            // 35
		"  evaluate:",                  // 36
		"  api: {method: restapi}",     // 37
		"pipelines:",                   // 38
		"  nightly: [train, evaluate]", // 39
		"  all:",                       // 40
		"    - evaluate",               // 41
		"    - train",                  // 42
		"    - api",                    // 43
		"smart_tool: interactive",      // 44
	)
	cfg, err := Parse("/plugins/det/synapse.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	scalars := map[string][2]string{
		"Path":           {cfg.Path, "/plugins/det/synapse.yaml"},
		"Dir":            {cfg.Dir, "/plugins/det"},
		"Name":           {cfg.Name, "Detector"},
		"Code":           {cfg.Code, "yolo-detector2"},
		"Version":        {cfg.Version, "1.0"},
		"Category":       {cfg.Category, "neural_net"},
		"DataType":       {cfg.DataType, "image"},
		"Description":    {cfg.Description, "Finds objects"},
		"Readme":         {cfg.Readme, "docs/README.md"},
		"PackageManager": {cfg.PackageManager, "uv"},
	}
	for field, v := range scalars {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", field, v[0], v[1])
		}
	}
	if want := []string{"image.object_detection", "image.classification"}; !reflect.DeepEqual(cfg.Tasks, want) {
		t.Errorf("Tasks = %q, want %q", cfg.Tasks, want)
	}
	wantEnv := map[string]any{
		"STR": "hello", "INT": 42, "FLOAT": 1.5, "BOOL": true, "NULL": nil, "QUOTED": "7",
		"NESTED": map[string]any{"a": []any{1, "x", false}},
	}
	if !reflect.DeepEqual(cfg.Env, wantEnv) {
		t.Errorf("Env = %#v, want %#v", cfg.Env, wantEnv)
	}
	if want := map[string]any{"pip": []any{"torch"}}; !reflect.DeepEqual(cfg.RuntimeEnv, want) {
		t.Errorf("RuntimeEnv = %#v, want %#v", cfg.RuntimeEnv, want)
	}
	wantActions := []Action{
		{Name: "train", Entrypoint: "fit", Method: "job", Description: "Train it", InputType: "dataset", OutputType: "model", Line: 25},
		{Name: "inference", Entrypoint: "inference", Method: "serve", Line: 33},
		{Name: "evaluate", Entrypoint: "evaluate", Method: "task", Line: 36},
		{Name: "api", Entrypoint: "api", Method: "restapi", Line: 37},
	}
	if !reflect.DeepEqual(cfg.Actions, wantActions) {
		t.Errorf("Actions =\n%+v\nwant\n%+v", cfg.Actions, wantActions)
	}
	if got, want := cfg.ActionNames(), []string{"train", "inference", "evaluate", "api"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActionNames() = %q, want %q", got, want)
	}
	if a, ok := cfg.Action("evaluate"); !ok || a != wantActions[2] {
		t.Errorf("Action(evaluate) = %+v, %v; want %+v, true", a, ok, wantActions[2])
	}
	if a, ok := cfg.Action("fit"); ok {
		t.Errorf("Action(fit) found %+v; actions are looked up by key, not entrypoint", a)
	}
	wantPipelines := []Pipeline{
		{Name: "nightly", Actions: []string{"train", "evaluate"}, Line: 39},
		{Name: "all", Actions: []string{"evaluate", "train", "api"}, Line: 40},
	}
	if !reflect.DeepEqual(cfg.Pipelines, wantPipelines) {
		t.Errorf("Pipelines = %+v, want %+v", cfg.Pipelines, wantPipelines)
	}
	// wheels_dir and smart_tool are the Python SDK's: known, not kept.
	wantUnknown := []Unknown{
		{Key: "actions.train.timeout", Line: 31},
		{Key: "actions.train.hyperparameters", Line: 32},
	}
	if !reflect.DeepEqual(cfg.Unknown, wantUnknown) {
		t.Errorf("Unknown = %+v, want %+v", cfg.Unknown, wantUnknown)
	}
}

func TestParseScalarForms(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*Config) (got, want any)
	}{
		{"integer version", minimal + yml("version: 2"), func(c *Config) (any, any) { return c.Version, "2" }},
		{"version keeps its text", minimal + yml("version: 1.10"), func(c *Config) (any, any) { return c.Version, "1.10" }},
		{"quoted version", minimal + yml(`version: "2024.1"`), func(c *Config) (any, any) { return c.Version, "2024.1" }},
		{"date description is text", minimal + yml("description: 2024-01-31"), func(c *Config) (any, any) { return c.Description, "2024-01-31" }},
		{"single character code", yml("name: x", "code: a"), func(c *Config) (any, any) { return c.Code, "a" }},
		{"quoted digits code", yml("name: x", "code: '123'"), func(c *Config) (any, any) { return c.Code, "123" }},
		{"hex env value", minimal + yml("env: {H: 0x10}"), func(c *Config) (any, any) { return c.Env["H"], 16 }},
		{"date env value is text", minimal + yml("env: {D: 2024-01-31}"), func(c *Config) (any, any) { return c.Env["D"], "2024-01-31" }},
		{"empty entrypoint means the key", minimal + yml("actions:", "  train: {entrypoint: ''}"),
			func(c *Config) (any, any) { return c.Actions[0].Entrypoint, "train" }},
		{"action name equal to key", minimal + yml("actions:", "  train: {name: train}"),
			func(c *Config) (any, any) { return c.ActionNames(), []string{"train"} }},
		{"merged keys do not repeat written ones", yml(
			"name: x", "code: y",
			"actions:",
			"  train:",
			"    <<: {timeout: 1, retries: 2}",
			"    timeout: 5",
		), func(c *Config) (any, any) {
			return c.Unknown, []Unknown{{Key: "actions.train.retries", Line: 5}, {Key: "actions.train.timeout", Line: 6}}
		}},
		{"pipelines not checked without actions", minimal + yml("pipelines:", "  p: [anything]"),
			func(c *Config) (any, any) {
				return c.Pipelines, []Pipeline{{Name: "p", Actions: []string{"anything"}, Line: 4}}
			}},
		{"merge keys and aliases", yml(
			"name: x", "code: y",
			"defaults: &d {method: job, description: shared}",
			"actions:",
			"  train:",
			"    <<: *d",
			"    description: own",
			"  export: *d",
			"  test:",
			"    description: first",
			"    <<: [*d, {method: serve, input_type: x}]",
		), func(c *Config) (any, any) {
			return c.Actions, []Action{
				{Name: "train", Entrypoint: "train", Method: "job", Description: "own", Line: 5},
				{Name: "export", Entrypoint: "export", Method: "job", Description: "shared", Line: 8},
				{Name: "test", Entrypoint: "test", Method: "job", Description: "first", InputType: "x", Line: 9},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("config.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "/a/b/config.yaml", Line: 7, Field: "actions.train.method", Message: "bad"}, "config.yaml:7: actions.train.method: bad"},
		{Error{File: "/a/b/config.yaml", Field: "name", Message: "bad"}, "config.yaml: name: bad"},
		{Error{File: "synapse.yaml", Line: 3, Message: "bad"}, "synapse.yaml:3: bad"},
		{Error{File: "config.yaml", Message: "bad"}, "config.yaml: bad"},
		{Error{Line: 2, Field: "code", Message: "bad"}, "line 2: code: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.err, got, tt.want)
		}
		if tt.err.ExitCode() != 2 {
			t.Errorf("ExitCode() = %d, want 2", tt.err.ExitCode())
		}
	}
	list := ErrorList{{File: "c.yaml", Line: 1, Message: "one"}, {File: "c.yaml", Line: 2, Message: "two"}}
	if got, want := list.Error(), "c.yaml:1: one\nc.yaml:2: two"; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name  string
		files []string // created under the temp dir; a trailing "/" makes a directory
		arg   string   // relative to the temp dir
		want  string   // relative to the temp dir
	}{
		{"config.yaml preferred over synapse.yaml", []string{"p/config.yaml", "p/synapse.yaml"}, "p", "p/config.yaml"},
		{"synapse.yaml alone", []string{"p/synapse.yaml"}, "p", "p/synapse.yaml"},
		{"config.yaml alone", []string{"p/config.yaml"}, "p", "p/config.yaml"},
		{"explicit file", []string{"p/config.yaml", "p/custom.yml"}, "p/custom.yml", "p/custom.yml"},
		{"explicit synapse.yaml", []string{"p/config.yaml", "p/synapse.yaml"}, "p/synapse.yaml", "p/synapse.yaml"},
		{"config.yaml directory is skipped", []string{"p/config.yaml/", "p/synapse.yaml"}, "p", "p/synapse.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				if strings.HasSuffix(f, "/") {
					mustMkdir(t, p)
					continue
				}
				mustMkdir(t, filepath.Dir(p))
				mustWrite(t, p, minimal, 0o644)
			}
			got, err := Find(filepath.Join(dir, tt.arg))
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, tt.want); got != want {
				t.Errorf("Find = %q, want %q", got, want)
			}
		})
	}
}

func TestFindErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	_, err := Find(missing)
	if err == nil || err.Error() != "find plugin config: "+missing+" does not exist" {
		t.Errorf("Find(missing) error = %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Find(missing) error does not match fs.ErrNotExist")
	}
	empty := filepath.Join(dir, "empty")
	mustMkdir(t, empty)
	mustWrite(t, filepath.Join(empty, "config.yml"), minimal, 0o644) // not a name Find looks for
	_, err = Find(empty)
	want := "find plugin config: no config.yaml or synapse.yaml in " + empty + " (point --path at a plugin directory)"
	if err == nil || err.Error() != want {
		t.Errorf("Find(empty dir) error = %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Find(empty dir) error does not match fs.ErrNotExist")
	}
	// Symbolic link loops: the config file itself, or the path given.
	loopDir := filepath.Join(dir, "loop")
	mustMkdir(t, loopDir)
	if err := os.Symlink("config.yaml", filepath.Join(loopDir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	loopA, loopB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := errors.Join(os.Symlink(loopB, loopA), os.Symlink(loopA, loopB)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{loopDir, loopA} {
		if _, err := Find(path); err == nil || !strings.Contains(err.Error(), "a loop of symbolic links") {
			t.Errorf("Find(%s) error = %v", path, err)
		}
	}
	for _, path := range []string{missing, empty, "/dev/null", loopDir, loopA} {
		_, err := Find(path)
		var ec interface{ ExitCode() int }
		if !errors.As(err, &ec) || ec.ExitCode() != 2 {
			t.Errorf("Find(%s) error %v has no ExitCode() of 2 (a bad --path is a usage error)", path, err)
		}
	}
	if _, err := Find("/dev/null"); err == nil || err.Error() != "find plugin config: /dev/null is not a file or a directory" {
		t.Errorf("Find(/dev/null) error = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "synapse.yaml"), minimal+yml("actions:", "  train:"), 0o644)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != filepath.Join(dir, "synapse.yaml") || cfg.Dir != dir || cfg.Code != "my-plugin" || len(cfg.Actions) != 1 {
		t.Errorf("Load = %+v", cfg)
	}

	bad := filepath.Join(dir, "bad.yaml")
	mustWrite(t, bad, yml("name: x"), 0o644)
	_, err = Load(bad)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != bad || err.Error() != "bad.yaml:1: code: is required" {
		t.Errorf("Load(bad) error = %v (%#v)", err, ce)
	}

	if _, err := Load(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Load(missing) error = %v", err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, data string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // not limited by the umask
		t.Fatal(err)
	}
}

// TestParseBoundsAliasExpansion: a small file of nested aliases (or merge
// keys) must fail fast with the line, not expand without limit.
func TestParseBoundsAliasExpansion(t *testing.T) {
	seqs := []string{"name: Bomb", "code: bomb", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"}
	maps := []string{"name: Bomb", "code: bomb", "m0: &m0 {a: 1, b: 2}"}
	for i := 1; i < 10; i++ {
		prev := fmt.Sprintf("*a%d", i-1)
		seqs = append(seqs, fmt.Sprintf("x%d: &a%d [%s]", i, i, strings.Repeat(prev+", ", 8)+prev))
		maps = append(maps, fmt.Sprintf("m%d: &m%d {<<: [%s], k%d: 1}", i, i, strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 8)+fmt.Sprintf("*m%d", i-1), i))
	}
	tests := map[string]string{
		"sequences in env":         strings.Join(append(seqs, "env:", "  BOMB: *a9"), "\n"),
		"sequences in runtime_env": strings.Join(append(seqs, "runtime_env:", "  pip: *a9"), "\n"),
		"merge keys in env":        strings.Join(append(maps, "env:", "  <<: *m9"), "\n"),
		"merge keys in env values": strings.Join(append(maps, "env:", "  DEEP: *m9"), "\n"),
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			if len(doc) > 4096 {
				t.Fatalf("the document is %d bytes; the case wants a small file", len(doc))
			}
			start := time.Now()
			_, err := Parse("config.yaml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), "expands to more than") || !strings.Contains(err.Error(), "config.yaml:") {
				t.Fatalf("error = %v, want the expansion limit with file:line", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) || coder.ExitCode() != 2 {
				t.Errorf("exit code of %v is not 2", err)
			}
		})
	}
}

// TestParsePythonConfig: a Python SDK plugin's config (synapse plugin
// create's template) parses without warnings; requires is read.
func TestParsePythonConfig(t *testing.T) {
	src := yml("name: Sample", "code: sample", "version: 0.1.0", "variant: null", "category: custom",
		"requires:", "  sdk: '>=2026.1.0'", "  python: 3.12", "  cdua: '12'",
		"dependencies: {}", "tags: []", "package_manager_options: []", "wheels_dir: wheels",
		"actions:", "  train:", "    entrypoint: plugin.train:TrainAction", "    method: job")
	cfg, err := Parse("config.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Requires{SDK: ">=2026.1.0", Python: "3.12"}); cfg.Requires != want {
		t.Errorf("Requires = %+v, want %+v", cfg.Requires, want)
	}
	if w := cfg.Warnings(); len(w) != 1 || w[0] != "config.yaml:9: unknown key requires.cdua is ignored (did you mean cuda?)" {
		t.Errorf("Warnings = %q", w)
	}
	if a, _ := cfg.Action("train"); a.Entrypoint != "plugin.train:TrainAction" {
		t.Errorf("entrypoint = %q", a.Entrypoint)
	}
	if _, err := Parse("config.yaml", []byte(yml("name: x", "code: x", "requires: 3"))); err == nil || !strings.Contains(err.Error(), "config.yaml:3: requires: must be a mapping") {
		t.Errorf("requires: 3 gave %v", err)
	}
}
