package cli

import (
	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
)

// clusterFlags are the persistent flags of the commands that talk to a
// Ray cluster (plugin job, plugin task).
type clusterFlags struct {
	rayAddress string
	out        string
}

func addClusterFlags(cmd *cobra.Command) *clusterFlags {
	f := &clusterFlags{}
	cmd.PersistentFlags().StringVar(&f.rayAddress, "ray-address", "auto", "Ray dashboard address ($RAY_ADDRESS, else http://127.0.0.1:8265)")
	cmd.PersistentFlags().StringVarP(&f.out, "output", "o", "text", "text or json")
	return f
}

func (f *clusterFlags) check() error { return runflags.CheckOutput(f.out) }

// optionalArg returns the first argument, or "".
func optionalArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return ""
}
