package cli

import (
	"context"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/internal/server"
	"github.com/synapse-sdk/synapse-go/internal/store"
)

// serverFlags are the flags that say where the server keeps its data.
type serverFlags struct {
	dataDir, db string
}

func (f *serverFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", server.DefaultDataDir(), "where the server keeps its SQLite database, releases and their files")
	cmd.PersistentFlags().StringVar(&f.db, "db", "", "a PostgreSQL URL (postgres://…) to use instead of SQLite in --data-dir")
}

func newServerCmd(io *IOStreams) *cobra.Command {
	var sf serverFlags
	var addr string
	var agents []string
	var maxJobs int
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a self-hosted, Synapse-compatible backend (preview)",
		Long: `synapse server speaks the Synapse backend's HTTP API and runs published plugin releases on its
agents. Preview: health, agents, plugins, releases (publish), run, jobs (read, report, stop), console logs
and their SSE stream, and structured logs work with process agents; Ray agents, the plugin binary reporting
to the server and the dashboard come next.

On its first start it creates an admin access token and prints it once. Ctrl-C or SIGTERM stops it:
jobs still running are stopped.`,
		Example: `  synapse server
  synapse server --addr 0.0.0.0:8080 --agent gpu=process --max-jobs 2
  synapse server --db postgres://synapse@db.internal/synapse`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := server.Config{Addr: addr, DataDir: sf.dataDir, DB: sf.db, MaxJobs: maxJobs}
			if maxJobs < 1 {
				return &runflags.UsageError{Flag: "max-jobs", Message: fmt.Sprintf("want at least 1 (got %d)", maxJobs)}
			}
			for _, a := range agents {
				name, kind, _ := strings.Cut(a, "=")
				switch {
				case !validAgentName(name):
					return &runflags.UsageError{Flag: "agent", Message: fmt.Sprintf("want NAME=process with a name of letters, digits, '-' or '_' (got %q)", a)}
				case kind == "process":
				case strings.HasPrefix(kind, "ray:"):
					return &runflags.UsageError{Flag: "agent", Message: "Ray agents are not available yet in this preview; use NAME=process"}
				default:
					return &runflags.UsageError{Flag: "agent", Message: fmt.Sprintf("want NAME=process (got %q)", a)}
				}
				cfg.Agents = append(cfg.Agents, name)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return server.Serve(ctx, cfg, io.ErrOut)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringArrayVar(&agents, "agent", nil, "an agent, NAME=process (repeatable; default one process agent, local)")
	f.IntVar(&maxJobs, "max-jobs", 4, "jobs each agent runs at once; the others wait")
	cmd.AddCommand(newServerTokenCmd(io, &sf))
	return cmd
}

func validAgentName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func newServerTokenCmd(io *IOStreams, sf *serverFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the server's access tokens",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	open := func(ctx context.Context) (*store.Store, error) {
		return server.OpenStore(ctx, server.Config{DataDir: sf.dataDir, DB: sf.db})
	}
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin access token and print it (once: only its hash is kept)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			secret, t, err := st.CreateToken(cmd.Context(), name, store.TokenAdmin, "")
			if err != nil {
				return err
			}
			fmt.Fprintln(io.Out, secret)
			fmt.Fprintf(io.ErrOut, "Created token %s (%s); it is shown only this once.\n", t.ID, t.Name)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "admin", "a name for people")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := st.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tKIND\tJOB\tCREATED\tREVOKED")
			for _, t := range toks {
				revoked := "-"
				if t.RevokedAt != nil {
					revoked = t.RevokedAt.Format(time.RFC3339)
				}
				job := t.JobID
				if job == "" {
					job = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Kind, job, t.CreatedAt.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (from token list)",
		Args:  exactArgs(1, "a token ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "Revoked token %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
