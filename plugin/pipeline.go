package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/config"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/pipeline"
)

// runPipelineCommand is `plugin run-pipeline NAME` inside a plugin binary:
// it runs (or resumes) a pipeline declared in config.yaml, in this process.
func runPipelineCommand(set *synapse.ActionSet, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var flags runflags.PipelineFlags
	return runCommand("plugin run-pipeline", "NAME", args, stderr, &flags.Verbose, flags.Register, func(rest []string) error {
		return runPipeline(set, &flags, rest, stdin, stdout, stderr)
	})
}

func runPipeline(set *synapse.ActionSet, flags *runflags.PipelineFlags, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return &runflags.UsageError{Message: fmt.Sprintf("plugin run-pipeline takes one argument, the pipeline name (got %d)", len(args))}
	}
	if err := flags.Check(); err != nil {
		return err
	}
	file, err := config.Find(flags.Path)
	if err != nil {
		return &runflags.UsageError{Flag: "path", Message: err.Error()}
	}
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	var decl *config.Pipeline
	var names []string
	for i := range cfg.Pipelines {
		names = append(names, cfg.Pipelines[i].Name)
		if cfg.Pipelines[i].Name == args[0] {
			decl = &cfg.Pipelines[i]
		}
	}
	if decl == nil {
		if len(names) == 0 {
			return &runflags.UsageError{Message: fmt.Sprintf("run pipeline %q: %s declares no pipelines (add `pipelines: {%s: [action, ...]}`)", args[0], baseName(cfg.Path), args[0])}
		}
		return &runflags.UsageError{Message: fmt.Sprintf("run pipeline %q: no such pipeline in %s; pipelines: %s", args[0], baseName(cfg.Path), strings.Join(names, ", "))}
	}
	actions := make([]synapse.Action, 0, len(decl.Actions))
	for _, name := range decl.Actions {
		a, err := resolveAction(set, cfg, name)
		if err != nil {
			return err
		}
		actions = append(actions, a)
	}
	var popts []pipeline.Option
	if flags.WorkDir != "" {
		popts = append(popts, pipeline.WithWorkDir(flags.WorkDir))
	}
	p, err := pipeline.New(decl.Name, actions, popts...)
	if err != nil {
		return &config.Error{File: cfg.Path, Line: decl.Line, Field: "pipelines." + decl.Name, Message: err.Error()}
	}

	env, err := localEnv(cfg, flags.EnvFile, flags.EnvValues())
	if err != nil {
		return err
	}

	ctx, logger, done := startRun(stderr)
	defer done()
	opts := []synapse.Option{synapse.WithEnv(env), synapse.WithJobID(flags.JobID), synapse.WithLogger(logger)}

	var run *pipeline.Run
	if flags.Resume != "" {
		dir := filepath.Join(p.WorkDir(), decl.Name)
		if _, err := os.Stat(filepath.Join(dir, flags.Resume)); err != nil {
			return &runflags.UsageError{Flag: "resume", Message: fmt.Sprintf("pipeline %q has no run %q in %s (see --work-dir)", decl.Name, flags.Resume, dir)}
		}
		run, err = p.Resume(ctx, flags.Resume, opts...)
	} else {
		params, rerr := runflags.ReadParams(flags.Params, stdin)
		if rerr != nil {
			return rerr
		}
		run, err = p.Run(ctx, json.RawMessage(params), opts...)
	}
	if err != nil && run != nil && run.ID != "" && !errors.Is(err, synapse.ErrValidation) {
		// A command that works when pasted: the same plugin and work dir.
		hint := "synapse plugin run-pipeline " + decl.Name + " --resume " + run.ID
		if flags.Path != "" && flags.Path != "." {
			hint += " --path " + shellQuote(flags.Path)
		}
		if flags.WorkDir != "" {
			hint += " --work-dir " + shellQuote(flags.WorkDir)
		}
		err = fmt.Errorf("%w\nResume it with: %s", err, hint) // after the error, so it is the last line
	}
	if err != nil {
		return interrupted(ctx, err)
	}
	return output.Result(stdout, run.Result, flags.Output == "text" && output.IsTerminal(stdout))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
