package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/worker"
	"github.com/synapse-sdk/synapse-go/plugin"
)

// File is one file of a release package.
type File struct {
	Name string `json:"name"` // slash-separated path in the package
	Size int64  `json:"size"` // bytes before compression
}

// Package is a plugin packed as a release: the package job mode builds (a
// static linux plugin binary, synapse-plugin, and the plugin directory's
// files minus .synapseignore/.gitignore, at most 100 MiB zipped), with
// config.yaml as the JSON the backend takes. A Python plugin's package has
// no binary: the plugin directory's files at the zip's root, as the Python
// SDK's `synapse plugin publish` packs them.
type Package struct {
	Plugin  string          `json:"plugin"`           // config.yaml code
	Version string          `json:"version"`          // config.yaml version: the release's
	Python  bool            `json:"python,omitempty"` // a Python plugin's release (no binary; the agents run the Python SDK's worker)
	Arch    string          `json:"arch,omitempty"`   // the binary's GOARCH: amd64 or arm64 ("" for a Python plugin)
	Files   []File          `json:"files"`            // what the zip holds, sorted by name (the binary included)
	Size    int64           `json:"size"`             // the zip's size in bytes
	Config  json.RawMessage `json:"-"`                // config.yaml as a JSON object, as uploaded
	Data    []byte          `json:"-"`                // the zip
}

// Pack builds the release package of p for linux/arch ("" is amd64) on
// this machine, without any network call (what `synapse plugin publish
// --dry-run` lists). The binary comes from the build cache when the plugin
// is unchanged.
//
// A Python plugin (config.yaml and Python code, no Go: detected as
// `synapse plugin run` does) is packed as the Python SDK's `synapse plugin
// publish` packs it: no binary and nothing built (arch is not used), the
// directory's files at the root, minus the Python SDK's default excludes
// (__pycache__, *.pyc, .venv, venv, env, dist, build, *.log, ...:
// pack.PythonExcludes) as well as .synapseignore/.gitignore, which can
// bring them back ("!build/"). The agents run such a release with the
// Python SDK's worker.
//
// Errors: an *OptionError for another arch; config.yaml that cannot be
// read as JSON; a failed build (*build.Error); a package over the limit
// (a *pack.TooLargeError naming the largest files; exit code 2).
func Pack(ctx context.Context, p *plugin.Plugin, arch string) (*Package, error) {
	switch arch {
	case "":
		arch = "amd64"
	case "amd64", "arm64":
	default:
		return nil, &OptionError{Field: "Arch", Err: fmt.Errorf("must be amd64 or arm64 (got %q)", arch)}
	}
	cfg, err := configJSON(p.Path())
	if err != nil {
		return nil, err
	}
	if pyplugin.Is(p.Config()) {
		pkg, err := pack.Build(pack.Options{Dir: p.Dir(), Exclude: pack.PythonExcludes, LimitOf: "a Synapse backend's release"})
		if err != nil {
			return nil, err
		}
		return newPackage(p, "", cfg, pkg), nil
	}
	built, err := build.Build(ctx, build.Options{Dir: p.Dir(), GOOS: "linux", GOARCH: arch, Static: true, Trim: true})
	if err != nil {
		return nil, err
	}
	cache := pack.Cache{Dir: filepath.Join(built.CacheDir, pack.CacheSubdir)}
	pkg, _, err := cache.Build(pack.Options{Dir: p.Dir(), Binary: built.Binary, BinaryName: worker.BinaryName, LimitOf: "a Synapse backend's release"}, built.Key)
	if err != nil {
		return nil, err
	}
	if _, err := pkg.Load(); err != nil {
		return nil, err
	}
	return newPackage(p, arch, cfg, pkg), nil
}

// newPackage is the release package of p built as pkg; arch is "" for a
// Python plugin's.
func newPackage(p *plugin.Plugin, arch string, cfg json.RawMessage, pkg *pack.Package) *Package {
	out := &Package{Plugin: p.Code(), Version: p.Config().Version, Python: arch == "", Arch: arch, Size: int64(len(pkg.Data)), Config: cfg, Data: pkg.Data}
	for _, f := range pkg.Files {
		out.Files = append(out.Files, File{Name: f.Path, Size: f.Size})
	}
	return out
}

// configJSON reads config.yaml as a JSON object, every key kept (as the
// Python SDK sends it).
func configJSON(path string) (json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	b, err := json.Marshal(jsonable(doc))
	if err != nil {
		return nil, fmt.Errorf("read config %s as JSON: %w", path, err)
	}
	return b, nil
}

// jsonable turns YAML values into values encoding/json takes: maps with
// keys other than strings get their keys as text.
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = jsonable(x)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = jsonable(x)
		}
		return v
	}
	return v
}

// PublishOptions configures Publish.
type PublishOptions struct {
	Backend
	// Debug publishes a debug release: it replaces a release of the same
	// version instead of being refused, and runs only with Options.Debug
	// (or its version named).
	Debug bool
	// Arch is the GOARCH of the binary: amd64 (default) or arm64, that of
	// the agents' machines. A Python plugin's release has no binary and
	// does not use it.
	Arch string
}

// String shows the options with the token masked (see Backend.String).
func (o PublishOptions) String() string {
	return fmt.Sprintf("remote.PublishOptions{Backend: %s, Debug: %t, Arch: %q}", o.Backend, o.Debug, o.Arch)
}

// GoString is String, so %#v masks the token too.
func (o PublishOptions) GoString() string { return o.String() }

// Release is a published plugin release, as the backend answers
// POST /plugin_releases/.
type Release struct {
	ID       int64     `json:"id"`                 // the backend's ID
	Plugin   string    `json:"plugin"`             // the plugin's code
	Version  string    `json:"version"`            // such as 1.0.0
	Debug    bool      `json:"debug"`              // a debug release
	Checksum string    `json:"checksum,omitempty"` // SHA-256 of the zip, hex
	Size     int64     `json:"size,omitempty"`     // the zip's size in bytes
	Created  time.Time `json:"created,omitzero"`   // zero when the backend gives none
	// Package is what was uploaded.
	Package *Package `json:"-"`
}

// ErrVersionExists matches Publish's error for a version the plugin
// already has on the backend (a *VersionExistsError).
var ErrVersionExists = errors.New("the release version already exists")

// VersionExistsError is Publish's error for a version that exists: bump
// config.yaml version, or, when the existing release is a debug one,
// publish with Debug to replace it. synapse server never lets a debug
// publish replace a published (non-debug) release (Published is true
// then: the backend said so).
type VersionExistsError struct {
	Plugin, Version string
	Published       bool  // the existing release is a published (non-debug) one
	Err             error // the backend's answer (a *backend.HTTPError matching backend.ErrVersionExists)
}

// Error implements error.
func (e *VersionExistsError) Error() string {
	if e.Published {
		return fmt.Sprintf("publish plugin %s: release %s already exists and is a published (non-debug) release, which a debug publish does not replace: bump `version` in config.yaml", e.Plugin, e.Version)
	}
	return fmt.Sprintf("publish plugin %s: release %s already exists: bump `version` in config.yaml, or publish with --debug to replace it", e.Plugin, e.Version)
}

// Is matches ErrVersionExists.
func (e *VersionExistsError) Is(target error) bool { return target == ErrVersionExists }

// Unwrap returns the backend's answer.
func (e *VersionExistsError) Unwrap() error { return e.Err }

// Publish packs p (Pack) and uploads it as a release of version
// config.yaml version (POST /plugin_releases/, multipart, as the Python
// SDK sends it). It asks the backend for the plugin first (GET
// /plugins/{code}/, so a wrong host or token fails before the build); a
// plugin the backend does not have yet is created (POST /plugins/ from
// config.yaml's code, name, category and description).
//
// Errors: Pack's; a *VersionExistsError (ErrVersionExists) for a version
// that exists, unless Debug; the backend's others as internal/backend
// types (*backend.UncertainError when the answer was lost: the release may
// exist).
func Publish(ctx context.Context, p *plugin.Plugin, opts PublishOptions) (*Release, error) {
	c, err := opts.client()
	if err != nil {
		return nil, err
	}
	// The backend is asked first, so a wrong host or token fails before
	// the build.
	_, err = c.Plugin(ctx, p.Code())
	missing := errors.Is(err, backend.ErrNotFound)
	if err != nil && !missing {
		return nil, err
	}
	pkg, err := Pack(ctx, p, opts.Arch)
	if err != nil {
		return nil, err
	}
	if missing {
		cfg := p.Config()
		_, cerr := c.CreatePlugin(ctx, backend.Plugin{Code: cfg.Code, Name: cfg.Name, Category: cfg.Category, Description: cfg.Description})
		if cerr != nil {
			// Created meanwhile by another publish: fine.
			if _, gerr := c.Plugin(ctx, pkg.Plugin); gerr != nil {
				return nil, cerr
			}
		}
	}
	rel, err := c.PublishRelease(ctx, backend.ReleaseUpload{Plugin: pkg.Plugin, Version: pkg.Version, Config: pkg.Config, Debug: opts.Debug, Zip: pkg.Data})
	if errors.Is(err, backend.ErrVersionExists) {
		return nil, &VersionExistsError{Plugin: pkg.Plugin, Version: pkg.Version, Err: err,
			Published: opts.Debug && strings.Contains(err.Error(), "published (non-debug) release")}
	}
	if err != nil {
		return nil, err
	}
	return &Release{ID: rel.ID, Plugin: rel.Plugin, Version: rel.Version, Debug: rel.Debug, Checksum: rel.Checksum,
		Size: rel.Size, Created: rel.Created, Package: pkg}, nil
}
