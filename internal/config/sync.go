package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ActionInfo is an action a plugin binary provides.
type ActionInfo struct {
	// Name is the action's name in the binary; a config action refers to
	// it through its entrypoint.
	Name string
	// Description says what the action does ("" for none).
	Description string
}

// SyncResult says what SyncActions changed or found. Each list is nil when
// empty.
type SyncResult struct {
	// Added are the actions written into the file, in the order given.
	Added []string
	// Extra are the actions in the file (by key, in file order) whose
	// entrypoint the binary lacks; they are left in place.
	Extra []string
	// Updated are the actions (by key, in file order) whose missing
	// description was filled in.
	Updated []string
}

// jobActions are the action names whose default run method is job.
var jobActions = map[string]bool{
	"upload": true, "export": true, "download": true, "convert": true,
	"train": true, "test": true, "deployment": true, "add_task_data": true,
}

// DefaultMethod returns the run method for a new action named name: job for
// upload, export, download, convert, train, test, deployment, add_task_data;
// serve for inference; task otherwise.
func DefaultMethod(name string) string {
	switch {
	case jobActions[name]:
		return "job"
	case name == "inference":
		return "serve"
	default:
		return defaultMethod
	}
}

// SyncActions makes the `actions` of the config file at path list every
// action in provided: missing ones are added (key = name, with
// `entrypoint: <name>`, `method: <default>` and `description` when
// non-empty), existing ones get a description if they have none. An action
// in the file maps to a provided action through its `entrypoint` (default:
// its key). Comments, key order and unrelated content are kept (the
// yaml.Node tree is edited and re-encoded with 2-space indentation; blank
// lines before keys are put back); the file is rewritten, through a
// temporary file renamed over it, only when something changed, keeping its
// permission bits. An `actions` key is created at the end if absent.
//
// A file that is not valid YAML or whose `actions` has the wrong shape
// gives an *Error, as Parse does; other problems in the config (say a
// missing `code`) are left for Parse to report. A provided action whose
// name is already the key of a file action with another entrypoint is an
// error too, and nothing is written then.
func SyncActions(path string, provided []ActionInfo) (SyncResult, error) {
	var res SyncResult
	provided, err := dedupe(provided)
	if err != nil {
		return res, err
	}
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return res, fmt.Errorf("sync plugin config: %w", err)
	}
	info, err := os.Stat(file)
	if err != nil {
		return res, fmt.Errorf("sync plugin config: %w", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return res, fmt.Errorf("sync plugin config: %w", err)
	}
	// Work on LF line ends (the YAML library keeps stray "\r"s in comments)
	// and put CRLFs back when writing.
	crlf := bytes.Contains(data, []byte("\r\n"))
	if crlf {
		data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	}
	doc, perr := parseDocument(path, data)
	if perr != nil {
		return res, perr
	}
	root := doc.Content[0]

	actions, perr := actionsMapping(path, root)
	if perr != nil {
		return res, perr
	}
	entries, perr := syncEntries(path, actions)
	if perr != nil {
		return res, perr
	}

	byEntrypoint := map[string][]int{}
	keys := map[string]int{}
	for i, e := range entries {
		byEntrypoint[e.entrypoint] = append(byEntrypoint[e.entrypoint], i)
		keys[e.key] = i
	}
	updated := make([]bool, len(entries))
	var added []*yaml.Node
	for _, a := range provided {
		idx, ok := byEntrypoint[a.Name]
		if !ok {
			if i, taken := keys[a.Name]; taken {
				e := entries[i]
				return SyncResult{}, &Error{File: path, Line: e.k.Line, Field: join("actions", e.key),
					Message: fmt.Sprintf("cannot add the plugin's action %q: the key is taken by an action with entrypoint %q", a.Name, e.entrypoint)}
			}
			added = append(added, newKey(a.Name), newAction(a))
			res.Added = append(res.Added, a.Name)
			continue
		}
		if a.Description == "" {
			continue
		}
		for _, i := range idx {
			if !updated[i] && setDescription(entries[i].v, a.Description) {
				updated[i] = true
			}
		}
	}
	want := map[string]bool{}
	for _, a := range provided {
		want[a.Name] = true
	}
	for i, e := range entries {
		if updated[i] {
			res.Updated = append(res.Updated, e.key)
		}
		if !want[e.entrypoint] {
			res.Extra = append(res.Extra, e.key)
		}
	}
	if len(added) > 0 {
		if len(actions.Content) == 0 {
			actions.Style &^= yaml.FlowStyle
		}
		actions.Content = append(actions.Content, added...)
	}
	if len(res.Added) == 0 && len(res.Updated) == 0 {
		return res, nil // the tree may have a new, empty `actions`; it is not written
	}

	out, err := encode(doc)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync plugin config: %w", err)
	}
	out = restoreBlankLines(data, doc, out)
	if crlf {
		out = bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
	}
	if err := writeFile(file, out, info.Mode().Perm()); err != nil {
		return SyncResult{}, fmt.Errorf("sync plugin config: %w", err)
	}
	return res, nil
}

// dedupe drops repeated provided actions (the first one wins) and rejects
// empty names.
func dedupe(provided []ActionInfo) ([]ActionInfo, error) {
	seen := map[string]bool{}
	out := make([]ActionInfo, 0, len(provided))
	for _, a := range provided {
		if a.Name == "" {
			return nil, errors.New("sync plugin config: a provided action has an empty name")
		}
		if !seen[a.Name] {
			seen[a.Name] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// actionsMapping returns the `actions` mapping node of root, creating it
// (at the end of root, or in place of a null value) when needed.
func actionsMapping(file string, root *yaml.Node) (*yaml.Node, *Error) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Kind != yaml.ScalarNode || k.Value != "actions" || isMerge(k) {
			continue
		}
		v := root.Content[i+1]
		switch {
		case v.Kind == yaml.AliasNode:
			return nil, &Error{File: file, Line: v.Line, Field: "actions",
				Message: fmt.Sprintf("is an alias (*%s); write the actions out so that they can be updated", v.Value)}
		case isNull(v):
			v.Kind, v.Tag, v.Value, v.Style = yaml.MappingNode, "!!map", "", 0
			return v, nil
		case v.Kind != yaml.MappingNode:
			return nil, &Error{File: file, Line: v.Line, Field: "actions",
				Message: fmt.Sprintf("must be a mapping of action name to settings (got %s)", describe(v))}
		}
		return v, nil
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	root.Content = append(root.Content, newKey("actions"), v)
	return v, nil
}

// syncEntry is an action found in the file.
type syncEntry struct {
	key        string
	entrypoint string
	k, v       *yaml.Node // v is not resolved: an alias is not edited
}

// syncEntries lists the actions of the `actions` mapping in file order.
func syncEntries(file string, actions *yaml.Node) ([]syncEntry, *Error) {
	var out []syncEntry
	for i := 0; i+1 < len(actions.Content); i += 2 {
		k, v := resolve(actions.Content[i]), actions.Content[i+1]
		if isMerge(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode || (isNull(k) && k.Value == "") {
			return nil, &Error{File: file, Line: k.Line, Field: "actions", Message: fmt.Sprintf("keys must be strings (got %s)", describe(k))}
		}
		e := syncEntry{key: k.Value, entrypoint: k.Value, k: k, v: v}
		rv := resolve(v)
		switch {
		case isNull(rv):
		case rv.Kind != yaml.MappingNode:
			return nil, &Error{File: file, Line: rv.Line, Field: join("actions", k.Value),
				Message: fmt.Sprintf("must be a mapping of action settings (got %s)", describe(rv))}
		default:
			if _, ep := lookup(rv, "entrypoint"); ep != nil {
				if ep = resolve(ep); ep.Kind == yaml.ScalarNode && !isNull(ep) && ep.Value != "" {
					e.entrypoint = ep.Value
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// lookup returns the key and value nodes of key in mapping m (merge keys
// are not followed).
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := resolve(m.Content[i]); k.Kind == yaml.ScalarNode && !isMerge(k) && k.Value == key {
			return k, m.Content[i+1]
		}
	}
	return nil, nil
}

// setDescription gives action value v the description desc if it has
// none, and reports whether it did. Aliased values are left alone, since
// editing them would change every place that refers to them.
func setDescription(v *yaml.Node, desc string) bool {
	switch {
	case v.Kind == yaml.AliasNode:
		return false
	case isNull(v):
		v.Kind, v.Tag, v.Value, v.Style = yaml.MappingNode, "!!map", "", 0
		v.Content = []*yaml.Node{newKey("description"), newString(desc)}
		return true
	case v.Kind != yaml.MappingNode:
		return false
	}
	_, d := lookup(v, "description")
	switch {
	case d == nil:
		v.Content = append(v.Content, newKey("description"), newString(desc))
		return true
	case d.Kind == yaml.AliasNode:
		return false
	case isNull(d) || (d.Kind == yaml.ScalarNode && d.Value == ""):
		d.Kind, d.Tag, d.Value, d.Style = yaml.ScalarNode, "!!str", desc, 0
		return true
	}
	return false
}

// newAction returns the settings of a new action for a.
func newAction(a ActionInfo) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	n.Content = append(n.Content,
		newKey("entrypoint"), newString(a.Name),
		newKey("method"), newString(DefaultMethod(a.Name)))
	if a.Description != "" {
		n.Content = append(n.Content, newKey("description"), newString(a.Description))
	}
	return n
}

func newKey(s string) *yaml.Node    { return newString(s) }
func newString(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// encode writes doc as YAML with 2-space indentation.
func encode(doc *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// restoreBlankLines puts back the blank lines that preceded mapping keys
// (or the comments above them) in orig, which the YAML encoder drops. doc
// is the edited tree of orig, whose nodes still carry their original lines;
// out is doc encoded. The result is used only if it decodes to the same
// data as out; otherwise out is returned unchanged.
func restoreBlankLines(orig []byte, doc *yaml.Node, out []byte) []byte {
	origLines := strings.Split(string(orig), "\n")
	want := map[string]bool{}
	walkKeys(doc, "", func(path string, k *yaml.Node) {
		if k.Line == 0 { // added by SyncActions
			return
		}
		start := k.Line - commentLines(k.HeadComment)
		if start >= 2 && start-2 < len(origLines) && strings.TrimSpace(origLines[start-2]) == "" {
			want[path] = true
		}
	})
	if len(want) == 0 {
		return out
	}
	var outDoc yaml.Node
	if err := yaml.Unmarshal(out, &outDoc); err != nil {
		return out
	}
	outLines := strings.Split(string(out), "\n")
	before := map[int]bool{} // 0-based indexes of lines to put a blank line before
	walkKeys(&outDoc, "", func(path string, k *yaml.Node) {
		if !want[path] {
			return
		}
		start := k.Line - commentLines(k.HeadComment)
		if start >= 2 && start-1 < len(outLines) && strings.TrimSpace(outLines[start-2]) != "" {
			before[start-1] = true
		}
	})
	if len(before) == 0 {
		return out
	}
	var b strings.Builder
	for i, line := range outLines {
		if before[i] {
			b.WriteString("\n")
		}
		b.WriteString(line)
		if i < len(outLines)-1 {
			b.WriteString("\n")
		}
	}
	restored := []byte(b.String())
	var want1, got any
	if yaml.Unmarshal(out, &want1) != nil || yaml.Unmarshal(restored, &got) != nil || !reflect.DeepEqual(want1, got) {
		return out
	}
	return restored
}

// walkKeys calls fn for every key of every block mapping under n, with a
// path that names the key.
func walkKeys(n *yaml.Node, path string, fn func(path string, k *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkKeys(c, path, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkKeys(c, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	case yaml.MappingNode:
		if n.Style&yaml.FlowStyle != 0 {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			p := path + "\x00" + k.Value
			fn(p, k)
			walkKeys(n.Content[i+1], p, fn)
		}
	}
}

// commentLines returns the number of lines comment spans.
func commentLines(comment string) int {
	if comment == "" {
		return 0
	}
	return strings.Count(comment, "\n") + 1
}

// writeFile replaces path with data through a temporary file in the same
// directory, giving it the permission bits perm.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, perm)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		_ = os.Remove(name)
	}
	return err
}
