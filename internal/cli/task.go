package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/ray"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/internal/serve"
)

// runTaskMode runs the action on the plugin's worker in Ray Serve,
// deploying it first if needed.
func runTaskMode(ctx context.Context, io *IOStreams, flags *runflags.Flags, cfg *config.Config, action string) error {
	env, err := explicitEnv(flags)
	if err != nil {
		return err
	}
	params, err := runflags.ReadParams(flags.Params, io.In)
	if err != nil {
		return err
	}
	status := func(s string) { fmt.Fprintf(io.ErrOut, "Task mode: %s\n", s) }
	if !flags.Verbose && !io.IsTerminal() {
		status = func(string) {}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	t, err := synapse.NewTaskExecutor(cfg.Path,
		synapse.WithEnv(env), synapse.WithJobID(flags.JobID), synapse.WithLogger(synapse.NewConsoleLogger(io.ErrOut)),
		synapse.WithRayAddress(flags.RayAddress), synapse.WithArch(flags.Arch), synapse.WithServeAddress(flags.ServeAddress),
		synapse.WithReplicas(flags.Replicas), synapse.WithMaxOngoingRequests(flags.MaxOngoing), synapse.WithDeployStatus(status),
		synapse.WithResources(synapse.Resources{CPUs: flags.CPUs, GPUs: flags.GPUs, Memory: flags.MemoryBytes()}))
	if err != nil {
		return err
	}
	result, err := t.Run(ctx, action, json.RawMessage(params))
	if ctx.Err() != nil {
		return synapse.ErrInterrupted
	}
	if err != nil {
		return err
	}
	if flags.Verbose {
		state := "reused"
		if t.Deployed() {
			state = "deployed"
		}
		fmt.Fprintf(io.ErrOut, "worker application: %s (%s)\n", t.App(), state)
	}
	return output.Result(io.Out, result, flags.Output == "text" && output.IsTerminal(io.Out))
}

func newTaskCmd(io *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "List and remove the plugin workers deployed for task mode",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	flags := addClusterFlags(cmd)
	client := func() (*ray.Client, error) {
		if err := flags.check(); err != nil {
			return nil, err
		}
		return ray.NewClient(flags.rayAddress)
	}
	list := &cobra.Command{
		Use:   "list [CODE]",
		Short: "List the worker applications this SDK deployed (of one plugin with CODE)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			apps, err := serve.List(cmd.Context(), c, optionalArg(args))
			if err != nil {
				return err
			}
			if flags.out == "json" {
				if apps == nil {
					apps = []serve.App{}
				}
				return output.Result(io.Out, apps, output.IsTerminal(io.Out))
			}
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "APPLICATION\tPLUGIN\tSTATUS\tROUTE")
			for _, a := range apps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Code, a.Status, a.RoutePrefix)
			}
			return tw.Flush()
		},
	}
	down := &cobra.Command{
		Use:   "down [CODE]",
		Short: "Remove the worker applications of plugin CODE (all of this SDK's without CODE); others are kept",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			removed, err := serve.Down(cmd.Context(), c, optionalArg(args))
			if err != nil {
				return err
			}
			if flags.out == "json" {
				if removed == nil {
					removed = []string{}
				}
				return output.Result(io.Out, map[string]any{"removed": removed}, false)
			}
			if len(removed) == 0 {
				fmt.Fprintln(io.Out, "No worker applications to remove.")
			}
			for _, n := range removed {
				fmt.Fprintf(io.Out, "Removed %s\n", n)
			}
			return nil
		},
	}
	cmd.AddCommand(list, down)
	return cmd
}
