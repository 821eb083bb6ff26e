package pack

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// Names of the ignore files read while walking a plugin directory.
const (
	gitignoreFile     = ".gitignore"
	synapseignoreFile = ".synapseignore"
)

// alwaysExcluded reports whether an entry named name is left out of every
// package, whatever the ignore files say: .git (a directory, or the file a
// worktree or submodule has), .env and .env.* (secrets; a directory named
// .env, usually a Python virtualenv, goes too) and .synapse (the CLI's own
// state). These hold at any depth, and a negated ignore pattern cannot bring
// them back.
func alwaysExcluded(name string) bool {
	return name == ".git" || name == ".synapse" ||
		name == ".env" || strings.HasPrefix(name, ".env.")
}

// readPatterns parses the ignore file at file, whose patterns apply below
// the directory whose slash-separated components are domain (nil for the
// plugin directory itself). A missing file gives no patterns.
//
// gitignore.ParsePattern handles one pattern line only: blank lines and
// comments must be dropped here, as must a Windows line ending and a UTF-8
// byte order mark, which git also ignores.
func readPatterns(file string, domain []string) ([]gitignore.Pattern, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("package plugin: read %s: %w", file, err)
	}
	return parsePatterns(data, domain), nil
}

// parsePatterns parses the lines of an ignore file (see readPatterns).
func parsePatterns(data []byte, domain []string) []gitignore.Pattern {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		// git drops trailing spaces unless escaped; ParsePattern does the
		// same, so only an all-space line needs care here.
		if strings.TrimRight(line, " ") == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps
}

// ignorer decides which paths of a plugin directory are left out.
type ignorer struct {
	git []gitignore.Pattern // from the .gitignore files on the way down, outermost first
	syn []gitignore.Pattern // from .synapseignore in the plugin directory
	m   gitignore.Matcher   // all of them, in order of increasing priority
}

// newIgnorer returns an ignorer for the patterns of .synapseignore.
func newIgnorer(syn []gitignore.Pattern) ignorer {
	return ignorer{syn: syn, m: gitignore.NewMatcher(syn)}
}

// withSynapseignore returns an ignorer with syn as its .synapseignore
// patterns (the highest priority), i's .gitignore patterns kept.
func (i ignorer) withSynapseignore(syn []gitignore.Pattern) ignorer {
	all := make([]gitignore.Pattern, 0, len(i.git)+len(syn))
	all = append(append(all, i.git...), syn...)
	return ignorer{git: i.git, syn: syn, m: gitignore.NewMatcher(all)}
}

// PythonExcludes are the files the Python SDK's `synapse plugin publish`
// leaves out of a release (synapse_sdk.utils.file.archive.ArchiveFilter's
// DEFAULT_EXCLUDES, 2026.2.17), as gitignore patterns: caches, virtual
// environments, version control, editor and build directories, logs.
var PythonExcludes = []string{
	"__pycache__", "*.pyc", "*.pyo", "*.pyd", ".python-version", "*.egg-info", "*.egg",
	".venv", "venv", ".env", "env",
	".git", ".gitignore", ".gitattributes", ".svn", ".hg",
	".idea", ".vscode", "*.swp", "*.swo", ".DS_Store", "Thumbs.db",
	"dist", "build", "node_modules",
	".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache", ".tox",
	".coverage", "htmlcov", "*.log",
}

// withGitignore returns an ignorer that also honours ps, the patterns of a
// .gitignore deeper down. i itself is not changed, so siblings do not see
// each other's patterns.
//
// Patterns are tried from the highest priority down, the first match
// deciding: .synapseignore first (so that "!model.ckpt" there can ship a
// file that .gitignore keeps out of the repository), then the .gitignore
// files from the deepest up, each file's lines from the last up.
func (i ignorer) withGitignore(ps []gitignore.Pattern) ignorer {
	if len(ps) == 0 {
		return i
	}
	git := make([]gitignore.Pattern, 0, len(i.git)+len(ps))
	git = append(append(git, i.git...), ps...)
	all := make([]gitignore.Pattern, 0, len(git)+len(i.syn))
	all = append(append(all, git...), i.syn...)
	return ignorer{git: git, syn: i.syn, m: gitignore.NewMatcher(all)}
}

// ignored reports whether the path with slash-separated components parts
// (relative to the plugin directory) is excluded by the ignore files.
//
// The caller must have checked every parent directory first and not
// descended into excluded ones: go-git's matcher, unlike git, re-includes a
// file below an excluded directory when a negated pattern matches the file
// ("build/" then "!keep.txt" includes build/keep.txt).
func (i ignorer) ignored(parts []string, isDir bool) bool {
	return i.m.Match(parts, isDir)
}
