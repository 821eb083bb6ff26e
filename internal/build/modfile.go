package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/mod/modfile"
)

// replaceDirective is one "replace" directive.
type replaceDirective struct {
	module string // the replaced module path (left-hand side)
	local  string // the replacement directory as written, or "" for a module replacement
}

// parseGoMod reads a go.mod with golang.org/x/mod/modfile. A file it
// cannot read gives nil: the go command reports what is wrong with it.
func parseGoMod(name string, data []byte) *modfile.File {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return nil
	}
	return f
}

// replaces returns the replace directives of a go.mod or go.work.
func replaces(rs []*modfile.Replace) []replaceDirective {
	out := make([]replaceDirective, 0, len(rs))
	for _, r := range rs {
		d := replaceDirective{module: r.Old.Path}
		if r.New.Version == "" { // a directory: module replacements carry a version
			d.local = r.New.Path
		}
		out = append(out, d)
	}
	return out
}

// ModuleRoot returns the directory holding the go.mod that governs dir, and
// the module path that go.mod declares. dir may be relative; root is
// absolute. It reads only go.mod files and starts no process.
func ModuleRoot(dir string) (root, module string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	for d := abs; ; {
		gomod := filepath.Join(d, "go.mod")
		data, err := os.ReadFile(gomod)
		if err == nil {
			f, err := modfile.Parse(gomod, data, nil)
			if err != nil {
				return "", "", err
			}
			if f.Module == nil || f.Module.Mod.Path == "" {
				return "", "", fmt.Errorf("%s: no module directive", gomod)
			}
			return d, f.Module.Mod.Path, nil
		}
		if !errors.Is(err, os.ErrNotExist) && !isDirErr(gomod) {
			return "", "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", fmt.Errorf("%s: no go.mod in this directory or any parent", abs)
		}
		d = parent
	}
}

// isDirErr reports whether p exists but is a directory (a directory named
// go.mod does not make a module root).
func isDirErr(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// sdkModFile returns the content of a copy of go.mod (data) in which every
// replace directive for module is removed and one replacing module with dir
// is added.
func sdkModFile(data []byte, module, dir string) ([]byte, error) {
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range slices.Clone(f.Replace) {
		if r.Old.Path == module {
			if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return nil, err
			}
		}
	}
	if err := f.AddReplace(module, "", dir, ""); err != nil {
		return nil, err
	}
	f.Cleanup()
	return modfile.Format(f.Syntax), nil
}
