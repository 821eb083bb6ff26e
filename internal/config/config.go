// Package config finds, reads and validates a plugin's config file
// (config.yaml or synapse.yaml) and keeps its actions in step with the
// actions a plugin binary provides (see SyncActions).
//
// Validation reports every problem it finds, each with the file name and
// the line of the offending YAML node, so that a user can fix a config in
// one pass.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/synapse-sdk/synapse-go/internal/params"
)

// Names are the config file names looked up in a plugin directory, in order.
var Names = []string{"config.yaml", "synapse.yaml"}

// Allowed values and defaults of the enumerated settings.
var (
	categories      = []string{"neural_net", "export", "upload", "smart_tool", "pre_annotation", "post_annotation", "data_validation", "converter", "custom"}
	packageManagers = []string{"pip", "uv"}
	dataTypes       = []string{"image", "text", "video", "pcd", "audio"}
	methods         = []string{"job", "task", "serve", "restapi"}
)

const (
	defaultVersion        = "0.1.0"
	defaultCategory       = "custom"
	defaultReadme         = "README.md"
	defaultPackageManager = "pip"
	defaultMethod         = "task"
)

var codePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$`)

// Config is a parsed and validated plugin config file. Settings that the
// file leaves out hold their defaults: Version "0.1.0", Category "custom",
// Readme "README.md", PackageManager "pip"; Env and RuntimeEnv are never nil.
type Config struct {
	// Path is the file the config was read from (the filename given to Parse).
	Path string
	// Dir is the directory of Path ("" when Path is "").
	Dir string

	// Name is the human-readable plugin name (`name`, required).
	Name string
	// Code is the plugin's identifier (`code`, required): lowercase letters,
	// digits and dashes, not starting or ending with a dash.
	Code string
	// Version is `version`; a number such as 1.0 is taken as its text.
	Version string
	// Category is `category`, one of neural_net, export, upload, smart_tool,
	// pre_annotation, post_annotation, data_validation, converter, custom.
	Category string
	// Description is `description`.
	Description string
	// Readme is `readme`, the README file name.
	Readme string

	// Env is `env`: values for the action's environment. Scalars are decoded
	// as string, int, float64 or bool (null as nil); nested values as
	// map[string]any and []any.
	Env map[string]any
	// RuntimeEnv is `runtime_env`, decoded like Env.
	RuntimeEnv map[string]any
	// PackageManager is `package_manager`: pip or uv.
	PackageManager string
	// DataType is `data_type`: image, text, video, pcd or audio; required
	// for neural_net plugins.
	DataType string
	// Tasks is `tasks`, a list of strings.
	Tasks []string
	// Requires is `requires`: the synapse-sdk, Python and CUDA versions a
	// Python plugin needs (PEP 440 specifiers such as ">=2026.1.0").
	Requires Requires

	// Actions are the entries of `actions`, in file order.
	Actions []Action
	// Pipelines are the entries of `pipelines`, in file order.
	Pipelines []Pipeline

	// Unknown lists the keys this package does not know (at the top level
	// and inside actions), in file order. They are ignored otherwise.
	Unknown []Unknown
}

// Requires is a config's `requires` mapping (the Python SDK's
// PluginRequires): version specifiers, "" when left out.
type Requires struct {
	// SDK is `requires.sdk`, the synapse-sdk version ("2026.2.17",
	// ">=2026.1.0").
	SDK string
	// Python is `requires.python` (">=3.12").
	Python string
	// CUDA is `requires.cuda`.
	CUDA string
}

// Action is one entry of a config's `actions` mapping.
type Action struct {
	// Name is the action's key in `actions`.
	Name string
	// Entrypoint is the name of the action in the plugin binary; it
	// defaults to Name.
	Entrypoint string
	// Method is the run method: job, task, serve or restapi (default task).
	Method string
	// Description is the action's `description`.
	Description string
	// InputType is the action's `input_type`.
	InputType string
	// OutputType is the action's `output_type`.
	OutputType string
	// Line is the line of the action's key in the file.
	Line int
}

// Pipeline is one entry of a config's `pipelines` mapping: a named list of
// actions run one after another.
type Pipeline struct {
	// Name is the pipeline's key in `pipelines`.
	Name string
	// Actions are the names of the pipeline's actions, in order.
	Actions []string
	// Line is the line of the pipeline's key in the file.
	Line int
}

// Unknown is a key the config package does not know; it is ignored.
type Unknown struct {
	// Key is the dotted path of the key, like "actions.train.timeout".
	Key string
	// Line is the line of the key in the file.
	Line int
	// Suggestion is the known key closest to a misspelt one ("actions" for
	// "actons"), or "".
	Suggestion string
}

// The keys the config knows, at the top level and in an action.
var (
	knownTopKeys = []string{"name", "code", "version", "category", "description", "readme", "package_manager", "data_type", "tasks", "env", "runtime_env", "actions", "pipelines", "requires",
		// The Python SDK's settings this package keeps no value of.
		"variant", "dependencies", "tags", "package_manager_options", "wheels_dir", "supported_data_types", "supported_data_type",
		"supported_annotation_tools", "annotation_category", "annotation_type", "smart_tool"}
	ignoredTopKeys = knownTopKeys[14:]
	requiresKeys   = []string{"sdk", "python", "cuda"}
	actionKeys     = []string{"entrypoint", "method", "description", "input_type", "output_type"}
)

// Warnings returns one line per unknown key, for the CLI to print once:
// "config.yaml:3: unknown key actons is ignored (did you mean actions?)".
func (c *Config) Warnings() []string {
	out := make([]string, 0, len(c.Unknown))
	for _, u := range c.Unknown {
		w := fmt.Sprintf("%s:%d: unknown key %s is ignored", filepath.Base(c.Path), u.Line, u.Key)
		if u.Suggestion != "" {
			w += fmt.Sprintf(" (did you mean %s?)", u.Suggestion)
		}
		out = append(out, w)
	}
	return out
}

// Action returns the action whose key in `actions` is name.
func (c *Config) Action(name string) (Action, bool) {
	for _, a := range c.Actions {
		if a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}

// ActionNames returns the names of the config's actions, in file order.
func (c *Config) ActionNames() []string {
	names := make([]string, len(c.Actions))
	for i, a := range c.Actions {
		names[i] = a.Name
	}
	return names
}

// Error is one problem in a config file. Error() is
// "<base filename>:<line>: <field>: <message>", e.g.
// `config.yaml:7: actions.train.method: must be one of job, task, serve, restapi (got "local")`.
// Without a line it is "<file>: <field>: <message>"; without a field,
// "<file>:<line>: <message>".
type Error struct {
	// File is the config file's path; Error() shows its base name.
	File string
	// Line is the 1-based line of the offending node, or 0 when unknown.
	Line int
	// Field is the dotted path of the offending setting, like
	// "actions.train.method" or "pipelines.nightly[1]"; "" for problems
	// with the file as a whole.
	Field string
	// Message says what is wrong and what was given.
	Message string
}

// Error formats the problem as "<base filename>:<line>: <field>: <message>",
// leaving out the parts that are not set.
func (e *Error) Error() string {
	loc := ""
	if e.File != "" {
		loc = filepath.Base(e.File)
	}
	if e.Line > 0 {
		if loc == "" {
			loc = "line " + strconv.Itoa(e.Line)
		} else {
			loc += ":" + strconv.Itoa(e.Line)
		}
	}
	parts := make([]string, 0, 3)
	for _, s := range []string{loc, e.Field, e.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// ExitCode returns 2 (a config error is a usage error for the CLI).
func (e *Error) ExitCode() int { return 2 }

// ErrorList holds every problem found in a config file, ordered by line.
// Parse returns an ErrorList only when there is more than one problem.
// errors.As(err, &target) with target of type *Error finds the first one.
type ErrorList []*Error

// Error joins the problems' messages with "\n".
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// ExitCode returns 2 (a config error is a usage error for the CLI).
func (l ErrorList) ExitCode() int { return 2 }

// Unwrap returns the problems, so that errors.As and errors.Is see each of
// them, the first one first.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// findError is an error from Find about the path it was given (like
// *Error, a usage error for the CLI); a missing config still matches
// fs.ErrNotExist.
type findError struct {
	msg string
	err error
}

func (e *findError) Error() string { return e.msg }
func (e *findError) Unwrap() error { return e.err }
func (e *findError) ExitCode() int { return 2 }

// pathError is a path Find cannot use (a symlink loop, no permission): a
// usage error naming the path.
func pathError(path string, err error) error {
	what := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		what = pe.Err.Error()
	}
	if errors.Is(err, syscall.ELOOP) {
		what = "a loop of symbolic links (a link that points back to itself)"
	}
	return &findError{msg: fmt.Sprintf("find plugin config: %s: %s", path, what), err: err}
}

// Find returns the config file for path: path itself if it is a regular
// file; else dir/config.yaml, else dir/synapse.yaml (see Names). An empty
// path means the current directory. When nothing is found the error
// matches fs.ErrNotExist and has an ExitCode() of 2, like *Error.
func Find(path string) (string, error) {
	if path == "" {
		path = "."
	}
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", &findError{msg: fmt.Sprintf("find plugin config: %s does not exist", path), err: err}
		}
		return "", pathError(path, err)
	}
	if info.Mode().IsRegular() {
		return path, nil
	}
	if !info.IsDir() {
		return "", &findError{msg: fmt.Sprintf("find plugin config: %s is not a file or a directory", path)}
	}
	for _, name := range Names {
		p := filepath.Join(path, name)
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode().IsRegular():
			return p, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", pathError(p, err)
		}
	}
	return "", &findError{
		msg: fmt.Sprintf("find plugin config: no %s or %s in %s (point --path at a plugin directory)", Names[0], Names[1], path),
		err: fs.ErrNotExist,
	}
}

// Load finds the config file for path (see Find), reads it and parses it
// (see Parse).
func Load(path string) (*Config, error) {
	file, err := Find(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read plugin config: %w", err)
	}
	return Parse(file, data)
}

// Parse parses and validates the config file contents data; filename is
// used in error messages and as Config.Path. It reports every problem it
// finds: the error is an *Error when there is one and an ErrorList when
// there are more. On error the returned Config is nil.
func Parse(filename string, data []byte) (*Config, error) {
	p := &parser{file: filename}
	doc, perr := parseDocument(filename, data)
	if perr != nil {
		return nil, perr
	}
	cfg := p.config(doc.Content[0])
	if err := p.err(); err != nil {
		return nil, err
	}
	cfg.Path = filename
	if filename != "" {
		cfg.Dir = filepath.Dir(filename)
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument parses data as a single YAML document and returns the
// document node, whose only child is a mapping, or an *Error.
func parseDocument(filename string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(filename, data, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, &Error{File: filename, Message: "file is empty; a plugin config needs at least name and code"}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: filename, Line: next.Line, Message: "a config file must hold a single YAML document, found a second one"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(filename, data, err)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: filename, Line: root.Line, Message: fmt.Sprintf("the top level must be a mapping of settings such as name and code (got %s)", describe(root))}
	}
	return &doc, nil
}

// parserProblems are the messages of the YAML library's parser (as opposed
// to its scanner). The library reports their 0-based line, where it
// reports the 1-based one for scanner errors.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// syntaxError converts a YAML library error to an *Error with the line
// number from its message, made 1-based for parser errors and kept within
// the file. The library leaves the line out when it is 0; it is then
// found by parsing again one line down.
func syntaxError(filename string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, found := 0, false
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg, found = m[2], true
	} else if l, ok := shiftedLine(data); ok {
		line, found = l-1, true
	}
	if found {
		if parserProblems[msg] {
			line++
		}
		line = max(min(line, lineCount(data)), 1)
	}
	return &Error{File: filename, Line: line, Message: "invalid YAML: " + msg}
}

// shiftedLine returns the line number in the YAML library's error for data
// with a blank line put before it.
func shiftedLine(data []byte) (int, bool) {
	dec := yaml.NewDecoder(io.MultiReader(strings.NewReader("\n"), bytes.NewReader(data)))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == nil {
			continue
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return line, true
		}
		return 0, false
	}
}

// lineCount returns the number of lines in data.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// parser collects the problems found while reading a config.
type parser struct {
	file string
	errs ErrorList
	work int  // values and mapping entries read so far, aliases expanded
	over bool // work passed maxWork: reading stopped
}

// maxWork bounds what one config file may expand to (values and mapping
// entries, counting each use of an alias or merge anew), so a small file of
// nested aliases cannot make the reader run out of memory or time.
const maxWork = 100_000

// spend counts n units of work and reports whether reading may go on; the
// first time the budget runs out it reports the error at line.
func (p *parser) spend(n, line int, field string) bool {
	if p.over {
		return false
	}
	p.work += n
	if p.work <= maxWork {
		return true
	}
	p.over = true
	p.errorf(line, field, "the file expands to more than %d values (YAML aliases or merge keys nested too deeply); write the values out instead", maxWork)
	return false
}

func (p *parser) errorf(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil, the only *Error, or the ErrorList sorted by line.
func (p *parser) err() error {
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	}
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
	return p.errs
}

func (p *parser) config(root *yaml.Node) *Config {
	cfg := &Config{
		Version:        defaultVersion,
		Category:       defaultCategory,
		Readme:         defaultReadme,
		PackageManager: defaultPackageManager,
		Env:            map[string]any{},
		RuntimeEnv:     map[string]any{},
	}
	seen := map[string]bool{}
	badDataType, dataTypeLine := false, 0
	var pipelinesNode *yaml.Node
	for _, kv := range p.pairs(root, "", true) {
		seen[kv.key] = true
		v := resolve(kv.v)
		switch kv.key {
		case "name":
			cfg.Name = p.required(v, kv.key)
		case "code":
			cfg.Code = p.required(v, kv.key)
			if cfg.Code != "" && !codePattern.MatchString(cfg.Code) {
				p.errorf(v.Line, kv.key, "must be lowercase letters, digits and dashes, not starting or ending with a dash (got %q)", cfg.Code)
			}
		case "version":
			if s, ok := p.str(v, kv.key, true); ok {
				if s == "" {
					p.errorf(v.Line, kv.key, "must not be empty")
				} else {
					cfg.Version = s
				}
			}
		case "category":
			p.enum(v, kv.key, categories, &cfg.Category)
		case "description":
			p.optional(v, kv.key, &cfg.Description)
		case "readme":
			p.optional(v, kv.key, &cfg.Readme)
		case "package_manager":
			p.enum(v, kv.key, packageManagers, &cfg.PackageManager)
		case "data_type":
			n := len(p.errs)
			p.enum(v, kv.key, dataTypes, &cfg.DataType)
			badDataType = len(p.errs) > n
			dataTypeLine = v.Line
		case "tasks":
			cfg.Tasks = p.strings(v, kv.key)
		case "env":
			p.mapping(v, kv.key, cfg.Env)
		case "runtime_env":
			p.mapping(v, kv.key, cfg.RuntimeEnv)
		case "actions":
			cfg.Actions = p.actions(v, &cfg.Unknown)
		case "pipelines":
			pipelinesNode = v
		case "requires":
			p.requires(v, &cfg.Requires, &cfg.Unknown)
		default:
			if slices.Contains(ignoredTopKeys, kv.key) {
				continue
			}
			cfg.Unknown = append(cfg.Unknown, Unknown{Key: kv.key, Line: kv.k.Line, Suggestion: params.Suggest(kv.key, knownTopKeys)})
		}
	}
	for _, key := range []string{"name", "code"} {
		if !seen[key] {
			p.errorf(root.Line, key, "is required")
		}
	}
	if cfg.Category == "neural_net" && cfg.DataType == "" && !badDataType {
		line := root.Line
		if seen["data_type"] {
			line = dataTypeLine
		}
		p.errorf(line, "data_type", "is required for neural_net plugins; add 'data_type: image' (or text, video, pcd, audio)")
	}
	if pipelinesNode != nil {
		cfg.Pipelines = p.pipelines(pipelinesNode, cfg)
	}
	return cfg
}

// required reads a string setting that must be given and not be empty.
func (p *parser) required(v *yaml.Node, field string) string {
	if isNull(v) {
		p.errorf(v.Line, field, "must not be empty (got null)")
		return ""
	}
	s, ok := p.str(v, field, false)
	if ok && s == "" {
		p.errorf(v.Line, field, "must not be empty")
	}
	return s
}

// optional reads a string setting into *dst; null keeps the default.
func (p *parser) optional(v *yaml.Node, field string, dst *string) {
	if s, ok := p.str(v, field, false); ok {
		*dst = s
	}
}

// enum reads a string setting that must be one of allowed into *dst; null
// keeps the default.
func (p *parser) enum(v *yaml.Node, field string, allowed []string, dst *string) {
	s, ok := p.str(v, field, false)
	if !ok {
		return
	}
	for _, a := range allowed {
		if s == a {
			*dst = s
			return
		}
	}
	p.errorf(v.Line, field, "must be one of %s (got %q)", strings.Join(allowed, ", "), s)
}

// str reads a string scalar. ok is false for null (no problem reported)
// and for values of another type (a problem is reported). Unquoted dates
// are taken as text; so are numbers when numbers is set.
func (p *parser) str(v *yaml.Node, field string, numbers bool) (string, bool) {
	if isNull(v) {
		return "", false
	}
	if v.Kind == yaml.ScalarNode {
		switch v.ShortTag() {
		case "!!str", "!!timestamp":
			return v.Value, true
		case "!!int", "!!float":
			if numbers {
				return v.Value, true
			}
		}
	}
	p.errorf(v.Line, field, "must be a string (got %s)", describe(v))
	return "", false
}

// strings reads a list of strings; null means none.
func (p *parser) strings(v *yaml.Node, field string) []string {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v.Line, field, "must be a list of strings (got %s)", describe(v))
		return nil
	}
	var out []string
	for i, item := range v.Content {
		item = resolve(item)
		if s, ok := p.str(item, fmt.Sprintf("%s[%d]", field, i), false); ok {
			out = append(out, s)
		} else if isNull(item) {
			p.errorf(item.Line, fmt.Sprintf("%s[%d]", field, i), "must be a string (got null)")
		}
	}
	return out
}

// mapping decodes a mapping with any values into dst; null means empty.
func (p *parser) mapping(v *yaml.Node, field string, dst map[string]any) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, field, "must be a mapping (got %s)", describe(v))
		return
	}
	for _, kv := range p.pairs(v, field, true) {
		dst[kv.key] = p.value(kv.v, join(field, kv.key))
	}
}

// value decodes any node: scalars as string, int, float64, bool or nil;
// mappings as map[string]any; sequences as []any.
func (p *parser) value(n *yaml.Node, field string) any {
	n = resolve(n)
	if !p.spend(1, n.Line, field) {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		p.mapping(n, field, m)
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = p.value(item, fmt.Sprintf("%s[%d]", field, i))
		}
		return s
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool", "!!int", "!!float":
		var v any // int (int64 or uint64 when too big), float64 or bool
		if err := n.Decode(&v); err != nil {
			p.errorf(n.Line, field, "invalid %s", describe(n))
			return nil
		}
		return v
	}
	return n.Value
}

// actions reads the `actions` mapping, appending unknown action settings
// to unknown.
func (p *parser) actions(v *yaml.Node, unknown *[]Unknown) []Action {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "actions", "must be a mapping of action name to settings (got %s)", describe(v))
		return nil
	}
	var out []Action
	for _, kv := range p.pairs(v, "actions", true) {
		field := join("actions", kv.key)
		if kv.key == "" {
			p.errorf(kv.k.Line, "actions", "action names must not be empty")
			continue
		}
		a := Action{Name: kv.key, Entrypoint: kv.key, Method: defaultMethod, Line: kv.k.Line}
		av := resolve(kv.v)
		switch {
		case isNull(av):
		case av.Kind != yaml.MappingNode:
			p.errorf(av.Line, field, "must be a mapping of action settings (got %s)", describe(av))
			continue
		default:
			for _, s := range p.pairs(av, field, true) {
				sv := resolve(s.v)
				sf := join(field, s.key)
				switch s.key {
				case "name":
					if name, ok := p.str(sv, sf, false); ok && name != kv.key {
						p.errorf(sv.Line, sf, "must match the action key %q (got %q)", kv.key, name)
					}
				case "entrypoint":
					if ep, ok := p.str(sv, sf, false); ok && ep != "" {
						a.Entrypoint = ep
					}
				case "method":
					p.enum(sv, sf, methods, &a.Method)
				case "description":
					p.optional(sv, sf, &a.Description)
				case "input_type":
					p.optional(sv, sf, &a.InputType)
				case "output_type":
					p.optional(sv, sf, &a.OutputType)
				default:
					*unknown = append(*unknown, Unknown{Key: sf, Line: s.k.Line, Suggestion: params.Suggest(s.key, actionKeys)})
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// requires reads the `requires` mapping.
func (p *parser) requires(v *yaml.Node, dst *Requires, unknown *[]Unknown) {
	if isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "requires", "must be a mapping of sdk, python and cuda to version specifiers (got %s)", describe(v))
		return
	}
	for _, kv := range p.pairs(v, "requires", true) {
		field := join("requires", kv.key)
		sv := resolve(kv.v)
		switch kv.key {
		case "sdk":
			p.optionalVersion(sv, field, &dst.SDK)
		case "python":
			p.optionalVersion(sv, field, &dst.Python)
		case "cuda":
			p.optionalVersion(sv, field, &dst.CUDA)
		default:
			*unknown = append(*unknown, Unknown{Key: field, Line: kv.k.Line, Suggestion: params.Suggest(kv.key, requiresKeys)})
		}
	}
}

// optionalVersion reads a version or specifier; a number (3.12) is taken
// as its text.
func (p *parser) optionalVersion(v *yaml.Node, field string, dst *string) {
	if s, ok := p.str(v, field, true); ok {
		*dst = strings.TrimSpace(s)
	}
}

// pipelines reads the `pipelines` mapping and checks that each named
// action exists in cfg.Actions (when the config has actions).
func (p *parser) pipelines(v *yaml.Node, cfg *Config) []Pipeline {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, "pipelines", "must be a mapping of pipeline name to a list of action names (got %s)", describe(v))
		return nil
	}
	names := cfg.ActionNames()
	var out []Pipeline
	for _, kv := range p.pairs(v, "pipelines", true) {
		field := join("pipelines", kv.key)
		pv := resolve(kv.v)
		switch {
		case isNull(pv) || (pv.Kind == yaml.SequenceNode && len(pv.Content) == 0):
			p.errorf(pv.Line, field, "must list at least one action")
			continue
		case pv.Kind != yaml.SequenceNode:
			p.errorf(pv.Line, field, "must be a list of action names (got %s)", describe(pv))
			continue
		}
		pl := Pipeline{Name: kv.key, Line: kv.k.Line}
		for i, item := range pv.Content {
			item = resolve(item)
			itemField := fmt.Sprintf("%s[%d]", field, i)
			name, ok := "", false
			if item.Kind == yaml.ScalarNode && item.ShortTag() == "!!str" {
				name, ok = item.Value, true
			}
			if !ok {
				p.errorf(item.Line, itemField, "must be an action name (got %s)", describe(item))
				continue
			}
			if len(names) > 0 {
				if _, found := cfg.Action(name); !found {
					p.errorf(item.Line, itemField, "unknown action %q (actions: %s)", name, strings.Join(names, ", "))
				}
			}
			pl.Actions = append(pl.Actions, name)
		}
		out = append(out, pl)
	}
	return out
}

// pair is one key and value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs returns the entries of mapping m in file order, with merge keys
// (`<<: *anchor`) expanded: keys written in m win over merged ones, and an
// earlier merged mapping wins over a later one. With report set it reports
// keys that are not strings and keys given twice; path names m in those
// reports.
func (p *parser) pairs(m *yaml.Node, path string, report bool) []pair {
	if !p.spend(len(m.Content)/2, m.Line, path) {
		return nil
	}
	explicit := map[string]bool{}
	valid := make([]bool, len(m.Content))
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := resolve(m.Content[i])
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode || (isNull(k) && k.Value == "") {
			// A key such as NULL or ~ is taken as its text; only a missing
			// key (`: value`) is a null one.
			if report {
				p.errorf(k.Line, path, "keys must be strings (got %s)", describe(k))
			}
			continue
		}
		if explicit[k.Value] {
			if report {
				p.errorf(k.Line, join(path, k.Value), "duplicate key (first defined at line %d)", firstLine(m, k.Value))
			}
			continue
		}
		explicit[k.Value] = true
		valid[i] = true
	}
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := resolve(m.Content[i])
		if isMerge(k) {
			for _, mp := range p.merged(m.Content[i+1], path, report) {
				if !explicit[mp.key] && !seen[mp.key] {
					seen[mp.key] = true
					out = append(out, mp)
				}
			}
			continue
		}
		if valid[i] {
			seen[k.Value] = true
			out = append(out, pair{key: k.Value, k: k, v: m.Content[i+1]})
		}
	}
	return out
}

// merged returns the entries a merge key's value brings in.
func (p *parser) merged(v *yaml.Node, path string, report bool) []pair {
	v = resolve(v)
	var sources []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, item := range v.Content {
			sources = append(sources, resolve(item))
		}
	}
	var out []pair // repeated keys are dropped by pairs, the first one wins
	for _, s := range sources {
		if s.Kind != yaml.MappingNode {
			if report {
				p.errorf(v.Line, join(path, "<<"), "must be a mapping or a list of mappings to merge (got %s)", describe(v))
			}
			return nil
		}
		out = append(out, p.pairs(s, path, false)...)
	}
	if len(sources) == 0 && report {
		p.errorf(v.Line, join(path, "<<"), "must be a mapping or a list of mappings to merge (got %s)", describe(v))
	}
	return out
}

// firstLine returns the line of the first key named key in mapping m.
func firstLine(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := resolve(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return k.Line
		}
	}
	return 0
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!merge"
}

// describe says what kind of value n is, for messages: "a mapping",
// "a sequence", "null", `the string "x"`, "the number 1.5", ...
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
	default:
		return "an unsupported node"
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "null"
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!timestamp":
		return "the timestamp " + n.Value
	case "!!binary":
		return "binary data"
	default:
		return fmt.Sprintf("a value tagged %s", tag)
	}
}

// join appends key to the dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
