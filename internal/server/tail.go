package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// Follower limits of GET /jobs/{id}/tail_console_logs/.
const (
	maxFollowers      = 100 // per job (default of API.MaxFollowers); more get 429 with Retry-After
	tailPoll          = 200 * time.Millisecond
	heartbeatInterval = 15 * time.Second // an empty line keeps proxies from closing an idle stream
	consoleGrace      = 10 * time.Second // after the end, how long lines may still come without CloseConsole (no agent here)
	agentGrace        = 10 * time.Minute // the same for a job of an agent here, which closes the log itself
)

// followers counts the open tails per job.
// writeTimeout is how long a frame waits for a follower that does not
// read before the follower is dropped (a variable for tests).
var writeTimeout = 30 * time.Second

type followers struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *followers) add(job string, limit int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	if f.n[job] >= limit {
		return false
	}
	f.n[job]++
	return true
}

func (f *followers) done(job string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[job]--; f.n[job] <= 0 {
		delete(f.n, job)
	}
}

// tail is GET /jobs/{id}/tail_console_logs/: the job's console log as
// Server-Sent Events in the Synapse backend's frames, which the Python
// CLI parses:
//
//	data: {"type": "connected", "job_id": ID}
//	data: {"type": "log", "n": SEQ, "data": "data: {\"type\": \"log\", \"message\": \"LINE\\n\"}\n\n"}
//	data: {"type": "complete", "status": STATUS}
//
// with an empty line as the heartbeat while nothing happens. The stream
// has no id: or comment lines: the Python CLI (synapse-sdk 2026.2.17)
// prints every line that does not start with "data: " as it is. Each log
// frame carries its line's number in "n" (1-based; the Python CLI ignores
// the key) instead: a client reconnecting with "Last-Event-ID: N" or
// "?after=N" resumes after line N (an extension of synapse-go's; the
// header wins when both are given). The stream ends with "complete" once
// the job has ended and every line was sent, or when the client goes away.
func (a *API) tail(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.getJob(r); err != nil {
		return err
	}
	after, err := resumeAfter(r)
	if err != nil {
		return err
	}
	limit := a.MaxFollowers
	if limit <= 0 {
		limit = maxFollowers
	}
	if !a.tails.add(id, limit) {
		w.Header().Set("Retry-After", "5")
		return &apiError{http.StatusTooManyRequests, "TOO_MANY_FOLLOWERS", fmt.Sprintf("job %s has %d followers already; retry later", id, limit)}
	}
	defer a.tails.done(id)
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()            // the connection may serve other requests
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8") // without a charset, Python requests decodes text/* as ISO-8859-1
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A follower that stops reading is dropped once a frame has waited
	// writeTimeout for it, instead of holding its slot forever.
	send := func(frame string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprint(w, frame); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(dataFrame(map[string]any{"type": "connected", "job_id": id})) {
		return nil
	}
	poll := a.TailPoll
	if poll <= 0 {
		poll = tailPoll
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	lastSent := time.Now()
	for {
		// The status is read before the lines: a job that ended after its
		// last line was written has no line after this read.
		job, err := a.Store.GetJob(r.Context(), id)
		if err != nil {
			return nil // the client went away, or the store did: end the stream
		}
		lines, err := a.Store.Console(r.Context(), id, after, 500)
		if err != nil {
			return nil
		}
		var b strings.Builder
		for _, l := range lines {
			inner, _ := json.Marshal(map[string]string{"type": "log", "message": l.Line + "\n"})
			b.WriteString(dataFrame(map[string]any{"type": "log", "n": l.Seq, "data": "data: " + string(inner) + "\n\n"}))
			after = l.Seq
		}
		if b.Len() > 0 {
			if !send(b.String()) {
				return nil
			}
			lastSent = time.Now()
			if len(lines) == 500 {
				continue // more waiting
			}
		}
		// Ended, and the agent has written its last line (or had long
		// enough to: an agent that never closes the log must not hold
		// followers forever).
		closed := job.ConsoleClosed || job.CompletedAt != nil && time.Since(*job.CompletedAt) > a.consoleGrace(job.Agent)
		if store.Terminal(job.Status) && closed && len(lines) < 500 {
			send(dataFrame(map[string]any{"type": "complete", "status": job.Status}))
			return nil
		}
		if time.Since(lastSent) >= heartbeatInterval {
			if !send("\n") { // not a ": heartbeat" comment, which the Python CLI would print
				return nil
			}
			lastSent = time.Now()
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-ticker.C:
		}
	}
}

// consoleGrace is how long after a job's end its console log may still
// grow although not closed: an agent of this server always closes it
// (CloseConsole) once its last line is in, however far behind the job's
// own report it is, so its followers wait long; a job no agent here
// follows any more gets consoleGrace.
func (a *API) consoleGrace(agent string) time.Duration {
	if _, ok := a.Runners[agent]; ok {
		return agentGrace
	}
	return consoleGrace
}

// dataFrame is one SSE event holding v as JSON.
func dataFrame(v any) string {
	b, _ := json.Marshal(v)
	return "data: " + string(b) + "\n\n"
}

// resumeAfter is the line number a follower resumes after: its
// Last-Event-ID header, else its "after" query parameter, else 0.
func resumeAfter(r *http.Request) (int64, error) {
	name, v := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if v == "" {
		name, v = "after", r.URL.Query().Get("after")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &apiError{http.StatusBadRequest, "INVALID_PARAMETER", fmt.Sprintf("%s %q: want a line number (the \"n\" of a log frame of this stream)", name, v)}
	}
	return n, nil
}
