package build

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// modLine is one directive of a go.mod or go.work file: its verb ("module",
// "require", "replace", "use", ...), its arguments (quoted strings already
// unquoted) and the 0-based index of the line it is on. Directives inside a
// block such as "replace ( ... )" carry the block's verb.
type modLine struct {
	verb string
	args []string
	line int
}

// parseModLines is a small, forgiving reader of the go.mod / go.work line
// syntax. It understands // comments, quoted strings and the block form
// "verb ( ... )". It never fails: whatever it cannot make sense of is left
// for the go command to report.
func parseModLines(data []byte) []modLine {
	var out []modLine
	block := ""
	for i, raw := range bytes.Split(data, []byte("\n")) {
		toks := tokenizeModLine(string(raw))
		if len(toks) == 0 {
			continue
		}
		if block != "" {
			if toks[0] == ")" {
				block = ""
				continue
			}
			out = append(out, modLine{verb: block, args: toks, line: i})
			continue
		}
		if len(toks) >= 2 && toks[1] == "(" {
			block = toks[0]
			// Tolerate "verb ( args )" on one line.
			rest := toks[2:]
			if n := len(rest); n > 0 && rest[n-1] == ")" {
				block = ""
				rest = rest[:n-1]
			}
			if len(rest) > 0 {
				out = append(out, modLine{verb: toks[0], args: rest, line: i})
			}
			continue
		}
		out = append(out, modLine{verb: toks[0], args: toks[1:], line: i})
	}
	return out
}

// tokenizeModLine splits one line into tokens the way the go.mod lexer does:
// tokens are separated by white space, "(" and ")" are tokens of their own,
// "//" starts a comment and "..." or `...` is a quoted string.
func tokenizeModLine(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
		case strings.HasPrefix(s[i:], "//"):
			return toks
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				j = len(s) - 1
			}
			q := s[i : j+1]
			if u, err := strconv.Unquote(q); err == nil {
				toks = append(toks, u)
			} else {
				toks = append(toks, q)
			}
			i = j + 1
		case c == '`':
			j := strings.IndexByte(s[i+1:], '`')
			if j < 0 {
				toks = append(toks, s[i+1:])
				return toks
			}
			toks = append(toks, s[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(s) {
				d := s[j]
				if d == ' ' || d == '\t' || d == '\r' || d == '\v' || d == '\f' || d == '(' || d == ')' || strings.HasPrefix(s[j:], "//") {
					break
				}
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// replaceDirective is one "replace" directive.
type replaceDirective struct {
	module string // the replaced module path (left-hand side)
	local  string // the replacement directory as written, or "" for a module replacement
	line   int
}

// replaces returns the replace directives among lines.
func replaces(lines []modLine) []replaceDirective {
	var out []replaceDirective
	for _, l := range lines {
		if l.verb != "replace" {
			continue
		}
		arrow := -1
		for i, a := range l.args {
			if a == "=>" {
				arrow = i
				break
			}
		}
		if arrow < 1 {
			continue
		}
		r := replaceDirective{module: l.args[0], line: l.line}
		if right := l.args[arrow+1:]; len(right) == 1 && isDirectoryPath(right[0]) {
			r.local = right[0]
		}
		out = append(out, r)
	}
	return out
}

// isDirectoryPath reports whether a replacement path is a file system path
// rather than a module path, by the rule the go command applies: it is
// rooted or starts with ./ or ../ (or .\ and ..\ on Windows).
func isDirectoryPath(p string) bool {
	return p == "." || p == ".." ||
		strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") ||
		strings.HasPrefix(p, `.\`) || strings.HasPrefix(p, `..\`) ||
		strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) ||
		filepath.IsAbs(p)
}

// modulePath returns the argument of the module directive, or "".
func modulePath(lines []modLine) string {
	for _, l := range lines {
		if l.verb == "module" && len(l.args) > 0 {
			return l.args[0]
		}
	}
	return ""
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
			module := modulePath(parseModLines(data))
			if module == "" {
				return "", "", fmt.Errorf("%s: no module directive", gomod)
			}
			return d, module, nil
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
// is appended.
func sdkModFile(data []byte, module, dir string) []byte {
	drop := map[int]bool{}
	for _, r := range replaces(parseModLines(data)) {
		if r.module == module {
			drop[r.line] = true
		}
	}
	var buf bytes.Buffer
	for i, line := range bytes.Split(data, []byte("\n")) {
		if drop[i] {
			buf.WriteString("// (replaced by synapse build)\n")
			continue
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "\nreplace %s => %s\n", module, strconv.Quote(dir))
	return buf.Bytes()
}
