package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/store"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// pluginJSON is a plugin as GET /plugins/{id}/ shows it.
func pluginJSON(p store.Plugin) map[string]any {
	return map[string]any{"id": p.ID, "code": p.Code, "name": p.Name, "category": p.Category, "description": p.Description,
		"created": p.CreatedAt.Format(time.RFC3339Nano)}
}

// releaseJSON is a release as GET /plugin_releases/{id}/ shows it.
func releaseJSON(code string, r store.Release) map[string]any {
	return map[string]any{"id": r.ID, "plugin": code, "version": r.Version, "config": r.Config, "debug": r.Debug,
		"checksum": r.SHA256, "size": r.Size, "created": r.CreatedAt.Format(time.RFC3339Nano)}
}

// findPlugin reads a plugin by its numeric ID or its code. An unknown
// one is a *notFoundError naming key.
func (a *API) findPlugin(r *http.Request, key string) (store.Plugin, error) {
	var p store.Plugin
	var err error
	if id, perr := strconv.ParseInt(key, 10, 64); perr == nil {
		p, err = a.Store.GetPluginByID(r.Context(), id)
	} else {
		p, err = a.Store.GetPlugin(r.Context(), key)
	}
	if errors.Is(err, store.ErrNotFound) {
		return p, &notFoundError{fmt.Sprintf("no plugin with ID or code %q (GET /plugins/ lists the plugins)", key)}
	}
	return p, err
}

func (a *API) getPlugin(w http.ResponseWriter, r *http.Request) error {
	p, err := a.findPlugin(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pluginJSON(p))
	return nil
}

// listPlugins is GET /plugins/?page=N&page_size=M: plugins by code, in
// DRF pages as GET /plugin_releases/ (pageQuery; a page past the last 404).
func (a *API) listPlugins(w http.ResponseWriter, r *http.Request) error {
	size, pageNo, err := pageQuery(r)
	if err != nil {
		return err
	}
	offset := (pageNo - 1) * size
	ps, total, err := a.Store.PluginsPage(r.Context(), offset, size)
	if err != nil {
		return err
	}
	if pageNo > 1 && offset >= total {
		return &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("page: no page %d (%s, %d a page)", pageNo, count(total, "plugin", "plugins"), size)}
	}
	out := make([]map[string]any, len(ps))
	for i, p := range ps {
		out[i] = pluginJSON(p)
	}
	writeJSON(w, http.StatusOK, pageOf(r, pageNo, offset+len(ps) < total, total, out))
	return nil
}

// pageQuery reads DRF page parameters: page_size (default 100, the Python
// SDK's, at most 1000) and page (from 1).
func pageQuery(r *http.Request) (size, pageNo int, err error) {
	q := r.URL.Query()
	number := func(name string, def, most int) (int, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > most {
			return 0, &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("%s: want a number from 1 to %d (got %q)", name, most, v)}
		}
		return n, nil
	}
	if size, err = number("page_size", 100, 1000); err != nil {
		return 0, 0, err
	}
	if pageNo, err = number("page", 1, math.MaxInt32); err != nil {
		return 0, 0, err
	}
	return size, pageNo, nil
}

// pageOf is page pageNo of a DRF list: next and previous link to the
// pages around it (next when more is true), as r's URL with page= set.
func pageOf(r *http.Request, pageNo int, more bool, total int, results any) page {
	link := func(n int) *string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(n))
		s := (&url.URL{Path: r.URL.Path, RawQuery: v.Encode()}).String()
		return &s
	}
	p := page{Count: total, Results: results}
	if more {
		p.Next = link(pageNo + 1)
	}
	if pageNo > 1 {
		p.Previous = link(pageNo - 1)
	}
	return p
}

// createPlugin is POST /plugins/ {code, name, category, description}.
func (a *API) createPlugin(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Code        string `json:"code"`
		Name        string `json:"name"`
		Category    string `json:"category"`
		Description string `json:"description"`
	}
	if err := decodeBody(w, r, &body, false, "code, name, category, description"); err != nil {
		return err
	}
	if msg := codeProblem(body.Code); msg != "" {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "code: " + msg}
	}
	if body.Name == "" {
		body.Name = body.Code
	}
	p, err := a.Store.CreatePlugin(r.Context(), store.Plugin{Code: body.Code, Name: body.Name, Category: body.Category, Description: body.Description})
	if errors.Is(err, store.ErrExists) {
		return &apiError{http.StatusBadRequest, "ALREADY_EXISTS", fmt.Sprintf("plugin with this code already exists: %s", body.Code)}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, pluginJSON(p))
	return nil
}

// codeProblem says what is wrong with c as a plugin code, or "": a code
// is 1 to 100 letters, digits, '-' or '_', not digits only (the routes
// take a plugin's ID or code, and all digits is an ID).
func codeProblem(c string) string {
	if c == "" || len(c) > 100 {
		return fmt.Sprintf("want 1 to 100 letters, digits, '-' or '_' (got %q)", c)
	}
	digits := true
	for _, r := range c {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Sprintf("want 1 to 100 letters, digits, '-' or '_' (got %q)", c)
		}
		digits = digits && r >= '0' && r <= '9'
	}
	if digits {
		return fmt.Sprintf("%q is only digits, which /plugins/%s/ would read as a plugin ID: put a letter, '-' or '_' in it", c, c)
	}
	return ""
}

// maxRelease is the largest release zip taken: a job-mode package's limit.
const maxRelease = pack.MaxSize

// releaseTooLarge is the 413 of a publish whose zip (or whole form) is
// over the limit; docs/server-api.md quotes it.
func releaseTooLarge() error {
	return &apiError{http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("file: the release zip is over the limit: a release zip may be at most %s (and the form around it 1 MiB): leave data sets and build outputs out of the release", bytesText(maxRelease))}
}

// releaseFields are the multipart fields a publish takes.
// (requirements, which the Python SDK's model allows, is taken and
// ignored: it is a Python release's).
const releaseFields = "plugin, version, config, debug, requirements, and the zip as the file field file"

// parseDebug reads a publish's debug field: True/False as the Python SDK
// sends str(bool), true/false, 1/0; empty is false. Anything else is an
// error naming the field.
func parseDebug(v string) (bool, error) {
	switch v {
	case "", "False", "false", "0":
		return false, nil
	case "True", "true", "1":
		return true, nil
	}
	return false, &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("debug: want True or False (also true/false, 1/0; got %q)", v)}
}

// createRelease is POST /plugin_releases/: multipart (plugin, version,
// config as JSON text, debug as True/False, file plugin.zip), as the
// Python SDK's create_plugin_release sends it. Any other body, a form
// without the zip in field file, or with fields of other names, is 400: a
// release needs its zip. The plugin is created from the config (name,
// category, description) when its code is new. A version that exists is
// 400 "… already exists" unless debug is true and it is a debug release,
// which the publish replaces (a published, non-debug one is 400). The
// version must be config.version when the config has one. A
// release that could not run is 400 (checkConfig, checkZip,
// checkRunnable, checkActions), nothing kept.
func (a *API) createRelease(w http.ResponseWriter, r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		got := mt
		if got == "" {
			got = "no Content-Type"
		}
		return &apiError{http.StatusBadRequest, "FILE_REQUIRED", fmt.Sprintf("a release needs its zip: send multipart/form-data with %s, as synapse-go and the Python SDK's create_plugin_release do (got %s)", releaseFields, got)}
	}
	const limit = maxRelease + 1<<20 // the zip and the form around it
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if r.ContentLength > limit { // refused before reading it
		err = &http.MaxBytesError{Limit: limit}
	} else {
		err = r.ParseMultipartForm(32 << 20)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return releaseTooLarge()
		}
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "read the form: " + err.Error()}
	}
	defer r.MultipartForm.RemoveAll()
	if err := checkReleaseForm(r.MultipartForm); err != nil {
		return err
	}
	code, version := r.FormValue("plugin"), r.FormValue("version")
	var config json.RawMessage
	if c := r.FormValue("config"); c != "" {
		config = json.RawMessage(c)
	}
	debug, err := parseDebug(r.FormValue("debug"))
	if err != nil {
		return err
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		return &apiError{http.StatusBadRequest, "FILE_REQUIRED", "file: the release zip is missing: send it as the multipart file field file (plugin.zip)"}
	}
	defer f.Close()
	zipData, err := io.ReadAll(io.LimitReader(f, maxRelease+1))
	if err != nil {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "read the file: " + err.Error()}
	}
	switch {
	case codeProblem(code) != "":
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "plugin: a plugin code: " + codeProblem(code)}
	case version == "" || len(version) > 100 || strings.ContainsAny(version, "/\\@ "):
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("version: want a version such as 1.0.0 (got %q)", version)}
	case len(config) > 0 && !json.Valid(config):
		var v any
		err := decodeJSON(config, &v, false, "")
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "config: " + strings.TrimPrefix(err.Error(), "read body: ") + " (config is config.yaml as JSON text)"}
	case len(zipData) > maxRelease:
		return releaseTooLarge()
	}
	if len(config) == 0 {
		config = json.RawMessage("{}")
	}
	if err := checkConfig(code, config); err != nil {
		return err
	}
	var cv struct {
		Version json.RawMessage `json:"version"`
	}
	_ = json.Unmarshal(config, &cv)
	if want := string(cv.Version); len(cv.Version) > 0 && want != "null" {
		_ = json.Unmarshal(cv.Version, &want) // a string's text; a number as written
		if want != version {
			return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("version: %q is not config.version %q: publish the version config.yaml has, or change config.yaml", version, want)}
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // checkZip names the entry
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "file: not a zip archive: " + err.Error()}
	}
	if err := checkZip(zr, releaseLimits); err != nil {
		return &apiError{http.StatusBadRequest, "INVALID_ZIP", "file: " + err.Error()}
	}
	kind, err := checkRunnable(zr, config)
	if err != nil {
		return err
	}
	if a.Releases == nil || a.Releases.Dir == "" {
		return errors.New("save release: no release directory configured")
	}
	h := sha256.Sum256(zipData)
	sum := hex.EncodeToString(h[:])
	staged, err := a.Releases.stage(zipData)
	if err != nil {
		return err
	}
	defer os.RemoveAll(staged) // gone once adopted
	if kind == goRelease {
		if err := a.checkActions(r.Context(), staged, config); err != nil {
			return err
		}
	}
	if err := a.saveZip(sum, zipData); err != nil {
		return err
	}
	a.Releases.adopt(staged, sum)
	p, err := a.Store.GetPlugin(r.Context(), code)
	if errors.Is(err, store.ErrNotFound) {
		var meta struct{ Name, Category, Description string }
		_ = json.Unmarshal(config, &meta)
		if meta.Name == "" {
			meta.Name = code
		}
		p, err = a.Store.CreatePlugin(r.Context(), store.Plugin{Code: code, Name: meta.Name, Category: meta.Category, Description: meta.Description})
		if errors.Is(err, store.ErrExists) { // created meanwhile
			p, err = a.Store.GetPlugin(r.Context(), code)
		}
	}
	if err != nil {
		return err
	}
	rel, err := a.Store.CreateRelease(r.Context(), store.Release{PluginID: p.ID, Version: version, Config: config, Debug: debug, SHA256: sum, Size: int64(len(zipData))})
	if errors.Is(err, store.ErrPublished) {
		return &apiError{http.StatusBadRequest, "VERSION_EXISTS", fmt.Sprintf("%s@%s is a published (non-debug) release; bump version in config.yaml (the version already exists, and a debug publish replaces only a debug release)", code, version)}
	}
	if errors.Is(err, store.ErrExists) {
		return &apiError{http.StatusBadRequest, "VERSION_EXISTS", fmt.Sprintf("plugin release %s@%s already exists: bump version in config.yaml, or publish with debug", code, version)}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, releaseJSON(code, rel))
	return nil
}

// checkReleaseForm refuses a publish form with fields of other names: the
// zip under another name than file (which would make a release without
// its zip), or any field the publish does not take.
func checkReleaseForm(form *multipart.Form) error {
	for name := range form.File {
		if name != "file" {
			return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("%s: the release zip goes in the multipart file field file, not %s (fields: %s)", name, name, releaseFields)}
		}
	}
	names := make([]string, 0, len(form.Value))
	for name := range form.Value {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch name {
		case "plugin", "version", "config", "debug", "requirements":
		case "file":
			return &apiError{http.StatusBadRequest, "INVALID_BODY", "file: the release zip must be sent as a file part (with a filename, such as plugin.zip), not as a text field"}
		default:
			return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("%s: unknown field (fields: %s)", name, releaseFields)}
		}
	}
	return nil
}

// releaseAction is an action of a release's config: its entrypoint, the
// name of the binary's action (the action's own name when empty; a Python
// release has a module path such as plugin.train:TrainAction).
type releaseAction struct {
	Name, Entrypoint string
}

// configActions reads the actions of a checked config (checkConfig), in
// name order.
func configActions(config json.RawMessage) []releaseAction {
	var cfg struct {
		Actions map[string]json.RawMessage `json:"actions"`
	}
	_ = json.Unmarshal(config, &cfg)
	out := make([]releaseAction, 0, len(cfg.Actions))
	for name, raw := range cfg.Actions {
		var a struct {
			Entrypoint string `json:"entrypoint"`
		}
		_ = json.Unmarshal(raw, &a)
		if a.Entrypoint == "" {
			a.Entrypoint = name
		}
		out = append(out, releaseAction{Name: name, Entrypoint: a.Entrypoint})
	}
	slices.SortFunc(out, func(x, y releaseAction) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// pythonEntrypoint reports whether an action's entrypoint is a Python
// path (plugin.train:TrainAction, or plugin.train.TrainAction) rather
// than the name of a Go plugin binary's action.
func pythonEntrypoint(e string) bool {
	return pythonPath.MatchString(e)
}

// pythonPath is a Python entrypoint: dotted identifiers, the class after a
// last "." or ":" (plugin.train:TrainAction, plugin.train.TrainAction). A
// path that starts with "." or holds "-" (such as one into a virtual
// environment, .synapse.venvs.py3.12-…) is none.
var pythonPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*[.:][A-Za-z_][A-Za-z0-9_]*$`)

// releaseKind is what runs a release's actions.
type releaseKind int

const (
	goRelease     releaseKind = iota // the plugin binary (worker.BinaryName) at the zip's root
	pythonRelease                    // the Python SDK's worker, in a prepared virtual environment
)

// checkRunnable is the one place that decides which kinds of release this
// server runs: a zip with the plugin binary (worker.BinaryName) at its
// root is a Go release; a zip without it whose actions' entrypoints are
// all Python paths (plugin.train:TrainAction) is a Python release, run by
// the Python SDK's worker (pythonRelease). Anything else is 400: an
// action without a Python entrypoint in a zip without the binary, and the
// answer says how to build one.
func checkRunnable(zr *zip.Reader, config json.RawMessage) (releaseKind, error) {
	for _, f := range zr.File {
		if path.Clean(f.Name) == worker.BinaryName && f.Mode().IsRegular() {
			return goRelease, nil
		}
	}
	actions := configActions(config)
	var notPython []string
	for _, a := range actions {
		if !pythonEntrypoint(a.Entrypoint) {
			notPython = append(notPython, a.Name)
		}
	}
	if len(notPython) == 0 {
		return pythonRelease, nil
	}
	if len(notPython) < len(actions) {
		return 0, &apiError{http.StatusBadRequest, "INVALID_RELEASE", fmt.Sprintf("file: this looks like a Python release (no %s binary, Python entrypoints), but action(s) %s have no Python entrypoint (module.Class or module:Class): set their entrypoint in config.yaml", worker.BinaryName, strings.Join(notPython, ", "))}
	}
	return 0, &apiError{http.StatusBadRequest, "INVALID_RELEASE", fmt.Sprintf("file: the zip has no %s binary at its root, so none of its actions could run: publish the plugin with synapse plugin publish, which builds the binary and packs it, or put the plugin's binary (built with GOOS=linux for the agents' machines) in the zip as %s", worker.BinaryName, worker.BinaryName)}
}

// checkActions asks the release's binary, unpacked in dir, for its
// actions (synapse-plugin actions, in a process group of its own, killed
// after the params check's timeout) and refuses a config action whose
// entrypoint the binary does not have: 400 naming them. A binary this
// machine cannot start (built for another platform) is not checked here:
// its agent reports it.
func (a *API) checkActions(ctx context.Context, dir string, config json.RawMessage) error {
	timeout := a.paramsTimeout()
	checkCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(checkCtx, filepath.Join(dir, worker.BinaryName), "actions")
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	killed, err := runOwnGroup(cmd)
	bad := func(format string, args ...any) error {
		return &apiError{http.StatusBadRequest, "INVALID_RELEASE", fmt.Sprintf(format, args...)}
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("check release actions: %w", ctx.Err())
	case killed:
		return bad("file: the release's binary did not answer %s actions within %s, so its actions could not be checked: its main must be plugin.Main, which answers at once", worker.BinaryName, timeout)
	case cmd.ProcessState == nil:
		return nil // not a binary of this machine: the agent checks
	case err != nil && !cmd.ProcessState.Success():
		msg := strings.TrimSpace(errOut.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return bad("file: the release's binary failed to list its actions (%s actions: %s; %s): is its main plugin.Main?", worker.BinaryName, err, msg)
	}
	var infos []protocol.ActionInfo
	if err := json.Unmarshal(out.Bytes(), &infos); err != nil {
		return bad("file: the release's binary answered %s actions with something other than its list of actions: is its main plugin.Main?", worker.BinaryName)
	}
	has := make(map[string]bool, len(infos))
	names := make([]string, len(infos))
	for i, in := range infos {
		has[in.Name], names[i] = true, in.Name
	}
	var missing []string
	for _, ac := range configActions(config) {
		if !has[ac.Entrypoint] {
			m := ac.Name
			if ac.Entrypoint != ac.Name {
				m += " (entrypoint " + ac.Entrypoint + ")"
			}
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		if len(names) == 0 {
			names = []string{"none"}
		}
		return bad("config.actions: the release's binary has no action %s; it has %s: add the action to the plugin's code and rebuild, or remove it from config.yaml", strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return nil
}

// checkConfig refuses a release config that cannot run as the plugin it
// is published to: not an object, a code of another plugin, no actions.
func checkConfig(code string, config json.RawMessage) error {
	bad := func(format string, args ...any) error {
		return &apiError{http.StatusBadRequest, "INVALID_CONFIG", fmt.Sprintf(format, args...)}
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(config, &cfg); err != nil || cfg == nil {
		return bad("config: want a JSON object (config.yaml as JSON)")
	}
	if raw, ok := cfg["code"]; ok && string(raw) != "null" {
		var c string
		if err := json.Unmarshal(raw, &c); err != nil {
			return bad("config.code: want a string, the plugin's code (got %s)", raw)
		}
		if c != code {
			return bad("config.code: %q is not the plugin %q this release is published to: publish it as plugin %q, or set code: %s in config.yaml", c, code, c, code)
		}
	}
	var actions map[string]json.RawMessage
	if raw, ok := cfg["actions"]; ok && json.Unmarshal(raw, &actions) != nil {
		return bad("config.actions: want an object of actions by name, such as {\"train\": {\"entrypoint\": …}} (actions: in config.yaml)")
	}
	if len(actions) == 0 {
		return bad("config.actions: the config has no actions, so nothing could run: add at least one under actions: in config.yaml")
	}
	return nil
}

// saveZip stores a release zip as <Releases.Dir>/<sha256>.zip, atomically.
func (a *API) saveZip(sum string, data []byte) error {
	if a.Releases == nil || a.Releases.Dir == "" {
		return errors.New("save release: no release directory configured")
	}
	dir := a.Releases.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(dir, sum+".zip")
	if _, err := os.Stat(final); err == nil {
		return nil // the same content is there
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}

// getRelease is GET /plugin_releases/{id}/ or /plugin_releases/{code@version}/.
func (a *API) getRelease(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("id")
	var rel store.Release
	var code string
	if c, v, ok := strings.Cut(key, "@"); ok {
		if v == "" {
			return &notFoundError{fmt.Sprintf("no release %q: the version after @ is missing: want CODE@VERSION (GET /plugin_releases/?plugin=%s lists its releases)", key, c)}
		}
		p, err := a.findPlugin(r, c)
		if err != nil {
			return err
		}
		rel, err = a.Store.FindRelease(r.Context(), p.ID, v, true)
		if errors.Is(err, store.ErrNotFound) {
			return &notFoundError{fmt.Sprintf("plugin %s has no release %q (GET /plugin_releases/?plugin=%s lists its releases)", p.Code, v, p.Code)}
		}
		if err != nil {
			return err
		}
		code = p.Code
	} else {
		id, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return &notFoundError{fmt.Sprintf("no release %q: want a release ID (a number) or CODE@VERSION", key)}
		}
		rel, err = a.Store.GetRelease(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return &notFoundError{fmt.Sprintf("no release with ID %d (GET /plugin_releases/ lists the releases)", id)}
		}
		if err != nil {
			return err
		}
		p, err := a.Store.GetPluginByID(r.Context(), rel.PluginID)
		if err != nil {
			return err
		}
		code = p.Code
	}
	writeJSON(w, http.StatusOK, releaseJSON(code, rel))
	return nil
}

// listReleases is GET /plugin_releases/?plugin=ID|CODE&page=N&page_size=M:
// releases newest first, in DRF pages (page numbers from 1; page_size
// default 100, the Python SDK's, at most 1000). An unknown plugin is 400,
// a page past the last 404, as DRF answers.
func (a *API) listReleases(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, pageNo, err := pageQuery(r)
	if err != nil {
		return err
	}
	var f store.ReleaseFilter
	if key := q.Get("plugin"); key != "" {
		p, err := a.findPlugin(r, key)
		if errors.Is(err, store.ErrNotFound) {
			return &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("plugin: no plugin %q (GET /plugins/ lists them)", key)}
		}
		if err != nil {
			return err
		}
		f.PluginID = p.ID
	}
	f.Offset, f.Limit = (pageNo-1)*size, size
	rels, total, err := a.Store.ListReleases(r.Context(), f)
	if err != nil {
		return err
	}
	if pageNo > 1 && f.Offset >= total {
		return &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("page: no page %d (%s, %d a page)", pageNo, count(total, "release", "releases"), size)}
	}
	codes := map[int64]string{}
	out := make([]map[string]any, len(rels))
	for i, rel := range rels {
		code, ok := codes[rel.PluginID]
		if !ok {
			p, err := a.Store.GetPluginByID(r.Context(), rel.PluginID)
			if err != nil {
				return err
			}
			code, codes[rel.PluginID] = p.Code, p.Code
		}
		out[i] = releaseJSON(code, rel)
	}
	writeJSON(w, http.StatusOK, pageOf(r, pageNo, f.Offset+len(rels) < total, total, out))
	return nil
}
