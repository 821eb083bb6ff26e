package ray

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/synapse-sdk/synapse-go/internal/retry"
)

// tailReadLimit is the largest log frame accepted. The dashboard batches up
// to 10 lines or 20,000 characters per frame but sends a long line whole, so
// coder/websocket's 32 KiB default is too small.
const tailReadLimit = 64 << 20

// Tail streams the job's log text to fn, in order, each character exactly
// once, until the job is terminal and its log is drained (R2).
//
// It reads the WebSocket ws(s)://<address>/api/jobs/<id>/logs/tail (with the
// auth header). Frames are raw text, not aligned to lines. After any close,
// Tail gets the job: if it is terminal and the close was normal, Tail
// returns nil; if it is terminal after an abnormal close, Tail reconnects
// once more to drain the log and then returns; if it is not terminal, Tail
// reconnects (backoff 200ms growing to 5s), riding out a dashboard outage
// (a restart, a network blip) of up to OutageWindow (3 minutes) with the
// job's own state unknown, then gives up with an *OutageError. The
// dashboard restarts the stream at byte 0 on every connect; the bytes
// already delivered are skipped, so no line is shown twice or lost.
//
// An error from fn stops Tail and is returned as is. Cancelling ctx stops
// Tail with the context's error. A 4xx answer to the handshake (such as 404
// for an unknown job, matching ErrJobNotFound) is returned at once.
func (c *Client) Tail(ctx context.Context, id string, fn func(chunk string) error) error {
	if id == "" {
		return errors.New("ray: empty job id")
	}
	path := jobPath(id) + "/logs/tail"
	var (
		delivered int64     // bytes of the log passed to fn
		down      time.Time // when the current streak of failures began (zero: none)
		draining  bool      // the job is terminal; this connect only drains
		backoff   = retry.New(c.backoffMin, c.backoffMax, 2)
		lastErr   error
	)
	// failed records a transient failure and reports whether the outage
	// has lasted longer than the window.
	failed := func() bool {
		if down.IsZero() {
			down = time.Now()
		}
		return time.Since(down) > c.outageWindow
	}
	for {
		conn, err := c.dialTail(ctx, path)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !transient(err) {
				return err
			}
			if failed() {
				return &OutageError{JobID: id, For: time.Since(down), Err: err}
			}
			if err := backoff.Wait(ctx); err != nil {
				return err
			}
			continue
		}
		down = time.Time{}

		n, normal, fnErr, readErr := readTail(ctx, conn, delivered, fn)
		if n > delivered {
			delivered = n
			backoff.Reset()
		}
		if fnErr != nil {
			return fnErr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(readErr, websocket.ErrMessageTooBig) {
			// Reconnecting would hit the same frame again.
			return fmt.Errorf("ray: tailing the log of job %q: a log frame is larger than %d MiB: %w", id, tailReadLimit>>20, readErr)
		}
		if draining {
			return nil
		}
		lastErr = readErr

		// The socket closed: the job's status decides what it meant.
		var job *Job
		for {
			job, err = c.Job(ctx, id)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !transient(err) {
				return err
			}
			if failed() {
				return &OutageError{JobID: id, For: time.Since(down), Err: fmt.Errorf("the log stream ended (%s) and the job's status is unavailable: %w", tailCloseReason(lastErr), err)}
			}
			if err := backoff.Wait(ctx); err != nil {
				return err
			}
		}
		down = time.Time{}
		if job.Status.Terminal() {
			if normal {
				return nil
			}
			// An abnormal close may have cut the end of the log: read it
			// once more from the start, skipping what was delivered.
			draining = true
			continue
		}
		if err := backoff.Wait(ctx); err != nil {
			return err
		}
	}
}

// dialTail opens the log WebSocket. A handshake refused with an HTTP status
// is returned as *HTTPError.
func (c *Client) dialTail(ctx context.Context, path string) (*websocket.Conn, error) {
	conn, resp, err := websocket.Dial(ctx, c.base+path, &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: c.headers(),
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != 0 {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(resp.Body)
			}
			return nil, newHTTPError(http.MethodGet, path, resp, body, c.token != "")
		}
		return nil, c.transportError(ctx, http.MethodGet, path, err)
	}
	conn.SetReadLimit(tailReadLimit)
	return conn, nil
}

// readTail reads one connection until it closes. The stream starts at byte
// 0 of the log; bytes before skip were delivered earlier and are dropped.
// It returns the stream position reached, whether the peer closed with
// status 1000, fn's error if fn failed, and the error that ended reading.
func readTail(ctx context.Context, conn *websocket.Conn, skip int64, fn func(string) error) (pos int64, normal bool, fnErr, readErr error) {
	defer conn.CloseNow()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return max(pos, skip), websocket.CloseStatus(err) == websocket.StatusNormalClosure, nil, err
		}
		start, end := pos, pos+int64(len(data))
		pos = end
		if end <= skip {
			continue
		}
		chunk := data
		if start < skip {
			chunk = data[skip-start:]
		}
		if len(chunk) == 0 {
			continue
		}
		if err := fn(string(chunk)); err != nil {
			return pos, false, err, nil
		}
	}
}

// tailCloseReason describes how a tail connection ended, for errors.
func tailCloseReason(err error) string {
	if err == nil {
		return "no error"
	}
	if s := websocket.CloseStatus(err); s != -1 {
		return fmt.Sprintf("close status %d", int(s))
	}
	return strings.TrimSpace(err.Error())
}

// OutageError is a log tail that gave up: the dashboard did not answer for
// longer than the client's outage window. The job itself may well still be
// running.
type OutageError struct {
	JobID string
	For   time.Duration // how long the dashboard did not answer
	Err   error         // the last failure
}

func (e *OutageError) Error() string {
	return fmt.Sprintf("ray: lost the log of job %s: the Ray dashboard did not answer for %v (%v); the job may still be running: follow it again with `synapse plugin job logs -f %s`", e.JobID, e.For.Round(time.Second), e.Err, e.JobID)
}

// Unwrap returns the last failure.
func (e *OutageError) Unwrap() error { return e.Err }

// TailToEnd is Tail that ends as soon as the job does: Ray's log tail
// delivers a job's last lines seconds after Ray reports the job ended (its
// log monitor's pace), while the stored log (Logs) has them at once. So the
// job's status is polled beside the tail (every 0.1 s, growing to 1 s), and
// once it is terminal the rest of the stored log goes to fn and TailToEnd
// returns nil. fn sees each character once, in order, as with Tail. When
// the stored log does not start with what the tail delivered (or the log is
// over 16 MiB), the tail drains it as Tail does. Errors are Tail's.
func (c *Client) TailToEnd(ctx context.Context, id string, fn func(chunk string) error) error {
	tailCtx, cancelTail := context.WithCancel(ctx)
	defer cancelTail()
	var (
		mu        sync.Mutex
		delivered strings.Builder // what fn got, to find the rest
		tooLarge  bool            // delivered was not kept: the tail drains it
		ended     bool            // the stored log completed it
		tailDone  bool            // the tail returned
		fnErr     error           // fn's error on the stored log's rest
		early     = make(chan struct{})
	)
	go func() {
		defer close(early)
		if !c.waitTerminal(tailCtx, id) {
			return
		}
		logs, err := c.Logs(tailCtx, id)
		if err != nil {
			return // the tail drains it
		}
		mu.Lock()
		defer mu.Unlock()
		if tailDone || tooLarge || !strings.HasPrefix(logs, delivered.String()) {
			return
		}
		if rest := logs[delivered.Len():]; rest != "" {
			fnErr = fn(rest)
		}
		ended = true
		cancelTail()
	}()
	err := c.Tail(tailCtx, id, func(chunk string) error {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return nil
		}
		if err := fn(chunk); err != nil {
			return err
		}
		if tooLarge = tooLarge || delivered.Len()+len(chunk) > maxTailKept; tooLarge {
			delivered.Reset()
		} else {
			delivered.WriteString(chunk)
		}
		return nil
	})
	mu.Lock()
	tailDone = true
	if ended {
		err = fnErr // stopped tailing early: the job had ended
	}
	mu.Unlock()
	cancelTail()
	<-early
	return err
}

// maxTailKept is the most log text TailToEnd keeps to complete it from
// the stored log; a longer log is drained by the tail alone.
const maxTailKept = 16 << 20

// waitTerminal polls the job's status until it is terminal (true) or ctx
// ends (false). Errors are ridden out: the tail ends the wait anyway.
func (c *Client) waitTerminal(ctx context.Context, id string) bool {
	for b := retry.New(100*time.Millisecond, time.Second, 1.5); ; {
		job, err := c.Job(ctx, id)
		if err == nil && job.Status.Terminal() {
			return true
		}
		if ctx.Err() != nil || b.Wait(ctx) != nil {
			return false
		}
	}
}
