package pyplugin

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/params"
)

var (
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	classDef   = regexp.MustCompile(`(?m)^[ \t]*class[ \t]+([A-Za-z_][A-Za-z0-9_]*)`)
)

// CheckEntrypoint checks, without starting Python, that action's
// config.yaml entrypoint can name a class: module.Class or module:Class
// with Python identifiers, a module that is a file or package in the
// plugin directory when its top-level package is there, and a class that
// module defines or imports. A module whose top-level package is not in
// the directory may come from requirements.txt and is left to the worker.
// Errors are *config.Error at actions.ACTION.entrypoint (exit code 2).
func CheckEntrypoint(cfg *config.Config, action string) error {
	a, ok := cfg.Action(action)
	if !ok {
		return nil // the caller reports an unknown action
	}
	fail := func(format string, args ...any) error {
		return &config.Error{File: cfg.Path, Line: a.Line, Field: "actions." + action + ".entrypoint", Message: fmt.Sprintf(format, args...)}
	}
	ep := a.Entrypoint
	var module, class string
	switch n := strings.Count(ep, ":"); {
	case n > 1:
		return fail("%q has more than one ':'; want module.Class or module:Class, e.g. plugin.train:TrainAction", ep)
	case n == 1:
		module, class, _ = strings.Cut(ep, ":")
	default:
		i := strings.LastIndexByte(ep, '.')
		if i < 0 {
			return fail("%q names no module; a Python plugin's entrypoint is module.Class or module:Class, e.g. plugin.train:TrainAction", ep)
		}
		module, class = ep[:i], ep[i+1:]
	}
	parts := strings.Split(module, ".")
	for _, p := range append(slices.Clone(parts), class) {
		if !identifier.MatchString(p) {
			return fail("%q is not module.Class or module:Class: %q is not a Python name", ep, p)
		}
	}
	rel := filepath.Join(parts...)
	var file string
	for _, f := range []string{rel + ".py", filepath.Join(rel, "__init__.py")} {
		if fi, err := os.Stat(filepath.Join(cfg.Dir, f)); err == nil && fi.Mode().IsRegular() {
			file = f
			break
		}
	}
	if file == "" {
		if !local(cfg.Dir, parts[0]) {
			return nil // perhaps installed from requirements.txt
		}
		return fail("module %s is not in the plugin: neither %s nor %s exists in %s", module, rel+".py", filepath.Join(rel, "__init__.py"), cfg.Dir)
	}
	src, err := os.ReadFile(filepath.Join(cfg.Dir, file))
	if err != nil {
		return fail("read module %s: %v", module, err)
	}
	// A class defined there, or a name imported or assigned there.
	if regexp.MustCompile(`\b` + regexp.QuoteMeta(class) + `\b`).Match(src) {
		return nil
	}
	var classes []string
	for _, m := range classDef.FindAllSubmatch(src, -1) {
		classes = append(classes, string(m[1]))
	}
	msg := fmt.Sprintf("module %s (%s) has no class %s", module, file, class)
	if s := params.Suggest(class, classes); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	} else if len(classes) > 0 {
		msg += "; it defines " + strings.Join(classes, ", ")
	}
	return fail("%s", msg)
}

// local reports whether the top-level package or module top is in dir.
func local(dir, top string) bool {
	for _, f := range []string{top, top + ".py"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}
