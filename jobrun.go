package synapse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/synapse-sdk/synapse-go/internal/protocol"
)

// Environment variables of a plugin binary run as a cluster job (the names
// match the Python SDK).
const (
	envActionEntrypoint = "SYNAPSE_ACTION_ENTRYPOINT"
	envActionParams     = "SYNAPSE_ACTION_PARAMS"
	envActionParamsFile = "SYNAPSE_ACTION_PARAMS_FILE"
	envJobID            = "SYNAPSE_JOB_ID"
)

// Markers around the result in a job's output. A client takes the last pair.
const (
	resultStart = "__SYNAPSE_RESULT_START__"
	resultEnd   = "__SYNAPSE_RESULT_END__"
)

// maxEnvParams is the longest params JSON passed in SYNAPSE_ACTION_PARAMS;
// longer params travel in a file inside the package.
const maxEnvParams = 32000

// errorLine is the last line a failed job writes: its typed error.
type errorLine struct {
	Type  string          `json:"type"` // "error"
	Error *protocol.Error `json:"error"`
}

// runJob is `job [ACTION]`, the command of a plugin binary that is the
// entrypoint of a Ray job. It reads the action (unless given), params and
// job ID from the environment, writes
// the JSON event stream to stdout, then the result between the markers, and
// exits non-zero after an error line on failure.
func runJob(set *actionSet, args []string, stdout, stderr io.Writer) int {
	out := &lockedWriter{w: stdout}
	fail := func(err error) int {
		b, _ := json.Marshal(errorLine{Type: "error", Error: toWireError(err)})
		_, _ = out.Write(append(b, '\n'))
		fmt.Fprintln(stderr, "Error:", FormatError(err, true))
		return ExitCode(err)
	}
	// `job [ACTION] [inputs=HASH]`: the hash only distinguishes
	// submissions (see jobEntrypoint); it is not used here.
	name := os.Getenv(envActionEntrypoint)
	if len(args) > 0 && !strings.HasPrefix(args[0], "inputs=") {
		name = args[0]
	}
	if name == "" {
		return fail(fmt.Errorf("run job: %s is not set; this command runs inside a cluster job started by synapse", envActionEntrypoint))
	}
	action, err := set.find(name)
	if err != nil {
		return fail(err)
	}
	params, err := jobParams()
	if err != nil {
		return fail(err)
	}
	jobID := os.Getenv(envJobID)
	if jobID == "" {
		jobID = os.Getenv("RAY_JOB_ID")
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cfg := execConfig{env: EnvFromOS(""), jobID: jobID, logger: &throttledLogger{inner: NewJSONLogger(out)}}
	result, err := execute(ctx, cfg, action, params)
	if err != nil {
		return fail(err)
	}
	b, err := json.Marshal(result)
	if err == nil && needsWrap(b) {
		b, err = json.Marshal(map[string]json.RawMessage{"result": b})
	}
	if err != nil {
		return fail(&ExecutionError{Action: action.Name(), JobID: jobID, Err: fmt.Errorf("encode result as JSON: %w", err)})
	}
	_, _ = fmt.Fprintf(out, "%s\n%s\n%s\n", resultStart, b, resultEnd)
	return ExitOK
}

func jobParams() (json.RawMessage, error) {
	if p := os.Getenv(envActionParams); p != "" {
		return json.RawMessage(p), nil
	}
	if file := os.Getenv(envActionParamsFile); file != "" {
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

// throttledLogger passes events to inner, thinning progress as the console
// does (whole-percent changes, category changes, 0% and 100%).
type throttledLogger struct {
	inner    Logger
	mu       sync.Mutex
	throttle progressThrottle
}

func (l *throttledLogger) Handle(e Event) {
	if e.Type == EventProgress {
		l.mu.Lock()
		ok := l.throttle.allow(e, true)
		l.mu.Unlock()
		if !ok {
			return
		}
	}
	l.inner.Handle(e)
}

// needsWrap reports whether a result must travel as {"result": …}: any
// non-object, and an object whose only key is "result" (which a reader
// would otherwise unwrap).
func needsWrap(b []byte) bool {
	if len(b) == 0 || b[0] != '{' {
		return true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return true
	}
	_, only := m["result"]
	return only && len(m) == 1
}
