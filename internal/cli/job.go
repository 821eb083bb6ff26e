package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/ray"
	"github.com/synapse-sdk/synapse-go/remote"
)

// followOptions are the flags that shape following a job.
type followOptions struct {
	out             string        // -o: text or json
	stopOnInterrupt bool          // Ctrl-C stops the job too
	startTimeout    time.Duration // stop a job PENDING longer (Ray jobs)
	rayAddress      string        // for the hints printed on Ctrl-C
	stopFlags       string        // more flags of the stop command in that hint, such as " --host URL"
	verbose         bool
}

// followJob renders the job's events until it ends, then prints its result.
// Ctrl-C stops following (or stops the job with stopOnInterrupt); a job
// PENDING longer than startTimeout is stopped and reported.
func followJob(ctx context.Context, io *IOStreams, job synapse.Job, o followOptions) error {
	followCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu     sync.Mutex
		reason error // why following stopped early, set before cancel
	)
	stopWith := func(err error) {
		mu.Lock()
		if reason == nil {
			reason = err
		}
		mu.Unlock()
		cancel()
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-followCtx.Done():
			return
		}
		stopWith(synapse.ErrInterrupted)
		if !o.stopOnInterrupt {
			addr := o.stopFlags
			if o.rayAddress != "" && o.rayAddress != "auto" {
				addr = " --ray-address " + o.rayAddress
			}
			fmt.Fprintf(io.ErrOut, "\nStopped following job %s; it keeps running. Stop it with: synapse plugin job stop %s%s\n", job.ID(), job.ID(), addr)
			return
		}
		fmt.Fprintf(io.ErrOut, "\nInterrupted: stopping job %s (press Ctrl-C again to stop waiting)\n", job.ID())
		done := make(chan struct{})
		go func() {
			defer close(done)
			stopCtx, stopCancel := context.WithTimeout(context.Background(), time.Minute)
			defer stopCancel()
			if err := job.Stop(stopCtx); err != nil {
				fmt.Fprintln(io.ErrOut, "Error: stop job:", err)
			}
		}()
		select {
		case <-done:
		case <-sigs:
			fmt.Fprintf(io.ErrOut, "Stopped waiting; check the job with: synapse plugin job get %s\n", job.ID())
			os.Exit(exit.Interrupted)
		}
	}()
	if rj, ok := job.(*ray.Job); ok && o.startTimeout > 0 {
		go watchPending(followCtx, rj, o.startTimeout, stopWith)
	}
	logger := synapse.NewConsoleLogger(io.ErrOut)
	if o.verbose {
		// Note when the plugin's first event arrives: the job is running.
		start, first := time.Now(), false
		console := logger
		logger = synapse.LoggerFunc(func(e synapse.Event) {
			if !first && e.Category != "ray" {
				first = true
				fmt.Fprintf(io.ErrOut, "timings: submitted to first event %v\n", time.Since(start).Round(time.Millisecond))
			}
			console.Handle(e)
		})
	}
	err := job.Follow(followCtx, logger)
	mu.Lock()
	why := reason
	mu.Unlock()
	if why != nil {
		if errors.Is(why, synapse.ErrInterrupted) && o.stopOnInterrupt {
			// Wait for the stop to finish before exiting.
			stopCtx, stopCancel := context.WithTimeout(context.Background(), time.Minute)
			waitEnded(stopCtx, job)
			stopCancel()
		}
		return why
	}
	if err != nil {
		return err
	}
	result, err := job.Result(ctx)
	if err != nil {
		return err
	}
	return output.Result(io.Out, result, o.out == "text" && output.IsTerminal(io.Out))
}

// waitEnded polls the job until it has ended or ctx is done.
func waitEnded(ctx context.Context, job synapse.Job) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := job.Status(ctx); err == nil && st.Terminal() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watchPending stops a job that stays PENDING for longer than timeout.
func watchPending(ctx context.Context, job *ray.Job, timeout time.Duration, fail func(error)) {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		info, err := job.Info(ctx)
		if err != nil || info.Status != synapse.JobPending {
			if err == nil {
				return // started (or ended): no more watching
			}
			continue
		}
		if time.Since(start) > timeout {
			// Ray accepts a stop of a job waiting for resources but may keep it
			// PENDING until its own start timeout fails it: do not wait.
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			stopped, err := job.RequestStop(stopCtx)
			cancel()
			what := "a stop was requested; Ray may keep a job that waits for resources PENDING until its own start timeout (RAY_JOB_START_TIMEOUT_SECONDS, default 15m) fails it"
			if err != nil || !stopped {
				what = fmt.Sprintf("Ray did not accept the stop request (%v); stop it with: synapse plugin job stop %s", err, job.ID())
			}
			fail(fmt.Errorf("job %s was still PENDING after %v (--start-timeout): %s\n%s", job.ID(), timeout, info.Message, what))
			return
		}
	}
}

func newJobCmd(io *IOStreams, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Inspect and control plugin jobs on a Ray cluster or a Synapse backend",
		Long: `synapse plugin job lists, shows, follows and stops jobs on a Ray cluster (job mode, --ray-address) or on a
Synapse backend (remote mode): the backend's with --remote, --host or -t, and for a job ID that is a UUID (a
backend job's ID) unless --ray-address is given. The backend and token are those of synapse login, unless
flags or SYNAPSE_HOST / SYNAPSE_ACCESS_TOKEN say otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	flags := addClusterFlags(cmd)
	var bf jobBackendFlags
	bf.register(cmd)
	checkOut := flags.check
	open := func(id string) (*ray.Job, error) {
		if err := checkOut(); err != nil {
			return nil, err
		}
		return ray.OpenJob(flags.rayAddress, id)
	}
	pretty := func() bool { return output.IsTerminal(io.Out) }
	openRemote := func(ctx context.Context, id string) (*remote.Job, error) {
		if err := checkOut(); err != nil {
			return nil, err
		}
		return bf.open(ctx, id)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOut(); err != nil {
				return err
			}
			if bf.use(cmd, "") {
				return remoteJobList(cmd.Context(), io, &bf, flags.out)
			}
			for _, name := range []string{"limit", "status"} {
				if cmd.Flags().Changed(name) {
					return &runflags.UsageError{Flag: name, Message: "only works with a Synapse backend's jobs (--remote)"}
				}
			}
			jobs, err := ray.ListJobs(cmd.Context(), flags.rayAddress)
			if err != nil {
				return err
			}
			if flags.out == "json" {
				if jobs == nil {
					jobs = []ray.JobInfo{}
				}
				return output.Result(io.Out, jobs, pretty())
			}
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tPLUGIN\tACTION\tSTARTED\tDURATION")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Status, dash(j.Metadata["plugin"]), dash(j.Metadata["action"]), when(j.Start), duration(j.Start, j.End))
			}
			return tw.Flush()
		},
	}
	get := &cobra.Command{
		Use:   "get JOB_ID",
		Short: "Show a job's state",
		Args:  exactArgs(1, "one argument, the job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bf.use(cmd, args[0]) {
				rj, err := openRemote(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return remoteJobGet(cmd.Context(), io, rj, flags.out)
			}
			job, err := open(args[0])
			if err != nil {
				return err
			}
			info, err := job.Info(cmd.Context())
			if err != nil {
				return err
			}
			if flags.out == "json" {
				return output.Result(io.Out, info, pretty())
			}
			tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "ID:\t%s\nStatus:\t%s\n", info.ID, info.Status)
			if msg, _, _ := strings.Cut(info.Message, "\n"); msg != "" {
				// Ray appends the job's last log lines to a failure message:
				// they are `plugin job logs`'s, not a table cell's.
				fmt.Fprintf(tw, "Message:\t%s\n", strings.TrimSuffix(strings.TrimSpace(msg), ":"))
			}
			if info.Status == synapse.JobFailed {
				if _, err := job.Result(cmd.Context()); err != nil {
					first, _, _ := strings.Cut(err.Error(), "\n")
					fmt.Fprintf(tw, "Error:\t%s\n", first)
				}
			}
			if info.ErrorType != "" {
				fmt.Fprintf(tw, "Error type:\t%s\n", info.ErrorType)
			}
			fmt.Fprintf(tw, "Plugin:\t%s\nAction:\t%s\nStarted:\t%s\nDuration:\t%s\nEntrypoint:\t%s\nDashboard:\t%s\n",
				dash(info.Metadata["plugin"]), dash(info.Metadata["action"]), when(info.Start), duration(info.Start, info.End), info.Entrypoint, job.DashboardURL)
			return tw.Flush()
		},
	}
	var follow bool
	logs := &cobra.Command{
		Use:   "logs JOB_ID",
		Short: "Print a job's log (-f follows it to the end)",
		Args:  exactArgs(1, "one argument, the job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bf.use(cmd, args[0]) {
				rj, err := openRemote(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if follow {
					return followJobLogs(cmd.Context(), io, rj)
				}
				return remoteJobLogs(cmd.Context(), io, rj, flags.out)
			}
			job, err := open(args[0])
			if err != nil {
				return err
			}
			if follow {
				return followJobLogs(cmd.Context(), io, job)
			}
			text, err := job.Logs(cmd.Context())
			if err != nil {
				return err
			}
			if flags.out == "json" {
				return output.Result(io.Out, map[string]string{"logs": text}, pretty())
			}
			_, err = fmt.Fprint(io.Out, text)
			return err
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the job ends, rendering its events")
	list.Flags().IntVar(&bf.limit, "limit", 50, "a Synapse backend's jobs: the most listed, newest first (0: all)")
	list.Flags().StringVar(&bf.status, "status", "", "a Synapse backend's jobs: only those of this status (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED)")
	result := &cobra.Command{
		Use:   "result JOB_ID",
		Short: "Wait for a job to end and print its result (exit 1 if it failed)",
		Args:  exactArgs(1, "one argument, the job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var job synapse.Job
			var err error
			if bf.use(cmd, args[0]) {
				job, err = openRemote(cmd.Context(), args[0])
			} else {
				job, err = open(args[0])
			}
			if err != nil {
				return err
			}
			v, err := job.Result(cmd.Context())
			if err != nil {
				return err
			}
			return output.Result(io.Out, v, flags.out == "text" && pretty())
		},
	}
	stop := &cobra.Command{
		Use:   "stop JOB_ID",
		Short: "Stop a job and wait until it has stopped (a backend job: POST /v2/jobs/{id}/stop/)",
		Args:  exactArgs(1, "one argument, the job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bf.use(cmd, args[0]) {
				rj, err := openRemote(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return remoteJobStop(cmd.Context(), io, rj, flags.out)
			}
			job, err := open(args[0])
			if err != nil {
				return err
			}
			if err := job.Stop(cmd.Context()); err != nil {
				if !errors.Is(err, ray.ErrStopPending) {
					return err
				}
				fmt.Fprintln(io.ErrOut, "Note:", err)
				return report(io, flags.out, job.ID(), "stop_requested")
			}
			return report(io, flags.out, job.ID(), "stopped")
		},
	}
	del := &cobra.Command{
		Use:   "delete JOB_ID",
		Short: "Delete an ended job's record (Ray jobs only)",
		Args:  exactArgs(1, "one argument, the job ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bf.use(cmd, args[0]) {
				return &runflags.UsageError{Message: "job delete works on Ray jobs only: a Synapse backend keeps its jobs (give --ray-address for a Ray job whose ID is a UUID)"}
			}
			job, err := open(args[0])
			if err != nil {
				return err
			}
			if err := job.Delete(cmd.Context()); err != nil {
				return err
			}
			return report(io, flags.out, job.ID(), "deleted")
		},
	}
	cmd.AddCommand(list, get, logs, result, stop, del)
	return cmd
}

// followJobLogs renders a job's events until it ends.
func followJobLogs(ctx context.Context, io *IOStreams, job synapse.Job) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	err := job.Follow(ctx, synapse.NewConsoleLogger(io.ErrOut))
	if errors.Is(err, context.Canceled) {
		return synapse.ErrInterrupted
	}
	if err != nil {
		return err
	}
	// The exit code is the job's: 0 succeeded, 1 failed or stopped.
	status, err := job.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.ErrOut, "Job %s %s.\n", job.ID(), status)
	if status == synapse.JobSucceeded {
		return nil
	}
	_, err = job.Result(ctx)
	if err == nil {
		err = fmt.Errorf("job %s ended %s", job.ID(), status)
	}
	return err
}

func report(io *IOStreams, out, id, what string) error {
	if out == "json" {
		return output.Result(io.Out, map[string]any{"id": id, what: true}, false)
	}
	fmt.Fprintf(io.Out, "Job %s %s.\n", id, strings.ReplaceAll(what, "_", " "))
	return nil
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func duration(start, end time.Time) string {
	switch {
	case start.IsZero():
		return "-"
	case end.IsZero():
		return time.Since(start).Round(time.Second).String() + " (running)"
	}
	return end.Sub(start).Round(10 * time.Millisecond).String()
}
