package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultMethod(t *testing.T) {
	tests := map[string]string{
		"upload": "job", "export": "job", "download": "job", "convert": "job", "train": "job",
		"test": "job", "deployment": "job", "add_task_data": "job",
		"inference":  "serve",
		"auto_label": "task", "evaluate": "task", "": "task", "Train": "task", "training": "task",
	}
	for name, want := range tests {
		if got := DefaultMethod(name); got != want {
			t.Errorf("DefaultMethod(%q) = %q, want %q", name, got, want)
		}
	}
}

// writeConfig writes src to dir/config.yaml with perm and returns its path.
func writeConfig(t *testing.T, src string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	mustWrite(t, path, src, perm)
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// topKeys returns the top-level keys of the YAML in src, in order.
func topKeys(t *testing.T, src string) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		keys = append(keys, doc.Content[0].Content[i].Value)
	}
	return keys
}

func TestSyncActionsAddsAndKeepsLayout(t *testing.T) {
	src := yml(
		"# Plugin config for the demo",
		"",
		"name: Demo # shown in the UI",
		"code: demo",
		"version: 1.0.0",
		"",
		"# Actions the plugin provides",
		"actions:",
		"  # trains the model",
		"  train:",
		"    method: job",
		"",
		"  fit_fast:",
		"    entrypoint: train",
		"    description: Fast training",
		"  legacy:",
		"    method: task",
		"env:",
		`  A: "1"`,
		"# end",
	)
	want := yml(
		"# Plugin config for the demo",
		"",
		"name: Demo # shown in the UI",
		"code: demo",
		"version: 1.0.0",
		"",
		"# Actions the plugin provides",
		"actions:",
		"  # trains the model",
		"  train:",
		"    method: job",
		"    description: Train a model",
		"",
		"  fit_fast:",
		"    entrypoint: train",
		"    description: Fast training",
		"  legacy:",
		"    method: task",
		"  evaluate:",
		"    entrypoint: evaluate",
		"    method: task",
		"  inference:",
		"    entrypoint: inference",
		"    method: serve",
		"    description: Run inference",
		"  upload:",
		"    entrypoint: upload",
		"    method: job",
		"    description: 'Upload: files'",
		"env:",
		`  A: "1"`,
		"# end",
	)
	path := writeConfig(t, src, 0o640)
	res, err := SyncActions(path, []ActionInfo{
		{Name: "train", Description: "Train a model"},
		{Name: "evaluate"},
		{Name: "inference", Description: "Run inference"},
		{Name: "upload", Description: "Upload: files"},
		{Name: "evaluate", Description: "a repeat is ignored"},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRes := SyncResult{
		Added:   []string{"evaluate", "inference", "upload"},
		Extra:   []string{"legacy"},
		Updated: []string{"train"},
	}
	if !reflect.DeepEqual(res, wantRes) {
		t.Errorf("result = %+v, want %+v", res, wantRes)
	}
	got := readFile(t, path)
	if got != want {
		t.Errorf("file after sync:\n%s\nwant:\n%s", got, want)
	}
	for _, comment := range []string{"# Plugin config for the demo", "# shown in the UI", "# Actions the plugin provides", "  # trains the model", "# end"} {
		if !strings.Contains(got, comment+"\n") {
			t.Errorf("comment %q lost", comment)
		}
	}
	if keys, want := topKeys(t, got), []string{"name", "code", "version", "actions", "env"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("top-level keys = %q, want %q", keys, want)
	}
	cfg, err := Parse(path, []byte(got))
	if err != nil {
		t.Fatalf("synced file does not parse: %v", err)
	}
	if names, want := cfg.ActionNames(), []string{"train", "fit_fast", "legacy", "evaluate", "inference", "upload"}; !reflect.DeepEqual(names, want) {
		t.Errorf("actions = %q, want the existing ones first, in order: %q", names, want)
	}
	if a, _ := cfg.Action("inference"); a.Method != "serve" || a.Entrypoint != "inference" || a.Description != "Run inference" {
		t.Errorf("added inference action = %+v", a)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("file mode after sync = %v (%v), want 0640", info.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries after sync, want only config.yaml (a temporary file was left?)", len(entries))
	}
}

func TestSyncActionsEdits(t *testing.T) {
	base := yml("name: x", "code: y")
	tests := []struct {
		name     string
		src      string
		provided []ActionInfo
		want     string
		res      SyncResult
	}{
		{
			name:     "actions created at the end",
			src:      base,
			provided: []ActionInfo{{Name: "train"}},
			want:     base + yml("actions:", "  train:", "    entrypoint: train", "    method: job"),
			res:      SyncResult{Added: []string{"train"}},
		},
		{
			name:     "null actions filled in place",
			src:      yml("name: x", "actions: # none yet", "code: y"),
			provided: []ActionInfo{{Name: "run", Description: "Runs"}},
			want:     yml("name: x", "actions: # none yet", "  run:", "    entrypoint: run", "    method: task", "    description: Runs", "code: y"),
			res:      SyncResult{Added: []string{"run"}},
		},
		{
			name:     "empty flow actions become block",
			src:      base + yml("actions: {}"),
			provided: []ActionInfo{{Name: "inference"}},
			want:     base + yml("actions:", "  inference:", "    entrypoint: inference", "    method: serve"),
			res:      SyncResult{Added: []string{"inference"}},
		},
		{
			name:     "flow actions stay flow",
			src:      base + yml("actions: {a: {method: job}}"),
			provided: []ActionInfo{{Name: "a"}, {Name: "b"}},
			want:     base + yml("actions: {a: {method: job}, b: {entrypoint: b, method: task}}"),
			res:      SyncResult{Added: []string{"b"}},
		},
		{
			name:     "descriptions filled where missing, null or empty",
			src:      base + yml("actions:", "  a:", "  b:", "    method: job", "  c:", `    description: ""`, "  d:", "    description: ~", "    method: job"),
			provided: []ActionInfo{{Name: "a", Description: "A"}, {Name: "b", Description: "B"}, {Name: "c", Description: "C"}, {Name: "d", Description: "D"}},
			want: base + yml("actions:", "  a:", "    description: A", "  b:", "    method: job", "    description: B",
				"  c:", "    description: C", "  d:", "    description: D", "    method: job"),
			res: SyncResult{Updated: []string{"a", "b", "c", "d"}},
		},
		{
			name:     "entrypoint links a key to a provided action; existing description kept",
			src:      base + yml("actions:", "  fit:", "    entrypoint: train", "    description: Mine", "  extra:"),
			provided: []ActionInfo{{Name: "train", Description: "Theirs"}, {Name: "new"}},
			want: base + yml("actions:", "  fit:", "    entrypoint: train", "    description: Mine", "  extra:",
				"  new:", "    entrypoint: new", "    method: task"),
			res: SyncResult{Added: []string{"new"}, Extra: []string{"extra"}},
		},
		{
			name:     "aliased action left alone",
			src:      yml("name: x", "code: y", "shared: &s {method: job}", "actions:", "  train: *s"),
			provided: []ActionInfo{{Name: "train", Description: "T"}, {Name: "test"}},
			want:     yml("name: x", "code: y", "shared: &s {method: job}", "actions:", "  train: *s", "  test:", "    entrypoint: test", "    method: job"),
			res:      SyncResult{Added: []string{"test"}},
		},
		{
			name:     "keys that need quoting",
			src:      base,
			provided: []ActionInfo{{Name: "true", Description: "yes: really"}, {Name: "123"}},
			want: base + yml("actions:", `  "true":`, `    entrypoint: "true"`, "    method: task", "    description: 'yes: really'",
				`  "123":`, `    entrypoint: "123"`, "    method: task"),
			res: SyncResult{Added: []string{"true", "123"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.src, 0o644)
			res, err := SyncActions(path, tt.provided)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res, tt.res) {
				t.Errorf("result = %+v, want %+v", res, tt.res)
			}
			if got := readFile(t, path); got != tt.want {
				t.Errorf("file after sync:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestSyncActionsNoRewrite(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		provided []ActionInfo
		res      SyncResult
	}{
		{
			name:     "everything present",
			src:      yml("name: x", "code: y", "actions:", "  train:    # odd spacing is kept", "    description: Trains", "  extra: {}"),
			provided: []ActionInfo{{Name: "train", Description: "Another description"}},
			res:      SyncResult{Extra: []string{"extra"}},
		},
		{
			name:     "no descriptions to add",
			src:      yml("name: x", "code: y", "actions:", "  train:", "  fit: {entrypoint: evaluate}"),
			provided: []ActionInfo{{Name: "train"}, {Name: "evaluate"}},
		},
		{
			name: "no actions provided and no actions key",
			src:  yml("name: x", "code: y"),
		},
		{
			name: "no actions provided and null actions",
			src:  yml("name: x", "code: y", "actions:"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.src, 0o644)
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := SyncActions(path, tt.provided)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res, tt.res) {
				t.Errorf("result = %+v, want %+v", res, tt.res)
			}
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !after.ModTime().Equal(old) {
				t.Errorf("mtime changed to %v: the file was rewritten", after.ModTime())
			}
			if !os.SameFile(before, after) {
				t.Errorf("the file was replaced")
			}
			if got := readFile(t, path); got != tt.src {
				t.Errorf("content changed:\n%s\nwant:\n%s", got, tt.src)
			}
		})
	}
}

func TestSyncActionsKeepsPermissions(t *testing.T) {
	for _, perm := range []os.FileMode{0o600, 0o640, 0o604, 0o664} {
		t.Run(perm.String(), func(t *testing.T) {
			path := writeConfig(t, yml("name: x", "code: y"), perm)
			res, err := SyncActions(path, []ActionInfo{{Name: "train"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Added) != 1 {
				t.Fatalf("nothing added (%+v), so the file was not rewritten", res)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != perm {
				t.Errorf("mode after sync = %v, want %v", info.Mode().Perm(), perm)
			}
		})
	}
}

func TestSyncActionsCRLF(t *testing.T) {
	src := strings.ReplaceAll(yml("name: x", "code: y", "", "# actions", "actions:", "  a:"), "\n", "\r\n")
	path := writeConfig(t, src, 0o644)
	if _, err := SyncActions(path, []ActionInfo{{Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(yml("name: x", "code: y", "", "# actions", "actions:", "  a:", "  b:", "    entrypoint: b", "    method: task"), "\n", "\r\n")
	if got := readFile(t, path); got != want {
		t.Errorf("file after sync = %q, want %q", got, want)
	}
}

func TestSyncActionsSymlink(t *testing.T) {
	target := writeConfig(t, yml("name: x", "code: y"), 0o644)
	link := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	if _, err := SyncActions(link, []ActionInfo{{Name: "a"}}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced by a file (%v, %v)", info.Mode(), err)
	}
	if got := readFile(t, target); !strings.Contains(got, "  a:\n") {
		t.Errorf("the link's target was not updated:\n%s", got)
	}
}

func TestSyncActionsErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		provided []ActionInfo
		want     string
		is       error // when set, the error must match it with errors.Is
	}{
		{"syntax error", yml("name: x", "actions:", "  a: b: c"), []ActionInfo{{Name: "a"}},
			"config.yaml:3: invalid YAML: mapping values are not allowed in this context", nil},
		{"empty file", "", []ActionInfo{{Name: "a"}},
			"config.yaml: file is empty; a plugin config needs at least name and code", nil},
		{"actions sequence", yml("name: x", "actions:", "  - a"), []ActionInfo{{Name: "a"}},
			"config.yaml:3: actions: must be a mapping of action name to settings (got a sequence)", nil},
		{"action value string", yml("actions:", "  a: run"), []ActionInfo{{Name: "a"}},
			`config.yaml:2: actions.a: must be a mapping of action settings (got the string "run")`, nil},
		{"actions alias", yml("x: &acts {a: {}}", "actions: *acts"), []ActionInfo{{Name: "b"}},
			"config.yaml:2: actions: is an alias (*acts); write the actions out so that they can be updated", nil},
		{"key taken by another entrypoint", yml("actions:", "  train:", "    entrypoint: fit"), []ActionInfo{{Name: "train"}},
			`config.yaml:2: actions.train: cannot add the plugin's action "train": the key is taken by an action with entrypoint "fit"`, nil},
		{"empty provided name", yml("name: x"), []ActionInfo{{Name: "a"}, {Name: ""}},
			"sync plugin config: a provided action has an empty name", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.src, 0o644)
			res, err := SyncActions(path, tt.provided)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %s", err, tt.want)
			}
			if !reflect.DeepEqual(res, SyncResult{}) {
				t.Errorf("result with an error = %+v, want none", res)
			}
			if got := readFile(t, path); got != tt.src {
				t.Errorf("file changed despite the error:\n%s", got)
			}
		})
	}

	_, err := SyncActions(filepath.Join(t.TempDir(), "missing.yaml"), []ActionInfo{{Name: "a"}})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error = %v, want one matching fs.ErrNotExist", err)
	}
	var ce *Error
	path := writeConfig(t, yml("actions: 5"), 0o644)
	if _, err := SyncActions(path, nil); !errors.As(err, &ce) || ce.ExitCode() != 2 || ce.Field != "actions" {
		t.Errorf("shape error = %#v, want an *Error for actions", err)
	}
}
