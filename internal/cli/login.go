package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/backend"
	"github.com/synapse-sdk/synapse-go/internal/clientconfig"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"golang.org/x/term"
)

func newLoginCmd(io *IOStreams) *cobra.Command {
	var bf backendFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a Synapse backend (saves the host and access token in ~/.synapse/config.json)",
		Long: `synapse login checks the access token against the backend (GET /agents/) and, if the backend takes it,
saves the host and the token in the config file (~/.synapse/config.json, or $SYNAPSE_CONFIG_FILE), mode 0600.
On a terminal it asks for what --host and -t do not give (the token without echoing it); elsewhere -t is
needed. A token the backend refuses, or a backend that cannot be reached, saves nothing.
The file is the Python CLI's: both CLIs read what the other saves.`,
		Example: `  synapse login
  synapse login --host http://127.0.0.1:8080 -t syn_...`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := loadConfigFile()
			if err != nil {
				return err
			}
			defaults := clientconfig.Resolve(clientconfig.Flags{}, os.Getenv, file)
			host, token := strings.TrimSpace(bf.host), strings.TrimSpace(bf.token)
			terminal := io.IsTerminal()
			if host == "" && terminal {
				fmt.Fprintf(io.ErrOut, "Synapse host [%s]: ", defaults.Host)
				line, err := readLine(io.In)
				if err != nil {
					return fmt.Errorf("login: read the host: %w", err)
				}
				host = strings.TrimSpace(line)
			}
			if host == "" {
				host = defaults.Host
			}
			if token == "" {
				if !terminal {
					return &runflags.UsageError{Flag: "token", Message: "no access token given: pass -t TOKEN (on a terminal, synapse login asks for it)"}
				}
				fmt.Fprintf(io.ErrOut, "Access token for %s (input hidden): ", host)
				token, err = readSecret(io.In)
				fmt.Fprintln(io.ErrOut)
				if err != nil {
					return fmt.Errorf("login: read the token: %w", err)
				}
				if token == "" {
					return &runflags.UsageError{Flag: "token", Message: "no access token given: nothing was saved"}
				}
			}
			creds := clientconfig.Credentials{Host: host, HostFrom: "--host", Token: token, TokenFrom: "--token"}
			client, err := backendClient(creds)
			if err != nil {
				return err
			}
			list, err := client.Agents(cmd.Context())
			if err != nil {
				return fmt.Errorf("login: the token was not saved: %w", err)
			}
			sameHost := file.Host == "" || strings.TrimRight(file.Host, "/") == client.Host()
			file.Host, file.AccessToken, file.UserToken = client.Host(), token, ""
			cleared := ""
			if !sameHost && file.Agent != nil {
				cleared = fmt.Sprintf(" The agent selected on the previous host (%d, %s) was cleared.", file.Agent.ID, file.Agent.Name)
				file.Agent = nil
			}
			if err := file.Save(); err != nil {
				return err
			}
			agents := fmt.Sprintf("%d agents", len(list))
			if len(list) == 1 {
				agents = "1 agent"
			}
			fmt.Fprintf(io.ErrOut, "Logged in to %s with token %s (%s). Saved to %s.%s\n", client.Host(), backend.Mask(token), agents, file.Path, cleared)
			if file.Agent == nil {
				fmt.Fprintln(io.ErrOut, "Next: synapse agent select")
			}
			return nil
		},
	}
	bf.register(cmd.Flags())
	return cmd
}

func newLogoutCmd(io *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove the saved credentials (and selected agent) from ~/.synapse/config.json",
		Long: `synapse logout removes access_token, user_token, tenant and the selected agent from the config file;
the host and keys it does not know are kept. SYNAPSE_ACCESS_TOKEN, if set, still applies.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			file, err := loadConfigFile()
			if err != nil {
				return err
			}
			if !file.Logout() {
				fmt.Fprintf(io.ErrOut, "Not logged in: %s holds no credentials.\n", file.Path)
				return nil
			}
			if err := file.Save(); err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "Logged out: credentials removed from %s.\n", file.Path)
			if os.Getenv(clientconfig.EnvToken) != "" || os.Getenv(clientconfig.EnvUserToken) != "" {
				fmt.Fprintf(io.ErrOut, "Note: %s or %s is set in the environment and still applies.\n", clientconfig.EnvToken, clientconfig.EnvUserToken)
			}
			return nil
		},
	}
}

// readLine reads one line from r, a byte at a time (so nothing after it is
// consumed), without its line ending. End of input after some text ends
// the line; with none it is io.ErrUnexpectedEOF.
func readLine(r io.Reader) (string, error) {
	var b bytes.Buffer
	one := make([]byte, 1)
	for {
		n, err := r.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(one[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if b.Len() > 0 {
				return b.String(), nil
			}
			return "", io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", err
		}
	}
}

// readSecret reads a line from r without echoing it when r is a terminal.
func readSecret(r io.Reader) (string, error) {
	if f, ok := r.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		return strings.TrimSpace(string(b)), err
	}
	line, err := readLine(r)
	return strings.TrimSpace(line), err
}
