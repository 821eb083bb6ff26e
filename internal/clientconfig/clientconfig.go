// Package clientconfig reads and writes the synapse CLI's configuration
// file, ~/.synapse/config.json, as the Python CLI (synapse-sdk 2026.2.17)
// does, and resolves the backend host and credentials a command uses.
//
// The file is a JSON object with the keys "host", "access_token",
// "user_token", "tenant" and "agent" {"id", "name", "url", "token"}; keys
// this package does not know are kept as they are. It is written
// atomically (a temporary file renamed over it) with mode 0600, its
// directory created 0700. SYNAPSE_CONFIG_FILE names another file.
//
// Resolution (Resolve), highest first: flags (--host, -t/--token), the
// environment (SYNAPSE_HOST, SYNAPSE_ACCESS_TOKEN, and the user-token pair
// SYNAPSE_PLUGIN_RUN_USER_TOKEN + SYNAPSE_PLUGIN_RUN_TENANT), the file,
// and for the host DefaultHost.
package clientconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultHost is the Synapse backend used when no flag, environment
// variable or config file names one (as the Python CLI).
const DefaultHost = "https://api.synapse.sh"

// Environment variables read by Path and Resolve.
const (
	EnvFile      = "SYNAPSE_CONFIG_FILE"           // the config file instead of ~/.synapse/config.json
	EnvHost      = "SYNAPSE_HOST"                  // the backend host
	EnvToken     = "SYNAPSE_ACCESS_TOKEN"          // an access token
	EnvUserToken = "SYNAPSE_PLUGIN_RUN_USER_TOKEN" // a DRF user token, with EnvTenant
	EnvTenant    = "SYNAPSE_PLUGIN_RUN_TENANT"     // the tenant code of the user token
)

// Keys of the config file.
const (
	keyHost        = "host"
	keyAccessToken = "access_token"
	keyUserToken   = "user_token"
	keyTenant      = "tenant"
	keyAgent       = "agent"
)

// Agent is the agent selected with `synapse agent select`, the file's
// "agent" object: {"id", "name", "url", "token"} (the token is a secret).
type Agent struct {
	ID    int64  `json:"id"`              // the backend's agent ID, what a run is sent to
	Name  string `json:"name,omitempty"`  // its name
	URL   string `json:"url,omitempty"`   // its address, when the backend shows one
	Token string `json:"token,omitempty"` // its own token, when the backend shows one; never printed
}

// File is the config file's contents. Fields of the keys it does not know
// are kept and written back unchanged.
type File struct {
	// Path is where the file is (whether it exists or not).
	Path string
	// Host is "host": the backend URL; "" when unset.
	Host string
	// AccessToken is "access_token"; "" when unset.
	AccessToken string
	// UserToken and Tenant are "user_token" and "tenant", the DRF user
	// token pair; "" when unset.
	UserToken, Tenant string
	// Agent is "agent"; nil when none is selected.
	Agent *Agent

	other map[string]json.RawMessage // every key as read, for the ones not above
}

// FileError is a config file that cannot be read or written: its path and
// what is wrong.
type FileError struct {
	Path   string // the file
	Op     string // "read" or "write"
	Reason string // what is wrong, with the key or line when known
	Err    error  // the cause, if any
}

// Error implements error.
func (e *FileError) Error() string {
	return fmt.Sprintf("%s config file %s: %s", e.Op, e.Path, e.Reason)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// ExitCode makes a file that cannot be read a usage error (2), as a bad
// config.yaml is; a failed write is a failure (1).
func (e *FileError) ExitCode() int {
	if e.Op == "read" {
		return 2
	}
	return 1
}

// Path returns the config file's path: $SYNAPSE_CONFIG_FILE when set, else
// ~/.synapse/config.json. An error means there is no home directory.
func Path() (string, error) {
	if p := os.Getenv(EnvFile); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the config file: %w: set %s or HOME", err, EnvFile)
	}
	return filepath.Join(home, ".synapse", "config.json"), nil
}

// Load reads the config file at path. A file that does not exist is an
// empty File (nothing is created). A file that is not a JSON object, or
// whose known keys have the wrong type, is a *FileError naming the line or
// the key.
func Load(path string) (*File, error) {
	f := &File{Path: path, other: map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, &FileError{Path: path, Op: "read", Reason: err.Error(), Err: err}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.other); err != nil {
		reason := "it is not a JSON object"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			reason = fmt.Sprintf("line %d: %v", line, se)
		}
		return nil, &FileError{Path: path, Op: "read", Reason: reason + ": fix it, or remove it and run synapse login", Err: err}
	}
	if f.other == nil {
		return nil, &FileError{Path: path, Op: "read", Reason: "it is not a JSON object (got null): fix it, or remove it and run synapse login"}
	}
	str := func(key string, dst *string) error {
		raw, ok := f.other[key]
		if !ok || string(raw) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return &FileError{Path: path, Op: "read", Reason: fmt.Sprintf("%q: want a string", key)}
		}
		*dst = strings.TrimSpace(*dst)
		return nil
	}
	for key, dst := range map[string]*string{keyHost: &f.Host, keyAccessToken: &f.AccessToken, keyUserToken: &f.UserToken, keyTenant: &f.Tenant} {
		if err := str(key, dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := f.other[keyAgent]; ok && string(raw) != "null" {
		var a Agent
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, &FileError{Path: path, Op: "read", Reason: fmt.Sprintf("%q: want an object {\"id\": NUMBER, \"name\", \"url\", \"token\"}: run synapse agent select again", keyAgent)}
		}
		if a.ID != 0 {
			f.Agent = &a
		}
	}
	return f, nil
}

// Save writes the file atomically: a temporary file in the same directory,
// mode 0600, renamed over Path (through a symbolic link to where it
// points). A missing directory is created with mode 0700; an existing one
// is left as it is. Keys Load did not know are written back unchanged.
func (f *File) Save() error {
	path := f.Path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	bad := func(err error) error {
		return &FileError{Path: f.Path, Op: "write", Reason: err.Error(), Err: err}
	}
	out := map[string]any{}
	for k, v := range f.other {
		out[k] = v
	}
	set := func(key, v string) {
		if v == "" {
			delete(out, key)
		} else {
			out[key] = v
		}
	}
	set(keyHost, f.Host)
	set(keyAccessToken, f.AccessToken)
	set(keyUserToken, f.UserToken)
	set(keyTenant, f.Tenant)
	if f.Agent == nil {
		delete(out, keyAgent)
	} else {
		out[keyAgent] = f.Agent
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return bad(err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return bad(err)
	}
	tmp, err := os.CreateTemp(dir, ".config.json.*")
	if err != nil {
		return bad(err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return bad(err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return bad(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return bad(err)
	}
	if err := tmp.Close(); err != nil {
		return bad(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return bad(err)
	}
	f.other = map[string]json.RawMessage{}
	for k, v := range out {
		raw, _ := json.Marshal(v)
		f.other[k] = raw
	}
	return nil
}

// Logout forgets the credentials: host is kept, access_token, user_token
// and tenant are removed (the agent, which belongs to them, too). It
// reports whether there was anything to remove. Call Save to write it.
func (f *File) Logout() bool {
	had := f.AccessToken != "" || f.UserToken != "" || f.Tenant != "" || f.Agent != nil
	f.AccessToken, f.UserToken, f.Tenant, f.Agent = "", "", "", nil
	return had
}
