package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/ray"
)

func newTaskCmd(io *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "List and remove the plugin workers deployed for task mode",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	flags := addClusterFlags(cmd)

	list := &cobra.Command{
		Use:   "list [CODE]",
		Short: "List the worker applications this SDK deployed (of one plugin with CODE)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.check(); err != nil {
				return err
			}
			apps, err := ray.ListTasks(cmd.Context(), flags.rayAddress, optionalArg(args))
			if err != nil {
				return err
			}
			if flags.out == "json" {
				if apps == nil {
					apps = []ray.TaskApp{}
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
			if err := flags.check(); err != nil {
				return err
			}
			removed, err := ray.DownTasks(cmd.Context(), flags.rayAddress, optionalArg(args))
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
