package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/synapse-sdk/synapse-go/internal/backend"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/plugin"
	"github.com/synapse-sdk/synapse-go/remote"
)

func newPublishCmd(io *IOStreams, g *globals) *cobra.Command {
	var (
		bf                 backendFlags
		path, configPath   string
		dryRun, debug, yes bool
		arch               string
	)
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish the plugin as a release on a Synapse backend (for --mode remote)",
		Long: `synapse plugin publish packs the plugin as job mode does (a static linux plugin binary and the plugin's
files, minus .synapseignore/.gitignore, at most 100 MiB zipped) and uploads it as a release of config.yaml
version (POST /plugin_releases/). The plugin is created on the backend on its first publish.

A Python plugin (synapse-sdk: config.yaml and Python code, no Go) is packed as the Python SDK's own
synapse plugin publish packs it: its files with no binary, minus the Python SDK's default excludes
(__pycache__, .venv, venv, dist, build, *.log, ...) and .synapseignore/.gitignore; the agents run it
with the Python SDK's worker.

A version that already exists is refused: bump version in config.yaml, or publish with --debug, which
replaces it (a debug release runs with --mode remote --debug, the default). --dry-run lists the files and
the size and sends nothing. On a terminal it asks before uploading, unless -y.`,
		Example: `  synapse plugin publish --dry-run
  synapse plugin publish --path ./my-plugin -y
  synapse plugin publish --debug --host http://127.0.0.1:8080`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if arch != "amd64" && arch != "arm64" {
				return &runflags.UsageError{Flag: "arch", Message: fmt.Sprintf("must be amd64 or arm64 (got %q)", arch)}
			}
			from := path
			if configPath != "" {
				if cmd.Flags().Changed("path") {
					if d, err := filepath.Abs(filepath.Dir(configPath)); err != nil || !sameDir(d, path) {
						return &runflags.UsageError{Flag: "config", Message: fmt.Sprintf("%s is not in the plugin directory %s: the release is the directory of its config file; give one of --path and --config", configPath, path)}
					}
				}
				from = configPath
			}
			cfg, err := loadConfig(io, from, true)
			if err != nil {
				return err
			}
			p := plugin.FromConfig(cfg)
			python := pyplugin.Is(cfg)
			if python && cmd.Flags().Changed("arch") {
				return &runflags.UsageError{Flag: "arch", Message: cfg.Dir + " is a Python plugin: its release has no binary, and the agents run it with the Python SDK on their own machines; leave --arch out"}
			}
			if python {
				for _, a := range cfg.ActionNames() {
					if err := pyplugin.CheckEntrypoint(cfg, a); err != nil {
						return err // a release that could never run this action
					}
				}
			}
			creds, _, err := credentials(bf)
			if err != nil {
				return err
			}
			var b remote.Backend
			replaces := false // a debug release of this version is there to replace
			if dryRun {
				if err := backend.CheckHost(creds.Host); err != nil {
					return fmt.Errorf("%w (host from %s)", err, creds.HostFrom)
				}
			} else {
				if b, err = remoteBackend(creds); err != nil {
					return err
				}
				// The host and the token are checked before the build,
				// which can take minutes: GET /agents/ answers on every
				// backend, to any valid token.
				client, err := backendClient(creds)
				if err != nil {
					return err
				}
				if _, err := client.Agents(ctx); err != nil {
					return fmt.Errorf("publish: %w", err)
				}
				if debug {
					rel, err := client.Release(ctx, p.Code(), cfg.Version)
					replaces = err == nil && rel.Debug
				}
			}
			stop := func() {}
			if io.IsTerminal() {
				stop = spin(io.ErrOut, map[bool]string{false: "Building and packing the plugin", true: "Packing the Python plugin"}[python])
			}
			var pkg *remote.Package
			err = interruptible(ctx, func(ctx context.Context) (err error) {
				pkg, err = remote.Pack(ctx, p, arch)
				return err
			})
			stop()
			if err != nil {
				return err
			}
			target := "linux/" + pkg.Arch
			if pkg.Python {
				target = "Python"
			}
			what := fmt.Sprintf("%s %s (%s): %d files, %s zipped", pkg.Plugin, pkg.Version, target, len(pkg.Files), pack.FormatSize(pkg.Size))
			if dryRun {
				tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
				for _, f := range pkg.Files {
					fmt.Fprintf(tw, "%s\t  %s\n", pack.FormatSize(f.Size), f.Name)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(io.ErrOut, "Dry run: would publish %s to %s; nothing was sent.\n", what, backend.RedactHost(creds.Host))
				return nil
			}
			if !yes && io.IsTerminal() {
				fmt.Fprintf(io.ErrOut, "Publish %s to %s? [Y/n] ", what, backend.RedactHost(creds.Host))
				line, err := readLine(io.In)
				if err != nil {
					return fmt.Errorf("publish: read the answer: %w", err)
				}
				if a := strings.ToLower(strings.TrimSpace(line)); a != "" && a != "y" && a != "yes" {
					fmt.Fprintln(io.ErrOut, "Cancelled; nothing was sent.")
					return nil
				}
			} else {
				fmt.Fprintf(io.ErrOut, "Publishing %s to %s\n", what, backend.RedactHost(creds.Host))
			}
			if io.IsTerminal() {
				stop = spin(io.ErrOut, "Uploading")
			}
			var rel *remote.Release
			err = interruptible(ctx, func(ctx context.Context) (err error) {
				rel, err = remote.Publish(ctx, p, remote.PublishOptions{Backend: b, Debug: debug, Arch: arch})
				return err
			})
			stop()
			if err != nil {
				return err
			}
			kind := "release"
			if rel.Debug {
				kind = "debug release"
			}
			if rel.Debug && replaces {
				fmt.Fprintf(io.ErrOut, "Replaced debug release %s of %s (ID %d) on %s.\n", rel.Version, rel.Plugin, rel.ID, backend.RedactHost(creds.Host))
			} else {
				fmt.Fprintf(io.ErrOut, "Published %s %s of %s (ID %d) to %s.\n", kind, rel.Version, rel.Plugin, rel.ID, backend.RedactHost(creds.Host))
			}
			if g.verbose && rel.Checksum != "" {
				fmt.Fprintf(io.ErrOut, "checksum: sha256:%s\n", rel.Checksum)
			}
			if actions := p.Actions(); len(actions) > 0 {
				fmt.Fprintf(io.ErrOut, "Run it: synapse plugin run %s --mode remote%s\n", actions[0], pathFlag(cfg.Dir))
			}
			return nil
		},
	}
	f := cmd.Flags()
	bf.register(f)
	f.StringVar(&path, "path", ".", "plugin directory, or a config.yaml path")
	f.StringVarP(&configPath, "config", "c", "", "the plugin's config.yaml (its directory is the plugin directory)")
	f.BoolVar(&dryRun, "dry-run", false, "list the files and the size; send nothing")
	f.BoolVar(&debug, "debug", false, "publish a debug release: replaces a release of the same version")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask before uploading")
	f.StringVar(&arch, "arch", "amd64", "the agents' CPU architecture (GOARCH of the plugin binary): amd64 or arm64")
	return cmd
}

// sameDir reports whether dir is the plugin directory given as path (a
// directory, or a config file in it).
func sameDir(dir, path string) bool {
	p, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	return p == dir || filepath.Dir(p) == dir
}

// pathFlag is the --path flag that names the plugin directory dir from
// the current directory: "" when it is the current directory, else
// " --path DIR" (relative when below it, quoted when it needs quotes).
func pathFlag(dir string) string {
	wd, err := os.Getwd()
	if err != nil {
		return " --path " + shellQuote(dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	if abs == filepath.Clean(wd) {
		return ""
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
		abs = rel
	}
	return " --path " + shellQuote(abs)
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and -_./:@+=,.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
