package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/protocol"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
)

// binaryActions builds the plugin and asks its binary for its actions; a
// Python plugin's come from the Python SDK (pythonActions).
func binaryActions(ctx context.Context, io *IOStreams, cfg *config.Config, verbose bool) ([]protocol.ActionInfo, error) {
	if pyplugin.Is(cfg) {
		return pythonActions(ctx, io, cfg, verbose)
	}
	bin, err := buildPlugin(ctx, io, cfg, build.Options{}, false, verbose)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "actions")
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("list actions of %s: %w\n%s", bin, err, strings.TrimSpace(stderr.String()))
	}
	var infos []protocol.ActionInfo
	if err := json.Unmarshal(stdout.Bytes(), &infos); err != nil {
		return nil, fmt.Errorf("list actions of %s: unexpected output (is its main plugin.Main?): %w", bin, err)
	}
	return infos, nil
}

// pluginActions loads the config at path and pairs its actions with the
// binary's.
func pluginActions(ctx context.Context, io *IOStreams, path string, verbose bool) (*config.Config, []actionRow, error) {
	cfg, err := loadConfig(io, path, true)
	if err != nil {
		return nil, nil, err
	}
	infos, err := binaryActions(ctx, io, cfg, verbose)
	if err != nil {
		return nil, nil, err
	}
	return cfg, reconcile(cfg, infos), nil
}

// actionRow is one action as `plugin actions` reports it.
type actionRow struct {
	Name        string          `json:"name"`
	Entrypoint  string          `json:"entrypoint"`
	Method      string          `json:"method,omitempty"`
	Description string          `json:"description,omitempty"`
	InConfig    bool            `json:"in_config"`
	InBinary    bool            `json:"in_binary"`
	Schema      json.RawMessage `json:"schema,omitempty"`
}

// reconcile pairs the config's actions with the binary's, in config order
// then binary order.
func reconcile(cfg *config.Config, infos []protocol.ActionInfo) []actionRow {
	byName := map[string]protocol.ActionInfo{}
	for _, in := range infos {
		byName[in.Name] = in
	}
	used := map[string]bool{}
	var rows []actionRow
	for _, a := range cfg.Actions {
		info, ok := byName[a.Entrypoint]
		used[a.Entrypoint] = true
		desc := a.Description
		if desc == "" {
			desc = info.Description
		}
		rows = append(rows, actionRow{Name: a.Name, Entrypoint: a.Entrypoint, Method: a.Method, Description: desc, InConfig: true, InBinary: ok, Schema: info.Schema})
	}
	for _, in := range infos {
		if !used[in.Name] {
			rows = append(rows, actionRow{Name: in.Name, Entrypoint: in.Name, Description: in.Description, InBinary: true, Schema: in.Schema})
		}
	}
	return rows
}

func newActionsCmd(io *IOStreams, g *globals) *cobra.Command {
	var path, out string
	cmd := &cobra.Command{
		Use:   "actions",
		Short: "List the plugin's actions",
		Long:  "List the actions of the plugin in --path: those config.yaml declares and those its binary provides,\nreporting any mismatch.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := runflags.CheckOutput(out); err != nil {
				return err
			}
			cfg, rows, err := pluginActions(cmd.Context(), io, path, g.verbose)
			if err != nil {
				return err
			}
			if out == "json" {
				return output.Result(io.Out, rows, output.IsTerminal(io.Out))
			}
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ACTION\tMETHOD\tDESCRIPTION")
			for _, r := range rows {
				method := r.Method
				if method == "" {
					method = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, method, r.Description)
			}
			_ = tw.Flush()
			for _, r := range rows {
				switch {
				case !r.InBinary:
					fmt.Fprintf(io.ErrOut, "Warning: %s lists action %q (entrypoint %q) but the plugin binary does not provide it\n", cfg.Path, r.Name, r.Entrypoint)
				case !r.InConfig:
					fmt.Fprintf(io.ErrOut, "Warning: the plugin binary provides action %q but %s does not list it; run `synapse plugin update-config`\n", r.Name, cfg.Path)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "path", ".", "plugin directory or config.yaml path")
	cmd.Flags().StringVarP(&out, "output", "o", "text", "text or json")
	return cmd
}

func newSchemaCmd(io *IOStreams, g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "schema ACTION",
		Short: "Print the params JSON Schema of an action",
		Args:  exactArgs(1, "one argument, the action name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, rows, err := pluginActions(cmd.Context(), io, path, g.verbose)
			if err != nil {
				return err
			}
			var names []string
			for _, r := range rows {
				if r.Name == args[0] {
					if !r.InBinary {
						return fmt.Errorf("schema of %q: the plugin binary does not provide its entrypoint %q", r.Name, r.Entrypoint)
					}
					var v any
					if err := json.Unmarshal(r.Schema, &v); err != nil {
						return fmt.Errorf("schema of %q: %w", r.Name, err)
					}
					return output.Result(io.Out, v, true)
				}
				names = append(names, r.Name)
			}
			return synapse.NotFound(args[0], names)
		},
	}
	cmd.Flags().StringVar(&path, "path", ".", "plugin directory or config.yaml path")
	return cmd
}

func newUpdateConfigCmd(io *IOStreams, g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "update-config",
		Short: "Sync config.yaml's actions with the plugin binary",
		Long: `Add the actions the plugin binary provides to config.yaml (with their descriptions) and report the
actions config.yaml lists that the binary lacks. Comments and key order are kept.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(io, path, true)
			if err != nil {
				return err
			}
			if pyplugin.Is(cfg) {
				return &runflags.UsageError{Flag: "path", Message: cfg.Dir + " is a Python plugin: its config.yaml is synced from its code by the Python SDK (pip install synapse-sdk, then `synapse plugin update-config` of the Python CLI)"}
			}
			infos, err := binaryActions(cmd.Context(), io, cfg, g.verbose)
			if err != nil {
				return err
			}
			provided := make([]config.ActionInfo, len(infos))
			for i, in := range infos {
				provided[i] = config.ActionInfo{Name: in.Name, Description: in.Description}
			}
			res, err := config.SyncActions(cfg.Path, provided)
			if err != nil {
				return err
			}
			if len(res.Added)+len(res.Updated) == 0 {
				fmt.Fprintf(io.Out, "%s is up to date.\n", cfg.Path)
			} else {
				fmt.Fprintf(io.Out, "Updated %s:\n", cfg.Path)
				for _, a := range res.Added {
					fmt.Fprintf(io.Out, "  + %s (added)\n", a)
				}
				for _, a := range res.Updated {
					fmt.Fprintf(io.Out, "  ~ %s (description added)\n", a)
				}
			}
			for _, a := range res.Extra {
				fmt.Fprintf(io.ErrOut, "Warning: %s lists action %q but the plugin binary does not provide its entrypoint; remove it or add the action to the binary\n", cfg.Path, a)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "path", ".", "plugin directory or config.yaml path")
	return cmd
}
