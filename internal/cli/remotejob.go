package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/output"
	"github.com/synapse-sdk/synapse-go/internal/runflags"
	"github.com/synapse-sdk/synapse-go/remote"
)

// jobBackendFlags choose where `plugin job` looks: a Synapse backend with
// --remote, --host or -t, or for an ID that is a UUID (a backend job's ID)
// unless --ray-address is given; Ray otherwise.
type jobBackendFlags struct {
	backendFlags
	remote bool
	limit  int
	status string
}

func (f *jobBackendFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.BoolVar(&f.remote, "remote", false, "the jobs of the Synapse backend (synapse login) instead of Ray's; implied by --host, -t, and a job ID that is a UUID")
	f.backendFlags.register(fs)
}

// use reports whether the command talks to a backend: cmd is the
// subcommand run, id the job ID ("" for list).
func (f *jobBackendFlags) use(cmd *cobra.Command, id string) bool {
	switch {
	case f.remote, cmd.Flags().Changed("host"), cmd.Flags().Changed("token"):
		return true
	case cmd.Flags().Changed("ray-address"):
		return false
	}
	return id != "" && isUUID(id)
}

// isUUID reports whether id is a UUID in its usual text form (a backend
// job's ID; Ray submission IDs of synapse-go are synapse-CODE-ACTION-HEX).
func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}

// backend resolves the backend and its credentials.
func (f *jobBackendFlags) backend() (remote.Backend, error) {
	creds, _, err := credentials(f.backendFlags)
	if err != nil {
		return remote.Backend{}, err
	}
	return remoteBackend(creds)
}

// open opens a backend job.
func (f *jobBackendFlags) open(ctx context.Context, id string) (*remote.Job, error) {
	b, err := f.backend()
	if err != nil {
		return nil, err
	}
	return remote.OpenJob(ctx, b, id)
}

// remoteJobList is `plugin job list` against a backend.
func remoteJobList(ctx context.Context, io *IOStreams, f *jobBackendFlags, out string) error {
	b, err := f.backend()
	if err != nil {
		return err
	}
	if f.limit < 0 {
		return &runflags.UsageError{Flag: "limit", Message: fmt.Sprintf("must be >= 0 (got %d)", f.limit)}
	}
	var status synapse.JobStatus
	if f.status != "" {
		status = synapse.JobStatus(strings.ToUpper(f.status))
		switch status {
		case synapse.JobPending, synapse.JobRunning, synapse.JobStopped, synapse.JobSucceeded, synapse.JobFailed:
		default:
			return &runflags.UsageError{Flag: "status", Message: fmt.Sprintf("must be one of PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED (got %q)", f.status)}
		}
	}
	jobs, err := remote.ListJobs(ctx, b, remote.JobFilter{Status: status, Limit: f.limit})
	if err != nil {
		return err
	}
	if out == "json" {
		if jobs == nil {
			jobs = []remote.JobInfo{}
		}
		return output.Result(io.Out, jobs, output.IsTerminal(io.Out))
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPLUGIN\tRELEASE\tACTION\tAGENT\tSTARTED\tDURATION")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Status, dash(j.Plugin), dash(j.Release), dash(j.Action), agentName(j), when(j.Started), duration(j.Started, j.Completed))
	}
	return tw.Flush()
}

func agentName(j remote.JobInfo) string {
	switch {
	case j.AgentName != "":
		return j.AgentName
	case j.AgentID != 0:
		return fmt.Sprint(j.AgentID)
	}
	return "-"
}

// remoteJobGet is `plugin job get` of a backend job.
func remoteJobGet(ctx context.Context, io *IOStreams, job *remote.Job, out string) error {
	info, err := job.Info(ctx)
	if err != nil {
		return err
	}
	if out == "json" {
		return output.Result(io.Out, info, output.IsTerminal(io.Out))
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\nStatus:\t%s\n", info.ID, info.Status)
	if info.QueuePosition > 0 {
		fmt.Fprintf(tw, "Queue:\t%d (%s)\n", info.QueuePosition, dash(info.QueueReason))
	}
	if info.Status == synapse.JobFailed {
		msg := info.Error
		if msg == "" {
			var r struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(info.Result, &r) == nil {
				msg = r.Error
			}
		}
		if first, _, _ := strings.Cut(msg, "\n"); first != "" {
			fmt.Fprintf(tw, "Error:\t%s\n", first)
		}
	}
	if info.ErrorType != "" {
		fmt.Fprintf(tw, "Error type:\t%s\n", info.ErrorType)
	}
	if p := info.Progress; p != nil && p.Current.Overall > 0 {
		fmt.Fprintf(tw, "Progress:\t%.0f%%\n", p.Current.Overall)
	}
	fmt.Fprintf(tw, "Plugin:\t%s\nRelease:\t%s\nAction:\t%s\nAgent:\t%s\nCreated:\t%s\nStarted:\t%s\nDuration:\t%s\nDashboard:\t%s\n",
		dash(info.Plugin), dash(info.Release), dash(info.Action), agentName(*info), when(info.Created), when(info.Started), duration(info.Started, info.Completed), job.DashboardURL())
	return tw.Flush()
}

// remoteJobLogs is `plugin job logs` (without -f) of a backend job.
func remoteJobLogs(ctx context.Context, io *IOStreams, job *remote.Job, out string) error {
	lines, err := job.Logs(ctx)
	if err != nil {
		return err
	}
	if out == "json" {
		return output.Result(io.Out, map[string]string{"logs": strings.Join(lines, "\n")}, output.IsTerminal(io.Out))
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(io.Out, l); err != nil {
			return err
		}
	}
	return nil
}

// reportEnded reports a stop of a job that had ended with status: -o json
// {"id": ID, "ended_STATUS": true}, else text, a format of the ID and the
// status.
func reportEnded(io *IOStreams, out, id string, status synapse.JobStatus, text string) error {
	if out == "json" {
		return report(io, out, id, "ended_"+strings.ToLower(string(status)))
	}
	_, err := fmt.Fprintf(io.Out, text, id, status)
	return err
}

// remoteJobStop is `plugin job stop` of a backend job: POST
// /v2/jobs/{id}/stop/, then waits until it has stopped.
func remoteJobStop(ctx context.Context, io *IOStreams, job *remote.Job, out string) error {
	before, err := job.Info(ctx)
	if err != nil {
		return err
	}
	if before.Status.Terminal() {
		return reportEnded(io, out, job.ID(), before.Status, "Job %s had already ended (%s); nothing to stop.\n")
	}
	if err := job.Stop(ctx); err != nil {
		return err
	}
	info, err := job.Info(ctx)
	if err != nil {
		return err
	}
	if info.Status != synapse.JobStopped {
		// It ended on its own between the two calls.
		return reportEnded(io, out, job.ID(), info.Status, "Job %s ended (%s) before it could be stopped.\n")
	}
	return report(io, out, job.ID(), "stopped")
}
