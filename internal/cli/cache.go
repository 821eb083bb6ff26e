package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/synapse-sdk/synapse-go/internal/build"
	"github.com/synapse-sdk/synapse-go/internal/cachedir"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/pack"
	"github.com/synapse-sdk/synapse-go/internal/pyenv"
	"github.com/synapse-sdk/synapse-go/internal/pyplugin"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/internal/serve"
	"github.com/synapse-sdk/synapse-go/pipeline"
)

// defaultPruneAge is --older-than's default.
const defaultPruneAge = 30 * 24 * time.Hour

// cacheStore is a cache `synapse cache` shows and prunes; each package
// owning one implements it.
type cacheStore interface {
	Stats() (cachedir.Stats, error)
	Prune(cachedir.PruneOptions) (*cachedir.PruneResult, error)
}

// namedCache is one of the CLI's caches.
type namedCache struct {
	name, what, dir string
	store           cacheStore
}

// cliCaches returns the CLI's caches: below the build cache root
// ($SYNAPSE_CACHE_DIR), and the Python environments ($SYNAPSE_VENV_DIR).
func cliCaches() ([]namedCache, error) {
	root, err := build.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	venvs, err := filepath.Abs(pyplugin.LocalCacheDir("."))
	if err != nil {
		return nil, err
	}
	packages, task := filepath.Join(root, pack.CacheSubdir), filepath.Join(root, serve.StateSubdir)
	return []namedCache{
		{"plugins", "plugin binaries", root, build.Cache{Dir: root}},
		{"packages", "cluster packages (job and task modes)", packages, pack.Cache{Dir: packages}},
		{"task", "task mode's worker addresses", task, serve.StateCache{Dir: task}},
		{"venvs", "Python plugins' environments", venvs, &pyenv.Cache{Dir: venvs}},
	}, nil
}

// pipelineRuns describes the pipeline runs' directory, which is never
// pruned: runs are directories <pipeline>/<run id>.
func pipelineRuns() cachedir.Stats {
	dir := pipeline.DefaultWorkDir()
	st := cachedir.Stats{Dir: dir, Bytes: cachedir.Bytes(dir)}
	runs, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	for _, r := range runs {
		fi, err := os.Stat(r)
		if err != nil || !fi.IsDir() {
			continue
		}
		st.Entries++
		if st.OldestUse.IsZero() || fi.ModTime().Before(st.OldestUse) {
			st.OldestUse = fi.ModTime()
		}
	}
	return st
}

// pipelinesNote says why pipeline runs are not pruned.
const pipelinesNote = "never pruned: they hold the checkpoints of synapse plugin run-pipeline --resume (remove old runs yourself)"

func newCacheCmd(io *IOStreams) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Show and prune the CLI's caches: plugin binaries, cluster packages, task state, Python environments",
		Long: `The CLI caches what it builds so that an unchanged plugin is never built, packed or installed twice:
plugin binaries, cluster packages and task mode's worker addresses below $SYNAPSE_CACHE_DIR
(default ~/.cache/synapse-go/plugins), and Python plugins' environments in $SYNAPSE_VENV_DIR
(default ~/.cache/synapse-go/venvs). Every use of an entry is its last use (recorded to within an
hour); synapse cache prune removes the entries not used for a while.

Pipeline runs (~/.cache/synapse-go/pipelines) are shown but never pruned: they hold the checkpoints
that synapse plugin run-pipeline --resume continues from.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVarP(&out, "output", "o", "text", "text or json")

	info := &cobra.Command{
		Use:   "info",
		Short: "Show each cache's path, number of entries, size and oldest last use",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := runflags.CheckOutput(out); err != nil {
				return err
			}
			caches, err := cliCaches()
			if err != nil {
				return err
			}
			return cacheInfo(io, caches, out == "json")
		},
	}

	age := ageValue(defaultPruneAge)
	var all, dryRun bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove cache entries not used for a while (default 30 days), or all of them",
		Long: `Remove the cache entries last used longer ago than --older-than (default 30d), or with --all every
entry, and what killed builds left behind. Entries in use are kept: a Python environment a run
is using or building (locked) is skipped with a note, and so is a binary being built. Removal is
safe while other synapse commands run: an entry disappears in one step, so a concurrent run
either uses all of it or builds it again.

Pipeline runs are never pruned (they hold --resume's checkpoints).`,
		Example: `  synapse cache prune --dry-run
  synapse cache prune --older-than 7d
  synapse cache prune --all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := runflags.CheckOutput(out); err != nil {
				return err
			}
			if all && cmd.Flags().Changed("older-than") {
				return &runflags.UsageError{Flag: "all", Message: "give --all or --older-than, not both"}
			}
			caches, err := cliCaches()
			if err != nil {
				return err
			}
			opts := cachedir.PruneOptions{Before: time.Now().Add(-time.Duration(age)), All: all, DryRun: dryRun}
			return cachePrune(io, caches, opts, out == "json")
		},
	}
	prune.Flags().Var(&age, "older-than", "remove entries last used longer ago than `DURATION`: 72h, 30d, 90m")
	prune.Flags().BoolVar(&all, "all", false, "remove every entry (those in use are kept)")
	prune.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed and the bytes freed; remove nothing")

	cmd.AddCommand(info, prune)
	return cmd
}

// cacheInfoJSON is a cache in `synapse cache info -o json`.
type cacheInfoJSON struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Path        string     `json:"path"`
	Entries     int        `json:"entries"`
	Bytes       int64      `json:"bytes"`
	OldestUse   *time.Time `json:"oldest_use"` // null without entries
	Pruned      bool       `json:"pruned"`     // false: prune leaves it alone
	Note        string     `json:"note,omitempty"`
}

func cacheInfo(io *IOStreams, caches []namedCache, asJSON bool) error {
	var rows []cacheInfoJSON
	for _, c := range caches {
		st, err := c.store.Stats()
		if err != nil {
			return fmt.Errorf("cache info: %s: %w", c.name, err)
		}
		rows = append(rows, infoRow(c.name, c.what, st, true, ""))
	}
	rows = append(rows, infoRow("pipelines", "pipeline runs (synapse plugin run-pipeline)", pipelineRuns(), false, pipelinesNote))
	if asJSON {
		return output.Result(io.Out, map[string]any{"caches": rows}, output.IsTerminal(io.Out))
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CACHE\tENTRIES\tSIZE\tOLDEST USE\tPATH")
	for _, r := range rows {
		oldest := "-"
		if r.OldestUse != nil {
			oldest = r.OldestUse.Local().Format("2006-01-02") + " (" + ago(*r.OldestUse) + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Name, r.Entries, pack.FormatSize(r.Bytes), oldest, r.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(io.ErrOut, "Pipeline runs are "+pipelinesNote+".")
	return nil
}

func infoRow(name, what string, st cachedir.Stats, pruned bool, note string) cacheInfoJSON {
	r := cacheInfoJSON{Name: name, Description: what, Path: st.Dir, Entries: st.Entries, Bytes: st.Bytes, Pruned: pruned, Note: note}
	if !st.OldestUse.IsZero() {
		t := st.OldestUse.UTC()
		r.OldestUse = &t
	}
	return r
}

// cachePruneJSON is a cache in `synapse cache prune -o json`.
type cachePruneJSON struct {
	Name    string             `json:"name"`
	Path    string             `json:"path"`
	Removed []cachedir.Entry   `json:"removed"`
	Skipped []cachedir.Skipped `json:"skipped"`
	Freed   int64              `json:"freed_bytes"`
	Errors  []string           `json:"errors,omitempty"`
}

func cachePrune(io *IOStreams, caches []namedCache, opts cachedir.PruneOptions, asJSON bool) error {
	var (
		rows           []cachePruneJSON
		errs           []error
		freed          int64
		removed, kept  int
		tw             = tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
		verb, summary  = "removed", "Removed %d %s, freed %s."
		leftoverPrefix = "leftover "
	)
	if opts.DryRun {
		verb, summary = "would remove", "Would remove %d %s and free %s (dry run: nothing was removed)."
	}
	for _, c := range caches {
		res, err := c.store.Prune(opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
			continue
		}
		row := cachePruneJSON{Name: c.name, Path: c.dir, Removed: res.Removed, Skipped: res.Skipped, Freed: res.Freed}
		if row.Removed == nil {
			row.Removed = []cachedir.Entry{}
		}
		if row.Skipped == nil {
			row.Skipped = []cachedir.Skipped{}
		}
		for _, e := range res.Removed {
			name := shortKey(e.Key)
			used := "last used " + e.LastUse.Local().Format("2006-01-02") + " (" + ago(e.LastUse) + ")"
			if e.Leftover {
				name, used = leftoverPrefix+e.Key, "left by a killed process"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", verb, c.name, name, pack.FormatSize(e.Bytes), used)
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", "kept", c.name, shortKey(s.Key), pack.FormatSize(s.Bytes), s.Reason)
		}
		for _, err := range res.Errors {
			row.Errors = append(row.Errors, err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
		removed += len(res.Removed)
		kept += len(res.Skipped)
		freed += res.Freed
		rows = append(rows, row)
	}
	if asJSON {
		if err := output.Result(io.Out, map[string]any{"dry_run": opts.DryRun, "caches": rows, "freed_bytes": freed}, output.IsTerminal(io.Out)); err != nil {
			return err
		}
	} else {
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(io.Out, summary+"\n", removed, plural(removed, "entry", "entries"), pack.FormatSize(freed))
		if kept > 0 {
			fmt.Fprintf(io.ErrOut, "Kept %d %s that a run is using or building; prune again once it has ended.\n", kept, plural(kept, "entry", "entries"))
		}
		if runs := pipelineRuns(); runs.Entries > 0 {
			fmt.Fprintf(io.ErrOut, "Pipeline runs in %s (%d %s, %s) are %s.\n", runs.Dir, runs.Entries, plural(runs.Entries, "run", "runs"), pack.FormatSize(runs.Bytes), pipelinesNote)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("prune caches: %w", errors.Join(errs...))
	}
	return nil
}

// shortKey shortens a hex build or package key to 16 digits; other keys
// (environments, task state files) are shown whole.
func shortKey(k string) string {
	if len(k) == 64 && strings.Trim(k, "0123456789abcdef") == "" {
		return k[:16]
	}
	return k
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ago says how long ago t was, roughly: "40 days ago", "3 hours ago",
// "just now".
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	case d >= 2*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " hours ago"
	case d >= 2*time.Minute:
		return strconv.Itoa(int(d/time.Minute)) + " minutes ago"
	}
	return "just now"
}

// ageValue is --older-than: a Go duration (72h, 90m) or a number of days
// (30d, 1.5d), not negative.
type ageValue time.Duration

func (a *ageValue) String() string {
	d := time.Duration(*a)
	if d != 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

func (a *ageValue) Set(s string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return err
		}
		if !(n >= -1e5 && n <= 1e5) { // NaN, Inf, or beyond a Duration
			return errors.New("out of range")
		}
		d = time.Duration(n * float64(24*time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(s)); err != nil {
			return err
		}
	}
	if d < 0 {
		return errors.New("negative")
	}
	*a = ageValue(d)
	return nil
}

// Type names the value in help and in flagError ("age").
func (a *ageValue) Type() string { return "age" }
