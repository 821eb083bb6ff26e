package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/clientconfig"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
)

func newAgentCmd(io *IOStreams) *cobra.Command {
	var bf backendFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "List the backend's agents and select the one remote runs go to",
		Long: `The selected agent is kept in the config file (~/.synapse/config.json "agent": {id, name, url, token}), as
the Python CLI keeps it; synapse plugin run --mode remote sends runs to it unless --agent says otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	bf.register(cmd.PersistentFlags())
	list := &cobra.Command{
		Use:   "list",
		Short: "List the backend's agents (GET /agents/); * marks the selected one",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, _, err := credentials(bf)
			if err != nil {
				return err
			}
			client, err := backendClient(creds)
			if err != nil {
				return err
			}
			list, err := client.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintf(io.ErrOut, "The backend at %s has no agents.\n", client.Host())
				return nil
			}
			return agentTable(io.Out, list, creds.Agent)
		},
	}
	sel := &cobra.Command{
		Use:   "select [ID]",
		Short: "Select the agent remote runs go to (by ID or name; without one, choose from a list on a terminal)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{fmt.Errorf("%s takes at most one agent ID (got %d arguments)", cmd.CommandPath(), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			creds, file, err := credentials(bf)
			if err != nil {
				return err
			}
			client, err := backendClient(creds)
			if err != nil {
				return err
			}
			if len(args) == 0 && !io.IsTerminal() {
				return &runflags.UsageError{Message: "agent select: no agent ID given: pass one (synapse agent list shows them)"}
			}
			list, err := client.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if len(list) == 0 {
				return fmt.Errorf("agent select: the backend at %s has no agents", client.Host())
			}
			var want string
			if len(args) == 1 {
				want = args[0]
			} else {
				if err := agentTable(io.ErrOut, list, creds.Agent); err != nil {
					return err
				}
				fmt.Fprint(io.ErrOut, "Agent ID: ")
				line, err := readLine(io.In)
				if err != nil {
					return fmt.Errorf("agent select: read the agent ID: %w", err)
				}
				want = strings.TrimSpace(line)
				if want == "" {
					fmt.Fprintln(io.ErrOut, "Nothing selected.")
					return nil
				}
			}
			a, err := findAgent("agent select", list, want)
			if err != nil {
				return err
			}
			// The Python CLI's set_agent_config: {id, name, url, token}.
			file.Agent = &clientconfig.Agent{ID: int64(a.ID), Name: a.Name, URL: a.URL, Token: a.Token}
			if err := file.Save(); err != nil {
				return err
			}
			state := ""
			if !a.Connected() {
				state = fmt.Sprintf(" (status %q: runs sent to it wait until it connects)", dash(a.Status))
			}
			fmt.Fprintf(io.ErrOut, "Selected agent %d (%s)%s. Saved to %s.\n", a.ID, a.Name, state, file.Path)
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the selected agent and the backend credentials in use, and where they come from (no request is sent)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			creds, file, err := credentials(bf)
			if err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "Backend: %s\n", creds.Describe(backend.Mask))
			if file.Agent == nil {
				fmt.Fprintf(io.ErrOut, "No agent selected in %s: run synapse agent select.\n", file.Path)
				return nil
			}
			a := file.Agent
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "ID:\t%d\nName:\t%s\nURL:\t%s\nToken:\t%s\n", a.ID, dash(a.Name), dash(a.URL), dash(backend.Mask(a.Token)))
			return tw.Flush()
		},
	}
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Forget the selected agent",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			file, err := loadConfigFile()
			if err != nil {
				return err
			}
			if file.Agent == nil {
				fmt.Fprintln(io.ErrOut, "No agent was selected.")
				return nil
			}
			file.Agent = nil
			if err := file.Save(); err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "Agent selection cleared in %s.\n", file.Path)
			return nil
		},
	}
	cmd.AddCommand(list, sel, show, clear)
	return cmd
}

// agentTable prints agents as a table, * marking the selected one.
func agentTable(w io.Writer, list []backend.Agent, selected *clientconfig.Agent) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tID\tNAME\tSTATUS\tKIND\tURL")
	for _, a := range list {
		mark := ""
		if selected != nil && selected.ID == int64(a.ID) {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", mark, a.ID, a.Name, dash(a.Status), dash(a.Kind), dash(a.URL))
	}
	return tw.Flush()
}

// findAgent finds an agent by ID, else by name; op starts the error of
// none ("agent select", "--agent").
func findAgent(op string, list []backend.Agent, want string) (backend.Agent, error) {
	id, idErr := strconv.Atoi(want)
	for _, a := range list {
		if idErr == nil && a.ID == id || a.Name == want {
			return a, nil
		}
	}
	ids := make([]string, len(list))
	for i, a := range list {
		ids[i] = fmt.Sprintf("%d (%s)", a.ID, a.Name)
	}
	return backend.Agent{}, &runflags.UsageError{Message: fmt.Sprintf("%s: no agent %q on the backend; its agents: %s", op, want, strings.Join(ids, ", "))}
}
