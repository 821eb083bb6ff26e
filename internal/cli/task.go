package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
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
	var all bool
	down := &cobra.Command{
		Use:   "down CODE | --all",
		Short: "Remove the worker applications of plugin CODE (or, with --all, all of this SDK's); others are kept",
		Long: `Remove the worker applications task mode deployed for plugin CODE. Other Serve applications are kept.

Without CODE every worker application of this SDK on the cluster is removed, which on a shared cluster
includes other people's: that takes --all, and on a terminal it asks first.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.check(); err != nil {
				return err
			}
			code := optionalArg(args)
			switch {
			case code != "" && all:
				return &usageError{err: errors.New("give a plugin CODE or --all, not both")}
			case code == "" && !all:
				return &usageError{err: errors.New("name the plugin whose workers to remove (synapse plugin task down CODE), or pass --all to remove every worker application of this SDK on the cluster")}
			case code == "" && io.IsTerminal():
				apps, err := ray.ListTasks(cmd.Context(), flags.rayAddress, "")
				if err != nil {
					return err
				}
				if len(apps) > 0 {
					names := make([]string, len(apps))
					for i, a := range apps {
						names[i] = a.Name
					}
					fmt.Fprintf(io.ErrOut, "This removes %d worker application(s): %s\nRemove them all? [y/N]: ", len(apps), strings.Join(names, ", "))
					line, _ := bufio.NewReader(io.In).ReadString('\n')
					if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
						fmt.Fprintln(io.ErrOut, "Nothing removed.")
						return nil
					}
				}
			}
			removed, err := ray.DownTasks(cmd.Context(), flags.rayAddress, code)
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
	down.Flags().BoolVar(&all, "all", false, "remove every worker application of this SDK (asks first on a terminal)")
	cmd.AddCommand(list, down)
	return cmd
}
