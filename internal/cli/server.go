package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	var publicURL string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a self-hosted, Synapse-compatible backend",
		Long: `synapse server speaks the Synapse backend's HTTP API and runs published plugin releases on its
agents: process agents run them as processes on this machine, Ray agents as Ray jobs on a cluster.
The store is SQLite in --data-dir, or PostgreSQL with --db. See docs/server-api.md.

On its first start it creates an admin access token and prints it once. Ctrl-C or SIGTERM stops the
server, not its jobs: they run on, and the next start re-attaches to them.`,
		Example: `  synapse server
  synapse server --addr 0.0.0.0:8080 --agent gpu=process --max-jobs 2
  synapse server --agent local=process --agent cluster=ray:127.0.0.1:8265
  synapse server --db postgres://synapse@db.internal/synapse`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := server.Config{Addr: addr, DataDir: sf.dataDir, DB: sf.db, MaxJobs: maxJobs}
			if err := server.CheckAddr(addr); err != nil {
				return &runflags.UsageError{Flag: "addr", Message: err.Error()}
			}
			if err := server.CheckDB(sf.db); err != nil {
				return &runflags.UsageError{Flag: "db", Message: err.Error()}
			}
			if maxJobs < 1 {
				return &runflags.UsageError{Flag: "max-jobs", Message: fmt.Sprintf("want at least 1 (got %d)", maxJobs)}
			}
			for _, a := range agents {
				spec, err := server.ParseAgent(a)
				if err != nil {
					return &runflags.UsageError{Flag: "agent", Message: err.Error()}
				}
				for _, prev := range cfg.Agents {
					if prev.Name == spec.Name {
						return &runflags.UsageError{Flag: "agent", Message: fmt.Sprintf("agent %s is given twice; agent names are unique", spec.Name)}
					}
				}
				cfg.Agents = append(cfg.Agents, spec)
			}
			if publicURL != "" {
				if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return &runflags.UsageError{Flag: "public-url", Message: fmt.Sprintf("want an http:// or https:// URL (got %q)", publicURL)}
				}
				cfg.PublicURL = publicURL
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return server.Serve(ctx, cfg, io.ErrOut)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringArrayVar(&agents, "agent", nil, "an agent, NAME=process or NAME=ray:ADDRESS (repeatable; default one process agent, local)")
	f.StringVar(&publicURL, "public-url", "", "the server's URL as jobs reach it (their SYNAPSE_HOST; default http://ADDR): set it when a Ray agent's nodes are other machines")
	f.IntVar(&maxJobs, "max-jobs", 4, "jobs each agent runs at once; the others wait")
	cmd.AddCommand(newServerTokenCmd(io, &sf))
	return cmd
}

func newServerTokenCmd(io *IOStreams, sf *serverFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the server's access tokens",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	// openExisting opens a store that exists: a mistyped --data-dir is a
	// usage error, not a new, empty store (create too: a token in a
	// database no server uses would let nobody in).
	openExisting := func(ctx context.Context) (*store.Store, error) {
		if err := server.CheckDB(sf.db); err != nil {
			return nil, &runflags.UsageError{Flag: "db", Message: err.Error()}
		}
		st, err := server.OpenExistingStore(ctx, server.Config{DataDir: sf.dataDir, DB: sf.db})
		if nse, ok := err.(*server.NoStoreError); ok {
			return nil, &runflags.UsageError{Flag: "data-dir", Message: nse.Error()}
		}
		return st, err
	}
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin access token and print it (once: only its hash is kept)",
		Long: `Create an admin access token in the database of an existing server and print it, once, on stdout
(only its hash is kept). The --data-dir (or --db) must hold a server database already: start
synapse server --data-dir DIR once first; a mistyped --data-dir is an error, not a new database.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return &runflags.UsageError{Flag: "name", Message: "want a name for people, such as ci-bot (got an empty one)"}
			}
			st, err := openExisting(cmd.Context())
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
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the access tokens (never their secrets); --all adds the jobs' tokens",
		Long: `List the access tokens, never their secrets: ID, name, kind, creation and revocation. Each job
also gets a token of its own (kind job), revoked when it ends; --all lists those too.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openExisting(cmd.Context())
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
				if t.Kind == store.TokenJob && !all {
					continue
				}
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
	list.Flags().BoolVar(&all, "all", false, "list the jobs' own tokens too (one per job)")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (from token list)",
		Args:  exactArgs(1, "a token ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openExisting(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := st.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			for _, t := range toks {
				if t.ID == args[0] && t.RevokedAt != nil {
					fmt.Fprintf(io.ErrOut, "Token %s (%s) was already revoked, at %s; nothing changed.\n", t.ID, t.Name, t.RevokedAt.Format(time.RFC3339))
					return nil
				}
			}
			if err := st.RevokeToken(cmd.Context(), args[0]); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("revoke token %s: %w: no token has that ID; the ID is one from the ID column of synapse server token list (with the same --data-dir or --db)", args[0], store.ErrNotFound)
			} else if err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "Revoked token %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
