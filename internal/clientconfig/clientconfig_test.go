package clientconfig

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSaveKeepsUnknownKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".synapse")
	path := filepath.Join(dir, "config.json")
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Host != "" || f.Agent != nil {
		t.Fatalf("a missing file loads empty, got %+v", f)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load created %s", dir)
	}
	f.Host, f.AccessToken = "http://127.0.0.1:8080", "syn_abc"
	f.Agent = &Agent{ID: 3, Name: "gpu", URL: "http://agent", Token: "agent-secret"}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
	// Another tool's keys survive a save.
	var m map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["mcp"] = map[string]any{"servers": []any{"a"}}
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Agent == nil || f.Agent.ID != 3 || f.Agent.Token != "agent-secret" || f.AccessToken != "syn_abc" {
		t.Fatalf("read back %+v agent %+v", f, f.Agent)
	}
	if !f.Logout() {
		t.Fatal("Logout found nothing to remove")
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	m = nil
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["mcp"]; !ok {
		t.Errorf("the unknown key was dropped: %s", b)
	}
	for _, k := range []string{"access_token", "agent", "user_token", "tenant"} {
		if _, ok := m[k]; ok {
			t.Errorf("logout kept %q: %s", k, b)
		}
	}
	if m["host"] != "http://127.0.0.1:8080" {
		t.Errorf("logout dropped the host: %s", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestSaveThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	if err := os.WriteFile(real, []byte(`{"host":"http://a"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	f, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	f.AccessToken = "t"
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symbolic link was replaced: %v", err)
	}
	b, _ := os.ReadFile(real)
	if !strings.Contains(string(b), `"access_token": "t"`) {
		t.Fatalf("the target was not written: %s", b)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"syntax", "{\n  \"host\": \"x\",\n  oops\n}", "line 3: "},
		{"not object", `["a"]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"host type", `{"host": 1}`, `"host": want a string`},
		{"agent type", `{"agent": "gpu"}`, `"agent": want an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			var fe *FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want a FileError naming %s and %q", err, path, tt.want)
			}
		})
	}
}

func TestPath(t *testing.T) {
	t.Setenv(EnvFile, "/x/y.json")
	if p, err := Path(); err != nil || p != "/x/y.json" {
		t.Fatalf("Path() = %q, %v", p, err)
	}
	t.Setenv(EnvFile, "")
	t.Setenv("HOME", "/home/u")
	if p, err := Path(); err != nil || p != "/home/u/.synapse/config.json" {
		t.Fatalf("Path() = %q, %v", p, err)
	}
}

func TestResolve(t *testing.T) {
	file := &File{Path: "/cfg.json", Host: "http://file", AccessToken: "file-at", Tenant: "file-tenant", Agent: &Agent{ID: 2}}
	fileUser := &File{Path: "/cfg.json", AccessToken: "file-at", UserToken: "file-ut"}
	tests := []struct {
		name  string
		flags Flags
		env   map[string]string
		file  *File
		want  Credentials
	}{
		{"nothing", Flags{}, nil, nil, Credentials{Host: DefaultHost, HostFrom: "default"}},
		{"file", Flags{}, nil, file, Credentials{Host: "http://file", HostFrom: "/cfg.json", Token: "file-at", TokenFrom: "/cfg.json", Tenant: "file-tenant", Agent: file.Agent}},
		{"file user token wins over its access token", Flags{}, nil, fileUser, Credentials{Host: DefaultHost, HostFrom: "default", Token: "file-ut", UserToken: true, TokenFrom: "/cfg.json"}},
		{"env over file", Flags{}, map[string]string{EnvHost: "http://env", EnvToken: "env-at", EnvTenant: "env-tenant"}, file,
			Credentials{Host: "http://env", HostFrom: EnvHost, Token: "env-at", TokenFrom: EnvToken, Tenant: "env-tenant", Agent: file.Agent}},
		{"env user token over env access token", Flags{}, map[string]string{EnvToken: "env-at", EnvUserToken: "env-ut"}, nil,
			Credentials{Host: DefaultHost, HostFrom: "default", Token: "env-ut", UserToken: true, TokenFrom: EnvUserToken}},
		{"env access token over file user token", Flags{}, map[string]string{EnvToken: "env-at"}, fileUser,
			Credentials{Host: DefaultHost, HostFrom: "default", Token: "env-at", TokenFrom: EnvToken}},
		{"flags over all", Flags{Host: " http://flag ", Token: "flag-at"}, map[string]string{EnvHost: "http://env", EnvUserToken: "env-ut"}, file,
			Credentials{Host: "http://flag", HostFrom: "--host", Token: "flag-at", TokenFrom: "--token", Tenant: "file-tenant", Agent: file.Agent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.flags, func(k string) string { return tt.env[k] }, tt.file)
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDescribeMasks(t *testing.T) {
	c := Credentials{Host: "http://h", HostFrom: "--host", Token: "syn_secretsecretsecret", TokenFrom: "--token"}
	got := c.Describe(func(string) string { return "syn_****" })
	if strings.Contains(got, "secret") || !strings.Contains(got, "syn_****") {
		t.Fatalf("Describe = %q", got)
	}
}
