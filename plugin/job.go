package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/exit"
	"github.com/synapse-sdk/synapse-go/internal/report"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// runJob is `job [ACTION]`, the command of a plugin binary that is the
// entrypoint of a Ray job. It reads the action (unless given), params and
// job ID from the environment, writes
// the JSON event stream to stdout, then the result between the markers, and
// exits non-zero after an error line on failure.
func runJob(set *synapse.ActionSet, args []string, stdout, stderr io.Writer) int {
	// The binary is the only writer of the job's log: the action's stdout
	// and stderr become message events (whole lines, valid UTF-8, split
	// when overlong), so nothing it prints can glue itself to an event, the
	// result markers or the error line, or break Ray's log reader.
	out := &lockedWriter{w: stdout}
	events := synapse.ThrottleProgress(synapse.NewJSONLogger(out))
	realOut, captOut := captureOutput(stdout, 1, "stdout", events)
	out.set(realOut)
	realErr, captErr := captureOutput(stderr, 2, "stderr", events)
	if f, ok := realErr.(*os.File); ok && f != stderr {
		_ = debug.SetCrashOutput(f, debug.CrashOptions{}) // a fatal crash still reaches the log
	}
	stop := func() { captErr.Stop(); captOut.Stop() }
	defer stop()
	jobID := os.Getenv(worker.EnvJobID)
	if jobID == "" {
		jobID = os.Getenv("RAY_JOB_ID")
	}
	// Started by a Synapse backend (synapse server's agents, the platform's):
	// report there too, as the Python SDK's job worker does.
	var rep *report.Reporter
	start := time.Now()
	if host, token := os.Getenv("SYNAPSE_HOST"), os.Getenv("SYNAPSE_ACCESS_TOKEN"); host != "" && token != "" && os.Getenv(worker.EnvJobID) != "" {
		rep = report.New(host, token, jobID, realErr)
		rep.Start(context.Background())
	}
	finish := func(result json.RawMessage, err error) {
		if rep != nil {
			rep.Finish(context.Background(), time.Since(start), result, err)
		}
	}
	fail := func(err error) int {
		stop()
		// The error line carries the stack of a panic; the CLI shows it with
		// -v. It is written before the final status is reported, as the
		// result is, so a reader that sees FAILED finds the line in the log.
		b, _ := json.Marshal(worker.ErrorLine{Type: "error", Error: worker.ToError(err)})
		_, _ = out.Write(append(b, '\n'))
		finish(nil, err)
		return exit.Code(err)
	}
	// `job [ACTION] [inputs=HASH]`: the hash only distinguishes
	// submissions (see jobEntrypoint); it is not used here.
	name := os.Getenv(worker.EnvActionEntrypoint)
	if len(args) > 0 && !strings.HasPrefix(args[0], "inputs=") {
		name = args[0]
	}
	if name == "" {
		return fail(fmt.Errorf("run job: %s is not set; this command runs inside a cluster job started by synapse", worker.EnvActionEntrypoint))
	}
	action, err := set.Lookup(name)
	if err != nil {
		return fail(err)
	}
	params, err := jobParams()
	if err != nil {
		return fail(err)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var logger synapse.Logger = events
	if rep != nil {
		logger = synapse.MultiLogger(events, rep)
	}
	result, err := synapse.NewLocalExecutor(synapse.WithJobID(jobID), synapse.WithLogger(logger)).
		Execute(ctx, action, params)
	events.Flush() // held-back progress, so the caller's progress record ends right
	stop()
	if err != nil {
		return fail(err)
	}
	b, err := json.Marshal(result)
	if err == nil && worker.NeedsWrap(b) {
		b, err = json.Marshal(map[string]json.RawMessage{"result": b})
	}
	if err != nil {
		return fail(&synapse.ExecutionError{Action: action.Name(), JobID: jobID, Err: fmt.Errorf("encode result as JSON: %w", err)})
	}
	_, _ = fmt.Fprintf(out, "%s\n%s\n%s\n", worker.ResultStart, b, worker.ResultEnd)
	finish(b, nil)
	return exit.OK
}

func jobParams() (json.RawMessage, error) {
	if p := os.Getenv(worker.EnvActionParams); p != "" {
		return json.RawMessage(p), nil
	}
	if file := os.Getenv(worker.EnvActionParamsFile); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("run job: read params file: %w", err)
		}
		return b, nil
	}
	return nil, nil // no params: {} (defaults)
}

// lockedWriter serialises writes of whole lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// set points the writer at w.
func (l *lockedWriter) set(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}
