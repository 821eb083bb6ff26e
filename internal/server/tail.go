package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/store"
)

// Follower limits and pacing of GET /jobs/{id}/tail_console_logs/.
const (
	maxFollowers      = 100 // per job (default of API.MaxFollowers); more get 429 with Retry-After
	tailPoll          = time.Second
	tailBatch         = 500              // console lines read from the store at a time
	heartbeatInterval = 15 * time.Second // an empty line keeps proxies from closing an idle stream
	consoleGrace      = 10 * time.Second // after the end, how long lines may still come without CloseConsole (no agent here)
	agentGrace        = 10 * time.Minute // the same for a job of an agent here, which closes the log itself
)

// writeTimeout is how long a frame waits for a follower that does not
// read before the follower is dropped (a variable for tests).
var writeTimeout = 30 * time.Second

// ringBytes bounds the encoded frames a job's hub keeps for its followers
// (at least its last batch is kept, however large): a follower further
// behind reads from the store until it is within them (a variable for
// tests).
var ringBytes = 4 << 20

// The followers of a job share one hub: one reader of the job's console
// log in the store, woken by the store's changes (store.WatchJob) rather
// than polling per follower, that encodes each line's frame once and
// keeps the recent frames in a ring from which every follower writes them.
// A follower behind the ring (one that fell behind, or resumes from an
// older line) reads from the store itself until it is within the ring.
// The hub goes (its reader stops, its ring is freed) when its last
// follower leaves.

// hubs are the hubs of the jobs that have followers, by job ID.
type hubs struct {
	mu        sync.Mutex
	m         map[string]*hub
	readers   atomic.Int32 // hub readers running (for tests)
	fromStore atomic.Int64 // lines followers behind a ring read from the store themselves (for tests)
}

// join adds a follower to the job's hub, starting the hub when it is the
// first; false when the job has limit followers already.
func (hs *hubs) join(a *API, id string, limit int) (*hub, bool) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h := hs.m[id]
	if h == nil {
		if hs.m == nil {
			hs.m = map[string]*hub{}
		}
		ctx, cancel := context.WithCancel(context.Background())
		h = &hub{id: id, hubs: hs, cancel: cancel, wake: make(chan struct{})}
		hs.m[id] = h
		hs.readers.Add(1)
		go func() {
			defer hs.readers.Add(-1)
			h.run(ctx, a)
		}()
	}
	if h.followers >= limit {
		return nil, false
	}
	h.followers++
	return h, true
}

// leave removes a follower; the last one stops the hub and frees it.
func (hs *hubs) leave(h *hub) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h.followers--; h.followers > 0 {
		return
	}
	if hs.m[h.id] == h {
		delete(hs.m, h.id)
	}
	h.cancel()
}

// count is how many followers the job has.
func (hs *hubs) count(id string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h := hs.m[id]; h != nil {
		return h.followers
	}
	return 0
}

// hub is the shared reader of one job's console log (see hubs).
type hub struct {
	id        string
	hubs      *hubs
	cancel    context.CancelFunc
	followers int // guarded by hubs.mu

	mu      sync.Mutex
	wake    chan struct{} // closed, and replaced, at each change below
	started bool          // from and last are known
	ring    []*chunk      // the frames of the lines after from, up to last
	size    int           // bytes of frames in ring
	from    int64
	last    int64
	done    bool   // the job has ended, its log is closed, and every line is in ring
	status  string // the job's final status, once done
	failed  bool   // reading the store failed: the followers end
}

// chunk is the frames of one batch of lines read from the store, one
// after another in data: the frame of line seqs[i] ends at ends[i].
type chunk struct {
	seqs []int64
	ends []int
	data []byte
}

// update changes the hub under its lock and wakes its followers.
func (h *hub) update(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn()
	close(h.wake)
	h.wake = make(chan struct{})
}

// run reads the job's console log as it grows into the ring, until the
// job has ended with its log closed and read, reading the store fails, or
// ctx ends (the last follower left).
func (h *hub) run(ctx context.Context, a *API) {
	changed, stop := a.Store.WatchJob(h.id)
	defer stop()
	poll := a.TailPoll
	if poll <= 0 {
		poll = tailPoll
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var last int64
	for first := true; ; first = false {
		// The status is read before the lines: a job that ended after its
		// last line was written has no line after this read.
		job, err := a.Store.GetJob(ctx, h.id)
		if err != nil {
			h.fail()
			return
		}
		if first {
			// Start with the last batch already written: followers that
			// join a running job find the lines of the last moments here.
			last = max(0, job.ConsoleSeq-tailBatch)
			h.update(func() { h.started, h.from, h.last = true, last, last })
		}
		for {
			lines, err := a.Store.Console(ctx, h.id, last, tailBatch)
			if err != nil {
				h.fail()
				return
			}
			if len(lines) > 0 {
				c := encodeChunk(lines)
				last = lines[len(lines)-1].Seq
				h.update(func() { h.add(c, last) })
			}
			if len(lines) < tailBatch {
				break
			}
		}
		// Ended, and the agent has written its last line (or had long
		// enough to: an agent that never closes the log must not hold
		// followers forever).
		closed := job.ConsoleClosed || job.CompletedAt != nil && time.Since(*job.CompletedAt) > a.consoleGrace(job.Agent)
		if store.Terminal(job.Status) && closed {
			h.update(func() { h.done, h.status = true, job.Status })
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-ticker.C:
		}
	}
}

// add appends c, whose last line is last, to the ring and drops the oldest
// chunks past ringBytes. The caller holds h.mu.
func (h *hub) add(c *chunk, last int64) {
	h.ring = append(h.ring, c)
	h.size += len(c.data)
	h.last = last
	for h.size > ringBytes && len(h.ring) > 1 {
		old := h.ring[0]
		h.ring[0] = nil
		h.ring = h.ring[1:]
		h.size -= len(old.data)
		h.from = old.seqs[len(old.seqs)-1]
	}
}

// fail ends the hub's followers and takes the hub out of the registry, so
// a new follower starts a new one.
func (h *hub) fail() {
	h.update(func() { h.failed = true })
	h.hubs.mu.Lock()
	defer h.hubs.mu.Unlock()
	if h.hubs.m[h.id] == h {
		delete(h.hubs.m, h.id)
	}
}

// framesAfter is the ring's frames of the lines after line after, as
// slices of its chunks (never changed once in the ring). The caller holds
// h.mu, and after is within the ring (h.from <= after < h.last).
func (h *hub) framesAfter(after int64) [][]byte {
	i := len(h.ring)
	for i > 0 && h.ring[i-1].seqs[0] > after {
		i--
	}
	var out [][]byte
	if i > 0 { // the chunk holding line after, unless it is its last
		c := h.ring[i-1]
		if k, _ := slices.BinarySearch(c.seqs, after+1); k == 0 {
			out = append(out, c.data)
		} else if k < len(c.seqs) {
			out = append(out, c.data[c.ends[k-1]:])
		}
	}
	for _, c := range h.ring[i:] {
		out = append(out, c.data)
	}
	return out
}

// encodeChunk encodes the frames of lines.
func encodeChunk(lines []store.ConsoleLine) *chunk {
	c := &chunk{seqs: make([]int64, len(lines)), ends: make([]int, len(lines))}
	for i, l := range lines {
		c.data = appendLogFrame(c.data, l.Seq, l.Line)
		c.seqs[i], c.ends[i] = l.Seq, len(c.data)
	}
	return c
}

// appendLogFrame appends the log frame of console line seq to b: the same
// bytes as dataFrame of {"type": "log", "n": seq, "data": "data: " +
// JSON of {"type": "log", "message": line + "\n"} + "\n\n"}, keys in
// encoding/json's (sorted) order, without a map per line.
func appendLogFrame(b []byte, seq int64, line string) []byte {
	msg, _ := json.Marshal(line + "\n") // a string always encodes
	inner := make([]byte, 0, len(msg)+40)
	inner = append(inner, `data: {"message":`...)
	inner = append(inner, msg...)
	inner = append(inner, `,"type":"log"}`+"\n\n"...)
	data, _ := json.Marshal(string(inner))
	b = append(b, `data: {"data":`...)
	b = append(b, data...)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, `,"type":"log"}`+"\n\n"...)
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
// Lines come from the job's hub (see hubs) as soon as they are stored.
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
	h, ok := a.tails.join(a, id, limit)
	if !ok {
		w.Header().Set("Retry-After", "5")
		return &apiError{http.StatusTooManyRequests, "TOO_MANY_FOLLOWERS", fmt.Sprintf("job %s has %d followers already; retry later", id, limit)}
	}
	defer a.tails.leave(h)
	ctx := r.Context()
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()            // the connection may serve other requests
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8") // without a charset, Python requests decodes text/* as ISO-8859-1
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	lastSent := time.Now()
	// A follower that stops reading is dropped once a frame has waited
	// writeTimeout for it, instead of holding its slot forever.
	send := func(frames ...[]byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				return false
			}
		}
		lastSent = time.Now()
		return rc.Flush() == nil
	}
	if !send([]byte(dataFrame(map[string]any{"type": "connected", "job_id": id}))) {
		return nil
	}
	heartbeat := time.NewTimer(heartbeatInterval)
	defer heartbeat.Stop()
	for {
		h.mu.Lock()
		switch {
		case h.failed:
			h.mu.Unlock()
			return nil // the store failed (or is closing): end the stream
		case h.started && after < h.from:
			// Behind the ring: from the store, until within it.
			h.mu.Unlock()
			lines, err := a.Store.Console(ctx, id, after, tailBatch)
			if err != nil || len(lines) == 0 {
				return nil // the client went away, or the store did
			}
			a.tails.fromStore.Add(int64(len(lines)))
			if !send(encodeChunk(lines).data) {
				return nil
			}
			after = lines[len(lines)-1].Seq
			continue
		case h.started && after < h.last:
			frames, last := h.framesAfter(after), h.last
			h.mu.Unlock()
			if !send(frames...) {
				return nil
			}
			after = last
			continue
		case h.done:
			status := h.status
			h.mu.Unlock()
			send([]byte(dataFrame(map[string]any{"type": "complete", "status": status})))
			return nil
		}
		wake := h.wake
		h.mu.Unlock()
		heartbeat.Reset(heartbeatInterval - time.Since(lastSent))
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-heartbeat.C:
			if !send([]byte("\n")) { // not a ": heartbeat" comment, which the Python CLI would print
				return nil
			}
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
