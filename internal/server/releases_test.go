package server

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/worker"
)

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// publish posts a release as the Python SDK's create_plugin_release does:
// multipart form fields and the zip as part "file" named plugin.zip.
func (f *apiFixture) publish(t *testing.T, fields map[string]string, file []byte) (int, any) {
	t.Helper()
	status, b := publishTo(t, f.srv.URL, f.admin, fields, file)
	var v any
	_ = jsonUnmarshal([]byte(b), &v)
	return status, v
}

// publishTo posts a release to the server at base with token.
func publishTo(t *testing.T, base, token string, fields map[string]string, file []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if file != nil {
		w, _ := mw.CreateFormFile("file", "plugin.zip")
		_, _ = w.Write(file)
	}
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/plugin_releases/", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Synapse-Access-Token", "Token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReleases(t *testing.T) {
	dir := t.TempDir()
	f := newAPI(t, func(a *API) { a.Releases = &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")} })
	z := zipOf(t, map[string]string{"config.yaml": "code: seg\n", "synapse-plugin": "\x7fELF"})
	sum := sha256.Sum256(z)
	cfg := `{"code":"seg","name":"Segmenter","category":"neural_net","description":"masks","actions":{"train":{}}}`

	status, v := f.publish(t, map[string]string{"plugin": "seg", "version": "0.1.0", "config": cfg, "debug": "False"}, z)
	if status != 201 {
		t.Fatalf("publish = %d %v", status, v)
	}
	rel := v.(map[string]any)
	if rel["plugin"] != "seg" || rel["version"] != "0.1.0" || rel["debug"] != false || rel["checksum"] != hex.EncodeToString(sum[:]) {
		t.Errorf("release = %v", rel)
	}
	if got, err := os.ReadFile(filepath.Join(dir, hex.EncodeToString(sum[:])+".zip")); err != nil || !bytes.Equal(got, z) {
		t.Errorf("stored zip: %v", err)
	}
	// The plugin was created from the config.
	_, v = f.call(t, "GET", "/plugins/seg/", f.admin, "")
	if p := v.(map[string]any); p["name"] != "Segmenter" || p["category"] != "neural_net" {
		t.Errorf("plugin = %v", v)
	}

	tests := []struct {
		name   string
		fields map[string]string
		file   []byte
		status int
		text   string
	}{
		{"same version again", map[string]string{"plugin": "seg", "version": "0.1.0", "config": cfg, "debug": "False"}, z, 400, "already exists"},
		{"same version as debug, over a published one", map[string]string{"plugin": "seg", "version": "0.1.0", "config": cfg, "debug": "True"}, z, 400, "is a published (non-debug) release"},
		{"debug", map[string]string{"plugin": "seg", "version": "0.1.1", "config": cfg, "debug": "True"}, z, 201, ""},
		{"same version as debug replaces a debug one", map[string]string{"plugin": "seg", "version": "0.1.1", "config": cfg, "debug": "True"}, z, 201, ""},
		{"not a zip", map[string]string{"plugin": "seg", "version": "0.2.0", "config": cfg}, []byte("hello"), 400, "not a zip"},
		{"bad config", map[string]string{"plugin": "seg", "version": "0.2.0", "config": "{"}, z, 400, "config"},
		{"bad code", map[string]string{"plugin": "../x", "version": "0.2.0"}, z, 400, "plugin code"},
		{"bad version", map[string]string{"plugin": "seg", "version": "1.0/../x"}, z, 400, "version"},
	}
	for _, tt := range tests {
		status, v := f.publish(t, tt.fields, tt.file)
		if status != tt.status || !strings.Contains(jsonText(v), tt.text) {
			t.Errorf("%s: %d %v, want %d containing %q", tt.name, status, v, tt.status, tt.text)
		}
	}

	_, v = f.call(t, "GET", "/plugin_releases/seg@0.1.0/", f.admin, "")
	byVersion := v.(map[string]any)
	if byVersion["debug"] != false {
		t.Errorf("by code@version = %v, want the published release, not replaced", v)
	}
	_, v = f.call(t, "GET", "/plugin_releases/"+jsonText(byVersion["id"])+"/", f.admin, "")
	if v.(map[string]any)["version"] != "0.1.0" {
		t.Errorf("by id = %v", v)
	}
	if status, _ := f.call(t, "GET", "/plugin_releases/seg@9.9/", f.admin, ""); status != 404 {
		t.Errorf("unknown version: %d", status)
	}

	if status, v := f.call(t, "POST", "/plugins/", f.admin, `{"code":"seg","name":"again"}`); status != 400 || !strings.Contains(jsonText(v), "already exists") {
		t.Errorf("duplicate plugin = %d %v", status, v)
	}
	if status, _ := f.call(t, "POST", "/plugins/", f.admin, `{"code":"det","name":"Detector"}`); status != 201 {
		t.Errorf("create plugin = %d", status)
	}
	_, v = f.call(t, "GET", "/plugins/", f.admin, "")
	if n := v.(map[string]any)["count"]; n != 3.0 { // yolo (fixture), seg, det
		t.Errorf("plugins count = %v", n)
	}
}

// TestPublishRefuses: a release that could not be unpacked or run is
// refused at publish, with 400 naming the entry or the config field, and
// nothing is kept.
func TestPublishRefuses(t *testing.T) {
	dir := t.TempDir()
	f := newAPI(t, func(a *API) { a.Releases = &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")} })
	cfg := `{"code":"seg","actions":{"train":{}}}`
	good := zipWith(t, zipEntry{name: "config.yaml", body: "code: seg\n"}, zipEntry{name: "synapse-plugin", body: "\x7fELF"})
	many := make([]zipEntry, maxReleaseEntries+1)
	for i := range many {
		many[i] = zipEntry{name: "f" + strconv.Itoa(i)}
	}
	tests := []struct {
		name   string
		config string
		file   []byte
		want   string
	}{
		{"not a zip", cfg, []byte("hello"), "file: not a zip archive"},
		{"parent directory", cfg, zipWith(t, zipEntry{name: "../evil", body: "x"}), `file: entry \"../evil\" escapes the release directory`},
		{"absolute path", cfg, zipWith(t, zipEntry{name: "/etc/cron.d/evil", body: "x"}), `entry \"/etc/cron.d/evil\" escapes`},
		{"symbolic link", cfg, zipWith(t, zipEntry{name: "link", mode: os.ModeSymlink | 0o777, body: "/etc/passwd"}), `entry \"link\" is a symbolic link`},
		{"named pipe", cfg, zipWith(t, zipEntry{name: "fifo", mode: os.ModeNamedPipe | 0o600}), `entry \"fifo\" is a named pipe`},
		{"too many entries", cfg, zipWith(t, many...), "the zip has 100001 entries, more than the limit of 100000"},
		{"zip bomb", cfg, zipWith(t, zipEntry{name: "a.bin", body: "x", declared: 3 << 30}, zipEntry{name: "b.bin", body: "x", declared: 3 << 30}), `the zip unpacks to more than 4 GiB (entry \"b.bin\"`},
		{"the same entry twice", cfg, zipWith(t, zipEntry{name: "a"}, zipEntry{name: "a"}), `entry \"a\" is in the zip twice`},
		{"code of another plugin", `{"code":"det","actions":{"train":{}}}`, good, `config.code: \"det\" is not the plugin \"seg\" this release is published to: publish it as plugin \"det\", or set code: seg in config.yaml`},
		{"code not a string", `{"code":7,"actions":{"train":{}}}`, good, "config.code: want a string"},
		{"no actions", `{"code":"seg"}`, good, "config.actions: the config has no actions, so nothing could run: add at least one under actions: in config.yaml"},
		{"empty actions", `{"code":"seg","actions":{}}`, good, "config.actions: the config has no actions"},
		{"actions not an object", `{"code":"seg","actions":["train"]}`, good, "config.actions: want an object of actions by name"},
		{"config not an object", `["train"]`, good, "config: want a JSON object"},
		{"config not JSON", `{bad`, good, "config: not valid JSON at byte 2: invalid character 'b'"},
		{"another version than config's", `{"code":"seg","version":"9.9","actions":{"train":{}}}`, good, `version: \"0.15\" is not config.version \"9.9\"`},
		{"all-digit plugin code", cfg, good, `plugin: a plugin code: \"123\" is only digits, which /plugins/123/ would read as a plugin ID`},
	}
	for i, tt := range tests {
		version := "0." + strconv.Itoa(i)
		plugin := "seg"
		if strings.Contains(tt.name, "all-digit") {
			plugin = "123"
		}
		status, v := f.publish(t, map[string]string{"plugin": plugin, "version": version, "config": tt.config}, tt.file)
		if status != 400 || !strings.Contains(jsonText(v), tt.want) {
			t.Errorf("%s: %d %s, want 400 containing %s", tt.name, status, jsonText(v), tt.want)
		}
		if status, _ := f.call(t, "GET", "/plugin_releases/seg@"+version+"/", f.admin, ""); status != 404 {
			t.Errorf("%s: the refused release exists (%d)", tt.name, status)
		}
	}
	if zips, _ := filepath.Glob(filepath.Join(dir, "*.zip")); len(zips) != 0 {
		t.Errorf("refused zips were kept: %v", zips)
	}
	if status, v := f.publish(t, map[string]string{"plugin": "seg", "version": "1.0", "config": `{"actions":{"train":{}}}`}, good); status != 201 {
		t.Errorf("a config without code (the plugin field names it) = %d %v", status, v)
	}
}

// TestListReleasesAPI is GET /plugin_releases/: newest first, by plugin
// ID or code, in DRF pages the Python SDK's list_all follows.
func TestListReleasesAPI(t *testing.T) {
	dir := t.TempDir()
	f := newAPI(t, func(a *API) { a.Releases = &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")} }) // the fixture has yolo 1.0.0
	z := zipOf(t, map[string]string{"synapse-plugin": "\x7fELF"})
	for _, p := range []struct{ code, version string }{{"seg", "1"}, {"seg", "2"}, {"det", "1"}, {"seg", "3"}} {
		fields := map[string]string{"plugin": p.code, "version": p.version, "config": `{"actions":{"train":{}}}`}
		if status, v := f.publish(t, fields, z); status != 201 {
			t.Fatalf("publish %s@%s: %d %v", p.code, p.version, status, v)
		}
	}
	_, v := f.call(t, "GET", "/plugins/seg/", f.admin, "")
	segID := jsonText(v.(map[string]any)["id"])
	type want struct {
		status         int
		count          float64
		versions, next string
		previous       string
	}
	tests := []struct {
		name, query string
		want        want
	}{
		{"all, newest first", "", want{200, 5, "seg@3 det@1 seg@2 seg@1 yolo@1.0.0", "", ""}},
		{"by code", "?plugin=seg", want{200, 3, "seg@3 seg@2 seg@1", "", ""}},
		{"by ID", "?plugin=" + segID, want{200, 3, "seg@3 seg@2 seg@1", "", ""}},
		{"first page", "?plugin=seg&page_size=2", want{200, 3, "seg@3 seg@2", "/plugin_releases/?page=2&page_size=2&plugin=seg", ""}},
		{"last page", "?plugin=seg&page_size=2&page=2", want{200, 3, "seg@1", "", "/plugin_releases/?page=1&page_size=2&plugin=seg"}},
		{"past the last page", "?plugin=seg&page_size=2&page=3", want{status: 404}},
		{"a plugin without releases", "?plugin=nope", want{status: 400}},
		{"bad page size", "?page_size=0", want{status: 400}},
		{"bad page", "?page=x", want{status: 400}},
	}
	for _, tt := range tests {
		status, v := f.call(t, "GET", "/plugin_releases/"+tt.query, f.admin, "")
		if status != tt.want.status {
			t.Errorf("%s: %d %v, want %d", tt.name, status, v, tt.want.status)
			continue
		}
		if status != 200 {
			continue
		}
		p := v.(map[string]any)
		var versions []string
		for _, r := range p["results"].([]any) {
			r := r.(map[string]any)
			versions = append(versions, r["plugin"].(string)+"@"+r["version"].(string))
		}
		next, _ := p["next"].(string)
		prev, _ := p["previous"].(string)
		if p["count"] != tt.want.count || strings.Join(versions, " ") != tt.want.versions || next != tt.want.next || prev != tt.want.previous {
			t.Errorf("%s: count %v, %v, next %q, previous %q; want %+v", tt.name, p["count"], versions, next, prev, tt.want)
		}
	}
	if status, _ := f.call(t, "GET", "/plugin_releases/", f.jobTk, ""); status != 403 {
		t.Errorf("a job token lists releases: %d, want 403", status)
	}
}

// formPart is a part of a publish form: a text field, or a file when
// filename is set.
type formPart struct{ name, filename, body string }

// publishForm posts the parts as a multipart publish.
func (f *apiFixture) publishForm(t *testing.T, parts ...formPart) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		if p.filename == "" {
			_ = mw.WriteField(p.name, p.body)
			continue
		}
		w, _ := mw.CreateFormFile(p.name, p.filename)
		_, _ = io.WriteString(w, p.body)
	}
	_ = mw.Close()
	resp, b := f.raw(t, "POST", "/plugin_releases/", f.admin, mw.FormDataContentType(), &body)
	return resp.StatusCode, string(b)
}

// TestPublishRefusesWhatCannotRun: a release that could never run is 400
// at publish, saying why and what to do, and nothing is kept: a zip
// without the plugin binary (a Python release among them), the zip under
// another field or none at all, unknown fields, a JSON publish, a debug
// that is no boolean, a Python release with an action that has no Python
// entrypoint, and config actions the binary does not have (asked
// with synapse-plugin actions, bounded by the params check's timeout).
func TestPublishRefusesWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	f := newAPI(t, func(a *API) {
		a.Releases = &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")}
		a.ParamsCheckTimeout = time.Second
	})
	script := func(body string) string {
		return string(zipWith(t, zipEntry{name: worker.BinaryName, mode: 0o755, body: "#!/bin/sh\n" + body}))
	}
	lists := script(`[ "$1" = actions ] && echo '[{"name":"train"},{"name":"infer"}]'` + "\n")
	cfg := `{"actions":{"train":{}}}`
	plugin, version := formPart{name: "plugin", body: "seg"}, formPart{name: "version", body: "1.0"}
	config := func(c string) formPart { return formPart{name: "config", body: c} }
	file := func(z string) formPart { return formPart{name: "file", filename: "plugin.zip", body: z} }
	tests := []struct {
		name  string
		parts []formPart
		want  string
	}{
		{"no binary", []formPart{plugin, version, config(cfg), file(string(zipOf(t, map[string]string{"config.yaml": "code: seg\n"})))},
			"file: the zip has no synapse-plugin binary at its root, so none of its actions could run: publish the plugin with synapse plugin publish, which builds the binary and packs it"},
		{"a Python release with a Go action", []formPart{plugin, version, config(`{"actions":{"train":{"entrypoint":"plugin.train:TrainAction"},"infer":{}}}`), file(string(zipOf(t, map[string]string{"plugin/train.py": ""})))},
			"file: this looks like a Python release (no synapse-plugin binary, Python entrypoints), but action(s) infer have no Python entrypoint (module.Class or module:Class): set their entrypoint in config.yaml"},
		{"the binary in a directory", []formPart{plugin, version, config(cfg), file(string(zipWith(t, zipEntry{name: "bin/" + worker.BinaryName, mode: 0o755, body: "#!/bin/sh\n"})))},
			"file: the zip has no synapse-plugin binary at its root"},
		{"the zip under another field", []formPart{plugin, version, config(cfg), {name: "zip", filename: "plugin.zip", body: lists}},
			"zip: the release zip goes in the multipart file field file, not zip"},
		{"no zip", []formPart{plugin, version, config(cfg)}, "file: the release zip is missing: send it as the multipart file field file"},
		{"the zip as a text field", []formPart{plugin, version, config(cfg), {name: "file", body: lists}}, "file: the release zip must be sent as a file part"},
		{"an unknown field", []formPart{plugin, version, config(cfg), {name: "lang", body: "en"}, file(lists)},
			"lang: unknown field (fields: plugin, version, config, debug, requirements, and the zip as the file field file)"},
		{"debug not a boolean", []formPart{plugin, version, config(cfg), {name: "debug", body: "maybe"}, file(lists)},
			`debug: want True or False (also true/false, 1/0; got \"maybe\")`},
		{"an action the binary lacks", []formPart{plugin, version, config(`{"actions":{"train":{},"detect":{},"seg":{"entrypoint":"segment"}}}`), file(lists)},
			"config.actions: the release's binary has no action detect, seg (entrypoint segment); it has train, infer: add the action to the plugin's code and rebuild, or remove it from config.yaml"},
		{"a binary that fails", []formPart{plugin, version, config(cfg), file(script("echo broken >&2; exit 3\n"))},
			"file: the release's binary failed to list its actions (synapse-plugin actions: exit status 3; broken): is its main plugin.Main?"},
		{"a binary that prints something else", []formPart{plugin, version, config(cfg), file(script("echo hello\n"))},
			"file: the release's binary answered synapse-plugin actions with something other than its list of actions"},
		{"a binary that hangs", []formPart{plugin, version, config(cfg), file(script("sleep 60\n"))},
			"file: the release's binary did not answer synapse-plugin actions within 1s"},
	}
	for _, tt := range tests {
		status, b := f.publishForm(t, tt.parts...)
		if status != 400 || !strings.Contains(b, tt.want) {
			t.Errorf("%s: %d %s, want 400 containing %s", tt.name, status, b, tt.want)
		}
		if status, _ := f.call(t, "GET", "/plugin_releases/seg@1.0/", f.admin, ""); status != 404 {
			t.Errorf("%s: the refused release exists (%d)", tt.name, status)
		}
	}
	if zips, _ := filepath.Glob(filepath.Join(dir, "*.zip")); len(zips) != 0 {
		t.Errorf("refused zips were kept: %v", zips)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "work", "*")); len(left) != 0 {
		t.Errorf("refused releases' files were kept: %v", left)
	}

	// A JSON publish has no zip: refused, whatever it says.
	if status, v := f.call(t, "POST", "/plugin_releases/", f.admin, `{"plugin":"seg","version":"0.3.0","config":{"actions":{"train":{}}},"debug":false}`); status != 400 ||
		!strings.Contains(jsonText(v), "a release needs its zip: send multipart/form-data with plugin, version, config, debug, requirements, and the zip as the file field file") {
		t.Errorf("JSON publish = %d %v", status, v)
	}

	// debug as the Python SDK sends it (str(bool)) and the usual spellings.
	for i, d := range []struct {
		text string
		want bool
	}{{"True", true}, {"False", false}, {"true", true}, {"false", false}, {"1", true}, {"0", false}, {"", false}} {
		v := "2." + strconv.Itoa(i)
		status, b := f.publishForm(t, plugin, formPart{name: "version", body: v}, config(cfg), formPart{name: "debug", body: d.text}, file(lists))
		if status != 201 || !strings.Contains(b, `"debug":`+strconv.FormatBool(d.want)) {
			t.Errorf("debug %q: %d %s, want 201 with debug %v", d.text, status, b, d.want)
		}
	}
}

// TestPublishPythonRelease: a zip without the plugin binary whose actions
// all have Python entrypoints is a Python release, taken and kept.
func TestPublishPythonRelease(t *testing.T) {
	dir := t.TempDir()
	f := newAPI(t, func(a *API) { a.Releases = &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")} })
	cfg := `{"code":"py","actions":{"train":{"entrypoint":"plugin.train:TrainAction"},"infer":{"entrypoint":"plugin.infer.InferAction"}}}`
	status, b := f.publishForm(t, formPart{name: "plugin", body: "py"}, formPart{name: "version", body: "0.1.0"}, formPart{name: "config", body: cfg},
		formPart{name: "requirements", body: "numpy"},
		formPart{name: "file", filename: "plugin.zip", body: string(zipOf(t, map[string]string{"config.yaml": "code: py\n", "plugin/train.py": "", "plugin/infer.py": ""}))})
	if status != 201 {
		t.Fatalf("publish: %d %s", status, b)
	}
	if status, b := f.call(t, "GET", "/plugin_releases/py@0.1.0/", f.admin, ""); status != 200 || !strings.Contains(fmt.Sprint(b), "plugin.train:TrainAction") {
		t.Errorf("GET the release: %d %s", status, b)
	}
}

// TestPublishDebugOverProduction: a debug publish replaces a debug
// release of its version, never a published (non-debug) one.
func TestPublishDebugOverProduction(t *testing.T) {
	dir := t.TempDir()
	f := newAPI(t, func(a *API) { a.Releases = &Releases{Dir: dir, WorkDir: filepath.Join(dir, "work")} })
	good := zipWith(t, zipEntry{name: "synapse-plugin", body: "\x7fELF"})
	steps := []struct {
		name, version, debug, config string
		status                       int
		want                         string
	}{
		{"production 2.0", "2.0", "False", `{"actions":{"train":{}},"n":1}`, 201, ""},
		{"debug over production", "2.0", "True", `{"actions":{"train":{}},"n":2}`, 400, "seg@2.0 is a published (non-debug) release; bump version in config.yaml"},
		{"debug 3.0", "3.0", "True", `{"actions":{"train":{}},"n":1}`, 201, ""},
		{"debug over debug", "3.0", "True", `{"actions":{"train":{}},"n":2}`, 201, ""},
	}
	for _, s := range steps {
		status, v := f.publish(t, map[string]string{"plugin": "seg", "version": s.version, "debug": s.debug, "config": s.config}, good)
		if status != s.status || !strings.Contains(jsonText(v), s.want) || s.status == 400 && !strings.Contains(jsonText(v), "already exists") {
			t.Errorf("%s: %d %s, want %d containing %s (and, refused, \"already exists\", which clients match)", s.name, status, jsonText(v), s.status, s.want)
		}
	}
	for version, n := range map[string]float64{"2.0": 1, "3.0": 2} {
		_, v := f.call(t, "GET", "/plugin_releases/seg@"+version+"/", f.admin, "")
		if got := v.(map[string]any)["config"].(map[string]any)["n"]; got != n {
			t.Errorf("seg@%s has config n %v, want %v", version, got, n)
		}
	}
}

// TestPluginCodesAndPages: an all-digit code is refused (the routes would
// read it as an ID), CODE@ with no version is no release, and GET
// /plugins/ pages like GET /plugin_releases/.
func TestPluginCodesAndPages(t *testing.T) {
	f := newAPI(t) // the fixture has yolo 1.0.0
	for _, code := range []string{"b-plug", "c_plug"} {
		if status, v := f.call(t, "POST", "/plugins/", f.admin, `{"code":"`+code+`"}`); status != 201 {
			t.Fatalf("create %s: %d %v", code, status, v)
		}
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"all-digit code", "POST", "/plugins/", `{"code":"123"}`, 400, `code: \"123\" is only digits, which /plugins/123/ would read as a plugin ID: put a letter`},
		{"no version after @", "GET", "/plugin_releases/yolo@/", "", 404, `no release \"yolo@\": the version after @ is missing: want CODE@VERSION`},
		{"page 1 of 3", "GET", "/plugins/?page_size=1", "", 200, `"count":3,"next":"/plugins/?page=2\u0026page_size=1","previous":null,"results":[{"category":"","code":"b-plug"`},
		{"page 3 of 3", "GET", "/plugins/?page_size=1&page=3", "", 200, `"count":3,"next":null,"previous":"/plugins/?page=2\u0026page_size=1","results":[{"category":"","code":"yolo"`},
		{"past the last page", "GET", "/plugins/?page_size=1&page=4", "", 404, "page: no page 4 (3 plugins, 1 a page)"},
		{"bad page size", "GET", "/plugins/?page_size=0", "", 400, "page_size: want a number from 1 to 1000"},
	}
	for _, tt := range tests {
		status, v := f.call(t, tt.method, tt.path, f.admin, tt.body)
		if text := jsonText(v); status != tt.status || !strings.Contains(text, tt.want) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, status, text, tt.status, tt.want)
		}
	}
}
