package backend

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/retry"
)

// maxStreamLine bounds one line of an event stream: a console line of 8
// MiB (synapse server's longest) JSON-escaped twice fits.
const maxStreamLine = 64 << 20

// TailConsole follows a job's console log, GET
// /jobs/{id}/tail_console_logs/ (Server-Sent Events in the backend's
// frames: "connected", "log" frames whose data is itself a "data: {…}"
// line holding the console line in its message, "complete", "error", and
// ": heartbeat" comments), and passes each line after line number after
// (0 for all) to fn, in order, each once.
//
// A stream that drops (or sends nothing, not even a heartbeat, for two
// minutes) is reopened with backoff: with "Last-Event-ID: N" when the
// backend numbers its lines (synapse server's "n" key of a log frame, or
// standard SSE id: lines), so it resumes after line N; otherwise the backend sends the log from its start again
// and the lines already passed are skipped. 5xx answers and 429/503 with
// Retry-After are retried the same way, for up to 3 minutes without a
// working stream; other error answers end it (*HTTPError).
//
// TailConsole returns nil on "complete" (the job has ended and every line
// was sent), a *StreamError on an "error" frame, fn's error as it is when
// fn fails, and ctx's error, wrapped, soon after ctx ends.
func (c *Client) TailConsole(ctx context.Context, id string, after int64, fn func(Line) error) error {
	op := "tail console log of job " + id
	if id == "" {
		return errors.New("tail console log: no job ID")
	}
	t := &tailer{c: c, id: id, fn: fn, last: after}
	if after > 0 {
		t.resume = strconv.FormatInt(after, 10)
	}
	bo := retry.New(c.tailFirst, c.tailMax, 2)
	var failing time.Time // when the streams started failing; zero while one works
	for {
		wait, err := t.connect(ctx, op)
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var fatal *fatalError
		switch {
		case errors.As(err, &fatal):
			return fatal.err
		case t.healthy:
			bo.Reset()
			failing = time.Time{}
		}
		if failing.IsZero() {
			failing = time.Now()
		} else if time.Since(failing) > c.tailOutage {
			return fmt.Errorf("%s: no working stream for %s, giving up: %w", op, c.tailOutage, err)
		}
		if wait <= 0 {
			wait = bo.Next()
		}
		if err := retry.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
}

// fatalError ends TailConsole with err (nil on "complete").
type fatalError struct{ err error }

// Error implements error.
func (e *fatalError) Error() string {
	if e.err == nil {
		return "complete"
	}
	return e.err.Error()
}

// tailer is the state of one TailConsole across its streams.
type tailer struct {
	c      *Client
	id     string
	fn     func(Line) error
	last   int64  // the number of the last line passed to fn (or skipped as before after)
	resume string // the Last-Event-ID to send; "" for none
	// healthy is set by a stream that worked: it passed a line, or stayed
	// open for a while.
	healthy bool
}

// connect opens one stream and reads it to its end. It returns a
// *fatalError when TailConsole must end, else why the stream ended and how
// long to wait before the next (0: the backoff's).
func (t *tailer) connect(ctx context.Context, op string) (time.Duration, error) {
	t.healthy = false
	c := t.c
	r := request{op: op, method: http.MethodGet, path: "/jobs/" + seg(t.id) + "/tail_console_logs/", stream: true,
		header: func(h http.Header) {
			if t.resume != "" {
				h.Set("Last-Event-ID", t.resume)
			}
		}}
	resp, _, err := c.send(ctx, r)
	if err != nil {
		return 0, &UnreachableError{Op: op, Host: c.host, Err: c.secrets.wrap(cause(err))}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		he := c.httpError(r, resp)
		if retryable(resp.StatusCode, resp.Header) {
			wait, _ := retryAfter(resp.Header, c.maxRetryAfter)
			return wait, he
		}
		return 0, &fatalError{he}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return 0, &fatalError{fmt.Errorf("%s: the backend did not answer with an event stream (Content-Type %q): is %s a Synapse backend?", op, resp.Header.Get("Content-Type"), c.host)}
	}
	opened := time.Now()
	err = t.read(resp.Body)
	if time.Since(opened) >= c.tailMax {
		t.healthy = true
	}
	var fatal *fatalError
	switch {
	case errors.As(err, &fatal):
		return 0, err
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return 0, fmt.Errorf("%s: the stream ended before the job's end", op)
	case errors.Is(err, errIdle):
		return 0, fmt.Errorf("%s: the stream sent nothing for %s", op, c.tailIdle)
	}
	return 0, fmt.Errorf("%s: the stream broke: %w", op, c.secrets.wrap(cause(err)))
}

// event is one Server-Sent Event.
type event struct {
	id    string
	hasID bool
	data  []string
}

// read reads a stream's events until it ends. pos counts the log lines of
// this stream that had no id: a backend without ids sends the log from
// its start on each stream.
func (t *tailer) read(body io.Reader) error {
	br := bufio.NewReaderSize(body, 64<<10)
	var pos int64
	var ev event
	sawIDs := false
	for {
		line, err := readLine(br)
		if err != nil {
			if !sawIDs && pos > 0 {
				t.resume = "" // this backend does not number its lines
			}
			return err
		}
		switch {
		case line == "":
			if len(ev.data) > 0 {
				if err := t.dispatch(&ev, &pos); err != nil {
					return err
				}
				if ev.hasID {
					sawIDs = true
				}
			}
			ev = event{}
		case line[0] == ':': // a comment: heartbeat
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "data":
				ev.data = append(ev.data, value)
			case "id":
				if !strings.ContainsRune(value, 0) {
					ev.id, ev.hasID = value, true
				}
			}
		}
	}
}

// readLine reads one line of a stream, without its end (\n, \r\n).
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxStreamLine {
			return "", &fatalError{fmt.Errorf("tail console log: a line of the stream is over %d MiB", maxStreamLine>>20)}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err // a line cut by the end of the stream is dropped
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r"), nil
	}
}

// frame is the JSON of an event's data.
type frame struct {
	Type    string          `json:"type"`
	Data    json.RawMessage `json:"data"`
	Message *string         `json:"message"`
	Status  string          `json:"status"`
	Error   json.RawMessage `json:"error"`
	Detail  string          `json:"detail"`
	N       *int64          `json:"n"` // synapse server's line number of a log frame
}

// dispatch handles one event. A log frame's "n" (synapse server's line
// number) counts as its id.
func (t *tailer) dispatch(ev *event, pos *int64) error {
	data := strings.Join(ev.data, "\n")
	var f frame
	if json.Unmarshal([]byte(data), &f) != nil {
		return t.line(*ev, pos, data) // not the backend's JSON: a line as it is, as the Python CLI prints it
	}
	switch strings.ToLower(f.Type) {
	case "log":
		text, complete := logText(f)
		if complete {
			return &fatalError{nil}
		}
		if f.N != nil && !ev.hasID {
			ev.id, ev.hasID = strconv.FormatInt(*f.N, 10), true
		}
		return t.line(*ev, pos, text)
	case "complete":
		return &fatalError{nil}
	case "error":
		msg := f.Detail
		if f.Message != nil {
			msg = *f.Message
		}
		if msg == "" {
			msg = refOf(f.Error)
		}
		if msg == "" {
			msg = data
		}
		return &fatalError{&StreamError{JobID: t.id, Message: t.c.secrets.scrub(msg)}}
	}
	return nil // "connected", and frames of kinds this client does not know
}

// logText is the console text of a log frame: its data is a string
// "data: {"type": "log", "message": LINE}\n\n" (parsed again, as the Python
// CLI does), or an object, or the frame has the message itself. complete
// reports an inner "complete".
func logText(f frame) (text string, complete bool) {
	inner := []byte(nonNull(f.Data))
	var s string
	if json.Unmarshal(inner, &s) == nil {
		rest, ok := strings.CutPrefix(s, "data:")
		if !ok {
			return trimNewline(s), false
		}
		inner = []byte(strings.TrimRight(strings.TrimPrefix(rest, " "), "\r\n"))
	}
	if len(inner) == 0 {
		if f.Message != nil {
			return trimNewline(*f.Message), false
		}
		return "", false
	}
	var in struct {
		Type    string  `json:"type"`
		Message *string `json:"message"`
	}
	if json.Unmarshal(inner, &in) != nil {
		return trimNewline(string(inner)), false
	}
	if strings.EqualFold(in.Type, "complete") {
		return "", true
	}
	if in.Message == nil {
		return "", false
	}
	return trimNewline(*in.Message), false
}

func trimNewline(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}

// line passes one console line to fn unless it was passed before: its
// number is the event's id when it is a number, else its place in this
// stream (a backend without ids sends the log from its start each time).
func (t *tailer) line(ev event, pos *int64, text string) error {
	switch n, err := strconv.ParseInt(ev.id, 10, 64); {
	case ev.hasID && err == nil:
		*pos = n
		t.resume = ev.id
	case ev.hasID: // an id that is no line number: the backend resumes after it
		*pos = t.last + 1
		t.resume = ev.id
	default:
		*pos++
	}
	if *pos <= t.last {
		return nil
	}
	t.last = *pos
	t.healthy = true
	if err := t.fn(Line{Seq: *pos, Text: text}); err != nil {
		return &fatalError{err}
	}
	return nil
}
