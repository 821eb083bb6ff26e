package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
)

func newRunPipelineCmd(io *IOStreams, g *globals) *cobra.Command {
	var flags runflags.PipelineFlags
	cmd := &cobra.Command{
		Use:   "run-pipeline NAME",
		Short: "Run a pipeline declared in config.yaml (local mode)",
		Long: `Run the actions of a pipeline declared in config.yaml (pipelines: {NAME: [action, ...]}) in order,
in the plugin binary's process: each action gets the accumulated params it declares, and its result is
merged in; the last action's result is printed. A checkpoint is written after every completed action:
when a run fails, --resume RUN_ID continues it from the first incomplete action.

Exit codes as for plugin run.`,
		Example: `  synapse plugin run-pipeline nightly --params '{"dataset": 12}'
  synapse plugin run-pipeline nightly --resume 3f9c2a1b7d4e`,
		Args: exactArgs(1, "one argument, the pipeline name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			flags.Verbose = g.verbose
			if err := flags.Check(); err != nil {
				return err
			}
			cfg, err := loadConfig(io, flags.Path, true)
			if err != nil {
				return err
			}
			var names []string
			found := false
			for _, p := range cfg.Pipelines {
				names = append(names, p.Name)
				found = found || p.Name == args[0]
			}
			if !found {
				if len(names) == 0 {
					return &runflags.UsageError{Message: fmt.Sprintf("run pipeline %q: %s declares no pipelines (add `pipelines: {%s: [action, ...]}`)", args[0], cfg.Path, args[0])}
				}
				return &runflags.UsageError{Message: fmt.Sprintf("run pipeline %q: no such pipeline in %s; pipelines: %s", args[0], cfg.Path, strings.Join(names, ", "))}
			}
			bin, err := buildPlugin(cmd.Context(), io, cfg, build.Options{}, false, flags.Verbose)
			if err != nil {
				return err
			}
			argv := []string{bin, "plugin", "run-pipeline", args[0], "--path", cfg.Path, "--params", flags.Params, "--output", flags.Output}
			for _, kv := range flags.Env {
				argv = append(argv, "--env", kv)
			}
			if flags.Lang != "" { // as an env value, which binaries of any SDK version take
				argv = append(argv, "--env", synapse.LanguageEnv+"="+flags.Lang)
			}
			for flag, v := range map[string]string{"--env-file": flags.EnvFile, "--job-id": flags.JobID, "--resume": flags.Resume, "--work-dir": flags.WorkDir} {
				if v != "" {
					argv = append(argv, flag, v)
				}
			}
			if flags.Verbose {
				argv = append(argv, "--verbose")
			}
			return replaceProcess(io, argv)
		},
	}
	flags.Register(cmd.Flags())
	return cmd
}
