package cli

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"golang.org/x/mod/modfile"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
)

//go:embed templates/*.tmpl
var templatesFS embed.FS

var codePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$`)

// categoryAction is the starter action `plugin create` writes for a category.
type categoryAction struct {
	action, description string
}

var categories = []struct {
	name string
	categoryAction
}{
	{"neural_net", categoryAction{"train", "Train a model"}},
	{"export", categoryAction{"export", "Export annotated data"}},
	{"upload", categoryAction{"upload", "Upload files as data units"}},
	{"smart_tool", categoryAction{"auto_label", "Suggest annotations for a task"}},
	{"pre_annotation", categoryAction{"pre_annotation", "Annotate data before review"}},
	{"post_annotation", categoryAction{"post_annotation", "Process annotations after review"}},
	{"data_validation", categoryAction{"validate", "Validate a dataset"}},
	{"converter", categoryAction{"convert", "Convert a dataset between formats"}},
	{"custom", categoryAction{"process", "Process items"}},
}

func categoryNames() []string {
	names := make([]string, len(categories))
	for i, c := range categories {
		names[i] = c.name
	}
	return names
}

type createOptions struct {
	path, name, code, category string
	yes, force                 bool
	interactive                bool // ask for what is missing (set from the terminal and --yes)
}

func newCreateCmd(io *IOStreams) *cobra.Command {
	var o createOptions
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a new plugin",
		Long: `Create synapse-<code>-plugin/ with config.yaml, go.mod, main.go (a working action for the
category), a test using plugintest, README.md, .gitignore and .synapseignore. On a terminal,
missing values are asked for (again, when an answer is not valid). An existing plugin directory is
replaced only with --force (or when you say so on a terminal). The plugin builds against this SDK's
source checkout ($SYNAPSE_SDK_DIR, or the checkout this CLI was built from).`,
		Example: `  synapse plugin create --name "Image Resizer" --code image-resizer --category converter --yes`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.interactive = io.IsTerminal() && !o.yes
			return createPlugin(io, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.path, "path", "p", ".", "directory to create the plugin in")
	f.StringVarP(&o.name, "name", "n", "", "plugin name")
	f.StringVar(&o.code, "code", "", "plugin code: lowercase letters, digits and dashes (default: from the name)")
	f.StringVarP(&o.category, "category", "c", "", "category: "+strings.Join(categoryNames(), ", ")+" (default custom)")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask: use the flags and defaults")
	f.BoolVar(&o.force, "force", false, "replace an existing plugin directory (what is removed is listed)")
	return cmd
}

func createPlugin(io *IOStreams, o createOptions) error {
	interactive := o.interactive
	in := bufio.NewReader(io.In)
	// ask asks until check accepts the answer (an empty answer is def).
	ask := func(question, def string, check func(string) error) (string, error) {
		for {
			if def != "" {
				fmt.Fprintf(io.ErrOut, "%s [%s]: ", question, def)
			} else {
				fmt.Fprintf(io.ErrOut, "%s: ", question)
			}
			line, err := in.ReadString('\n')
			if err != nil && line == "" {
				return "", errors.New("create plugin: cancelled (stdin closed)")
			}
			answer := strings.TrimSpace(line)
			if answer == "" {
				answer = def
			}
			if err := check(answer); err != nil {
				fmt.Fprintf(io.ErrOut, "  %v; try again\n", err)
				continue
			}
			return answer, nil
		}
	}
	checkCode := func(code string) error {
		if !codePattern.MatchString(code) {
			return fmt.Errorf("a code is lowercase letters, digits and dashes, not starting or ending with a dash (got %q)", code)
		}
		return nil
	}
	checkCategory := func(c string) error {
		if !slices.Contains(categoryNames(), c) {
			return fmt.Errorf("the category must be one of %s (got %q)", strings.Join(categoryNames(), ", "), c)
		}
		return nil
	}
	var err error
	if o.name == "" && o.code == "" && interactive {
		if o.name, err = ask("Plugin name", "", func(s string) error {
			if s == "" {
				return errors.New("a name is required")
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if o.code == "" && o.name != "" {
		if o.code = slug(o.name); interactive {
			if o.code, err = ask("Plugin code", o.code, checkCode); err != nil {
				return err
			}
		}
	}
	if o.code == "" {
		return &runflags.UsageError{Flag: "name", Message: "a plugin name or --code is required"}
	}
	if err := checkCode(o.code); err != nil {
		return &runflags.UsageError{Flag: "code", Message: "must be " + strings.TrimPrefix(err.Error(), "a code is ")}
	}
	if o.name == "" {
		o.name = o.code
	}

	// The directory comes first: nothing else is asked about a plugin that
	// would not be written.
	dir := filepath.Join(o.path, "synapse-"+o.code+"-plugin")
	if _, err := os.Stat(dir); err == nil {
		replace := o.force
		if !replace && interactive {
			answer, err := ask(fmt.Sprintf("%s exists. Replace it (its files are deleted)? y/n", dir), "n", func(s string) error {
				if s := strings.ToLower(s); s != "y" && s != "yes" && s != "n" && s != "no" {
					return errors.New("answer y or n")
				}
				return nil
			})
			if err != nil {
				return err
			}
			if replace = strings.HasPrefix(strings.ToLower(answer), "y"); !replace {
				fmt.Fprintln(io.ErrOut, "Cancelled; nothing was changed.")
				return nil
			}
		}
		if !replace {
			return &runflags.UsageError{Message: fmt.Sprintf("create plugin: %s already exists; use --force to replace it, or another --code or --path", dir)}
		}
		removed, err := removeTree(dir)
		if err != nil {
			return fmt.Errorf("create plugin: %w", err)
		}
		fmt.Fprintf(io.ErrOut, "Removed %s (%d files):\n", dir, len(removed))
		for _, f := range removed[:min(len(removed), 20)] {
			fmt.Fprintf(io.ErrOut, "  %s\n", f)
		}
		if len(removed) > 20 {
			fmt.Fprintf(io.ErrOut, "  … and %d more\n", len(removed)-20)
		}
	}

	if o.category == "" && interactive {
		fmt.Fprintln(io.ErrOut, "Categories: "+strings.Join(categoryNames(), ", "))
		if o.category, err = ask("Category", "custom", checkCategory); err != nil {
			return err
		}
	}
	if o.category == "" {
		o.category = "custom"
	}
	if err := checkCategory(o.category); err != nil {
		return &runflags.UsageError{Flag: "category", Message: strings.TrimPrefix(err.Error(), "the category ")}
	}
	var starter *categoryAction
	for i := range categories {
		if categories[i].name == o.category {
			starter = &categories[i].categoryAction
		}
	}

	sdk, err := sdkDir()
	if err != nil {
		return fmt.Errorf("create plugin: %w", err)
	}

	data := templateData{
		Name: o.name, Code: o.code, Category: o.category, Description: o.name + " plugin",
		Action: starter.action, ActionDescription: starter.description, Method: config.DefaultMethod(starter.action),
		SDKDir: sdk, GoVersion: goDirective(sdk),
	}
	if o.category == "neural_net" {
		data.DataType = "image"
	}
	ident := camel(starter.action)
	data.ActionVar, data.ParamsType, data.ResultType = ident, ident+"Params", ident+"Result"
	data.ActionComment = "is the " + starter.action + " action: " + strings.ToLower(starter.description[:1]) + starter.description[1:] + "."
	if err := writeTemplates(dir, data); err != nil {
		return fmt.Errorf("create plugin: %w", err)
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	if out, err := tidy.CombinedOutput(); err != nil {
		return fmt.Errorf("create plugin: created %s, but `go mod tidy` failed (run it there once the problem is fixed): %w\n%s", dir, err, out)
	}
	fmt.Fprintf(io.Out, "Created %s\n\nNext steps:\n  cd %s\n  synapse plugin run %s --params '{\"items\": 20}'\n  go test ./...\n", dir, dir, starter.action)
	return nil
}

// removeTree deletes dir and returns the files it held (relative paths).
func removeTree(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, os.RemoveAll(dir)
}

type templateData struct {
	Name, Code, Category, Description, DataType string
	Action, ActionDescription, Method           string
	ActionVar, ActionComment                    string
	ParamsType, ResultType                      string
	SDKDir, GoVersion                           string
}

var templateFiles = map[string]string{
	"config.yaml.tmpl":   "config.yaml",
	"go.mod.tmpl":        "go.mod",
	"main.go.tmpl":       "main.go",
	"main_test.go.tmpl":  "main_test.go",
	"README.md.tmpl":     "README.md",
	"gitignore.tmpl":     ".gitignore",
	"synapseignore.tmpl": ".synapseignore",
}

func writeTemplates(dir string, data templateData) error {
	funcs := template.FuncMap{
		"yaml": func(s string) string { b, _ := json.Marshal(s); return string(b) },
		"gomodpath": func(s string) string {
			if strings.ContainsAny(s, " \t\"'`") {
				b, _ := json.Marshal(s)
				return string(b)
			}
			return s
		},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for src, dst := range templateFiles {
		t, err := template.New(src).Funcs(funcs).ParseFS(templatesFS, "templates/"+src)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// slug turns a name into a plugin code: "Image Resizer!" -> "image-resizer".
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// camel turns an action name into a Go identifier: auto_label -> AutoLabel.
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// goDirective returns the go version the SDK's go.mod requires.
func goDirective(sdk string) string {
	gomod := filepath.Join(sdk, "go.mod")
	data, err := os.ReadFile(gomod)
	if err == nil {
		if f, err := modfile.ParseLax(gomod, data, nil); err == nil && f.Go != nil {
			return f.Go.Version
		}
	}
	return "1.26.0"
}
