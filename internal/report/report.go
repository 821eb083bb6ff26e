// Package report sends a job's run to a Synapse backend over the wire the
// Python SDK's job worker uses (its JobLogger): PATCH /jobs/{id}/ with the
// status, the progress and metrics records (coalesced, at most about once
// a second) and the final result, and log entries batched to POST /logs/.
// A plugin binary's `job` command reports this way when SYNAPSE_HOST,
// SYNAPSE_ACCESS_TOKEN and SYNAPSE_JOB_ID are set. Reporting never fails
// the action: failures are warned about once, and losses counted.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	synapse "github.com/synapse-sdk/synapse-go"
	"github.com/synapse-sdk/synapse-go/internal/retry"
	"github.com/synapse-sdk/synapse-go/internal/worker"
)

// Limits of the log queue (the Python JobLogger's).
const (
	batchSize     = 200  // flush at this many queued entries
	maxQueue      = 2000 // older entries are dropped beyond it, and counted
	maxPerRequest = 1000
)

// Reporter is a synapse.Logger that reports one job's run to a backend.
type Reporter struct {
	host, token, jobID string
	client             *http.Client
	warn               io.Writer
	// Interval is the least time between two record updates (1s), and
	// LogInterval between two log flushes (2s).
	interval, logInterval time.Duration
	// Deadline bounds the retries of the final status (default 2 minutes).
	deadline time.Duration

	tracker *synapse.ProgressTracker

	mu       sync.Mutex
	metrics  map[string]map[string]any
	dirty    bool // records changed since the last send
	logs     []map[string]any
	dropped  int
	warned   bool
	lastSend time.Time
	lastLogs time.Time
	wake     chan struct{}
	done     chan struct{}
	stopped  chan struct{}
}

// New returns a reporter for job jobID on the backend at host (with or
// without a trailing slash), authenticating with token. Warnings go to
// warn. Start begins reporting; Finish ends it.
func New(host, token, jobID string, warn io.Writer) *Reporter {
	return &Reporter{
		host: strings.TrimRight(host, "/"), token: token, jobID: jobID, warn: warn,
		client:   &http.Client{Timeout: 15 * time.Second},
		interval: time.Second, logInterval: 2 * time.Second, deadline: 2 * time.Minute,
		tracker: synapse.NewProgressTracker(), metrics: map[string]map[string]any{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
	}
}

// Start reports the job RUNNING and starts the background sender.
func (r *Reporter) Start(ctx context.Context) {
	_ = r.patch(ctx, map[string]any{"status": "RUNNING"})
	go r.loop()
}

// Handle takes an event of the run.
func (r *Reporter) Handle(e synapse.Event) {
	r.tracker.Handle(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Type {
	case synapse.EventProgress, synapse.EventSteps:
		r.dirty = true
		return
	case synapse.EventMetrics:
		r.metrics[e.Category] = maps.Clone(e.Values)
		r.dirty = true
		return
	}
	entry := logEntry(e, r.jobID)
	if entry == nil {
		return
	}
	r.logs = append(r.logs, entry)
	if n := len(r.logs) - maxQueue; n > 0 {
		r.logs = r.logs[n:]
		r.dropped += n
	}
	if len(r.logs) >= batchSize {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// logEntry is the backend's form of e (POST /logs/), nil for events that
// are not log entries.
func logEntry(e synapse.Event, job string) map[string]any {
	entry := map[string]any{"datetime": e.Time.Format(time.RFC3339Nano), "job": job, "level": e.Level.String()}
	if e.Category != "" {
		entry["step"] = e.Category
	}
	switch e.Type {
	case synapse.EventMessage:
		entry["event"], entry["data"] = "message", map[string]any{"content": e.Message}
	case synapse.EventLog:
		entry["event"], entry["data"] = e.Event, nonNil(e.Data)
	case synapse.EventMetric:
		entry["event"], entry["data"] = "metric", map[string]any{"category": e.Category, "key": e.Key, "value": jsonValue(e.Value), "metrics": nonNil(e.Data)}
	case synapse.EventVisualization:
		data := maps.Clone(e.Data)
		if data == nil {
			data = map[string]any{}
		}
		data["category"] = e.Category
		entry["event"], entry["data"] = "visualization", data
	case synapse.EventTrials:
		entry["event"], entry["data"] = "trials", nonNil(e.Data)
	default:
		return nil
	}
	if e.File != "" {
		entry["file"] = e.File
	}
	return entry
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// jsonValue keeps a metric value JSON can hold; NaN and ±Inf become their
// names.
func jsonValue(v float64) any {
	if b, err := json.Marshal(v); err != nil || len(b) == 0 {
		return fmt.Sprint(v)
	}
	return v
}

func (r *Reporter) loop() {
	defer close(r.stopped)
	tick := time.NewTicker(r.interval / 2)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		case <-r.wake:
		}
		r.flush(context.Background(), false)
	}
}

// flush sends what is due (everything with force).
func (r *Reporter) flush(ctx context.Context, force bool) {
	now := time.Now()
	r.mu.Lock()
	var records map[string]any
	if r.dirty && (force || now.Sub(r.lastSend) >= r.interval) {
		records = r.records()
		r.dirty, r.lastSend = false, now
	}
	var logs []map[string]any
	if len(r.logs) > 0 && (force || len(r.logs) >= batchSize || now.Sub(r.lastLogs) >= r.logInterval) {
		logs, r.logs = r.logs, nil
		r.lastLogs = now
	}
	r.mu.Unlock()
	if records != nil {
		_ = r.patch(ctx, records)
	}
	for len(logs) > 0 {
		n := min(len(logs), maxPerRequest)
		if err := r.send(ctx, "POST", "/logs/", logs[:n]); err != nil {
			r.mu.Lock()
			r.dropped += len(logs)
			r.mu.Unlock()
			return
		}
		logs = logs[n:]
	}
}

// records is the PATCH body of the progress and metrics records; r.mu is
// held.
func (r *Reporter) records() map[string]any {
	steps := map[string]any{}
	for k, v := range r.metrics {
		steps[k] = v
	}
	return map[string]any{"progress_record": r.tracker.Record(), "metrics_record": map[string]any{"record": map[string]any{"steps": steps}}}
}

// Finish ends the reporting: it sends what is queued, then the final
// status with the result (SUCCEEDED; non-objects wrapped {"result": v}) or
// the error (FAILED, result {"error": …}), retrying the final status until
// the deadline.
func (r *Reporter) Finish(ctx context.Context, elapsed time.Duration, result json.RawMessage, runErr error) {
	close(r.done)
	<-r.stopped
	r.flush(ctx, true)
	r.mu.Lock()
	dropped := r.dropped
	r.mu.Unlock()
	if dropped > 0 {
		_ = r.send(ctx, "POST", "/logs/", []map[string]any{{"event": "joblog_loss", "job": r.jobID, "level": "warning",
			"datetime": time.Now().Format(time.RFC3339Nano), "data": map[string]any{"message": fmt.Sprintf("%d log entries were not delivered", dropped), "dropped": dropped}}})
	}
	r.tracker.Finish(elapsed)
	body := map[string]any{"progress_record": r.tracker.Record(), "status": "SUCCEEDED", "result": result}
	if runErr != nil {
		kind := worker.ToError(runErr).Kind
		body["status"], body["result"] = "FAILED", map[string]any{"error": runErr.Error()}
		body["meta"] = map[string]any{"error": map[string]any{"error_type": kind, "message": runErr.Error()}}
	}
	ctx, cancel := context.WithTimeout(ctx, r.deadline)
	defer cancel()
	b := retry.New(500*time.Millisecond, 10*time.Second, 2)
	for {
		err := r.patch(ctx, body)
		if err == nil || !retryable(err) {
			return
		}
		if b.Wait(ctx) != nil {
			r.warnf("report the final status of job %s: gave up after %s: %s", r.jobID, minutes(r.deadline), plain(err))
			return
		}
	}
}

func (r *Reporter) patch(ctx context.Context, body map[string]any) error {
	return r.send(ctx, "PATCH", "/jobs/"+r.jobID+"/", body)
}

// statusError is an answer that is not 2xx.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("HTTP %d %s", e.status, http.StatusText(e.status))
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// retryable: connection failures and 5xx (not 4xx: the request is wrong,
// or the job has ended).
func retryable(err error) bool {
	se, ok := err.(*statusError)
	return !ok || se.status >= 500
}

func (r *Reporter) send(ctx context.Context, method, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, r.host+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Synapse-Access-Token", "Token "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		r.warnf("report to %s: cannot reach the server (%s); retrying for up to %s", r.host, unreachable(err), minutes(r.deadline))
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := &statusError{resp.StatusCode, strings.TrimSpace(string(msg))}
		if retryable(err) {
			r.warnf("report to %s%s: %v; retrying for up to %s", r.host, path, err, minutes(r.deadline))
		} else {
			r.warnf("report to %s%s: %v", r.host, path, err)
		}
		return err
	}
	return nil
}

// warnf warns once per run: reporting problems must not flood the log.
func (r *Reporter) warnf(format string, args ...any) {
	r.mu.Lock()
	first := !r.warned
	r.warned = true
	r.mu.Unlock()
	if first && r.warn != nil {
		fmt.Fprintf(r.warn, "WARNING: "+format+" (the run goes on; later reporting problems are not shown)\n", args...)
	}
}

// unreachable says in plain words why a request did not reach the backend
// ("connection refused", "connection reset", "timed out", "host NAME not
// found", …), without Go's URL-error text (`Patch "http://…": dial tcp
// …: …`).
func unreachable(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "host " + dns.Name + " not found"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	// The innermost error, without the URL and dial details around it.
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// plain is err's text for a warning: unreachable's words for a request
// that did not reach the backend, else err's own text.
func plain(err error) string {
	if _, ok := err.(*statusError); ok {
		return err.Error()
	}
	return "cannot reach the server (" + unreachable(err) + ")"
}

// minutes is d in words: "2 minutes", "1 minute", else d's own format.
func minutes(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "1 minute"
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
