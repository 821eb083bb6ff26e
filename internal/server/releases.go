package server

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/store"
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

// findPlugin reads a plugin by its numeric ID or its code.
func (a *API) findPlugin(r *http.Request, key string) (store.Plugin, error) {
	if id, err := strconv.ParseInt(key, 10, 64); err == nil {
		return a.Store.GetPluginByID(r.Context(), id)
	}
	return a.Store.GetPlugin(r.Context(), key)
}

func (a *API) getPlugin(w http.ResponseWriter, r *http.Request) error {
	p, err := a.findPlugin(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pluginJSON(p))
	return nil
}

func (a *API) listPlugins(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.Store.ListPlugins(r.Context())
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(ps))
	for i, p := range ps {
		out[i] = pluginJSON(p)
	}
	writeJSON(w, http.StatusOK, page{Count: len(out), Results: out})
	return nil
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
	if !validCode(body.Code) {
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("code: want 1 to 100 letters, digits, '-' or '_' (got %q)", body.Code)}
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

func validCode(c string) bool {
	if c == "" || len(c) > 100 {
		return false
	}
	for _, r := range c {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// maxRelease is the largest release zip taken: a job-mode package's limit.
const maxRelease = pack.MaxSize

// createRelease is POST /plugin_releases/: multipart (plugin, version,
// config as JSON text, debug as True/False, file plugin.zip), as the
// Python SDK's create_plugin_release sends it, or JSON without a file. The
// plugin is created from the config (name, category, description) when its
// code is new. A version that exists is 400 "… already exists" unless
// debug is true, which replaces it.
func (a *API) createRelease(w http.ResponseWriter, r *http.Request) error {
	var code, version string
	var config json.RawMessage
	var debug bool
	var zipData []byte
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
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
				return &apiError{http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("request body over the limit of %s: a release zip may be at most %s", bytesText(uint64(mbe.Limit)), bytesText(maxRelease))}
			}
			return &apiError{http.StatusBadRequest, "INVALID_BODY", "read the form: " + err.Error()}
		}
		defer r.MultipartForm.RemoveAll()
		code, version = r.FormValue("plugin"), r.FormValue("version")
		if c := r.FormValue("config"); c != "" {
			config = json.RawMessage(c)
		}
		debug, _ = strconv.ParseBool(r.FormValue("debug")) // Python sends "True"/"False"
		if f, _, err := r.FormFile("file"); err == nil {
			defer f.Close()
			zipData, err = io.ReadAll(io.LimitReader(f, maxRelease+1))
			if err != nil {
				return &apiError{http.StatusBadRequest, "INVALID_BODY", "read the file: " + err.Error()}
			}
		}
	} else {
		var body struct {
			Plugin  string          `json:"plugin"`
			Version string          `json:"version"`
			Config  json.RawMessage `json:"config"`
			Debug   bool            `json:"debug"`
		}
		if err := decodeBody(w, r, &body, false, "plugin, version, config, debug"); err != nil {
			return err
		}
		code, version, config, debug = body.Plugin, body.Version, body.Config, body.Debug
	}
	switch {
	case !validCode(code):
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("plugin: want a plugin code (got %q)", code)}
	case version == "" || len(version) > 100 || strings.ContainsAny(version, "/\\@ "):
		return &apiError{http.StatusBadRequest, "INVALID_BODY", fmt.Sprintf("version: want a version such as 1.0.0 (got %q)", version)}
	case len(config) > 0 && !json.Valid(config):
		return &apiError{http.StatusBadRequest, "INVALID_BODY", "config: not valid JSON"}
	case len(zipData) > maxRelease:
		return &apiError{http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("file: over the limit of %s", bytesText(maxRelease))}
	}
	if len(config) == 0 {
		config = json.RawMessage("{}")
	}
	if err := checkConfig(code, config); err != nil {
		return err
	}
	var sum string
	if zipData != nil {
		zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
		if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // checkZip names the entry
			return &apiError{http.StatusBadRequest, "INVALID_BODY", "file: not a zip archive: " + err.Error()}
		}
		if err := checkZip(zr, releaseLimits); err != nil {
			return &apiError{http.StatusBadRequest, "INVALID_ZIP", "file: " + err.Error()}
		}
		h := sha256.Sum256(zipData)
		sum = hex.EncodeToString(h[:])
		if err := a.saveZip(sum, zipData); err != nil {
			return err
		}
	}
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
	if errors.Is(err, store.ErrExists) {
		return &apiError{http.StatusBadRequest, "VERSION_EXISTS", fmt.Sprintf("plugin release %s@%s already exists: bump version in config.yaml, or publish with debug", code, version)}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, releaseJSON(code, rel))
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
		p, err := a.Store.GetPlugin(r.Context(), c)
		if err != nil {
			return err
		}
		if rel, err = a.Store.FindRelease(r.Context(), p.ID, v, true); err != nil {
			return err
		}
		code = p.Code
	} else {
		id, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return store.ErrNotFound
		}
		if rel, err = a.Store.GetRelease(r.Context(), id); err != nil {
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
	size, err := number("page_size", 100, 1000)
	if err != nil {
		return err
	}
	pageNo, err := number("page", 1, math.MaxInt32)
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
		return &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("page: no page %d (%d releases, %d a page)", pageNo, total, size)}
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
	link := func(n int) *string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(n))
		s := (&url.URL{Path: r.URL.Path, RawQuery: v.Encode()}).String()
		return &s
	}
	p := page{Count: total, Results: out}
	if f.Offset+len(rels) < total {
		p.Next = link(pageNo + 1)
	}
	if pageNo > 1 {
		p.Previous = link(pageNo - 1)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
