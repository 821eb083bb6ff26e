// Package capture makes a plugin binary the only writer of its stdout and
// stderr: what the action (or any library it calls, C code included)
// writes to file descriptors 1 and 2 goes through a pipe and comes out as
// whole, valid lines, so it can never glue itself to a protocol line,
// break a log reader with bytes that are not UTF-8, or end a log stream
// with one enormous line.
package capture

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line passed on, in bytes; longer output is split
// into lines of at most this size (Ray's log stream fails on lines of a few
// MiB).
const MaxLine = 64 << 10

// Lines turns a byte stream into lines: a line ends at "\n", "\r\n" or a
// lone "\r" (a progress bar redrawing itself), bytes that are not UTF-8
// are written as \xNN, and a line longer than MaxLine is split. Write and
// Flush are safe for concurrent use; emit is called with one line (no
// line end) at a time, never concurrently.
type Lines struct {
	mu   sync.Mutex
	emit func(line string)
	buf  []byte
	cr   bool // the last byte seen was a lone "\r"

	// mark, when not empty, is a line end that is not output: a line
	// ending in it calls marked instead (Stream.Sync).
	mark   string
	marked func()
}

// NewLines returns a Lines passing each line to emit.
func NewLines(emit func(line string)) *Lines { return &Lines{emit: emit} }

// Write takes the next bytes of the stream.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range p {
		switch {
		case c == '\n':
			if l.cr { // "\r\n": the line ended at the "\r"
				l.cr = false
				continue
			}
			l.line()
		case c == '\r':
			if len(l.buf) > 0 { // a redraw of an empty line is no line
				l.line()
			}
			l.cr = true
			continue
		default:
			l.buf = append(l.buf, c)
			if len(l.buf) >= MaxLine {
				l.line()
			}
		}
		l.cr = false
	}
	return len(p), nil
}

// Flush passes on a last line that has no line end yet.
func (l *Lines) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.line()
	}
}

func (l *Lines) line() {
	s := string(l.buf)
	l.buf = l.buf[:0]
	if l.mark != "" && strings.HasSuffix(s, l.mark) {
		if s = strings.TrimSuffix(s, l.mark); s != "" {
			l.emitValid(s)
		}
		l.marked()
		return
	}
	l.emitValid(s)
}

func (l *Lines) emitValid(s string) {
	if !utf8.ValidString(s) {
		s = escapeInvalid(s)
	}
	l.emit(s)
}

// escapeInvalid writes the bytes of s that are not UTF-8 as \xNN.
func escapeInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			fmt.Fprintf(&b, `\x%02x`, s[i])
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

// Stream is one captured file descriptor.
type Stream struct {
	// Orig writes to what the descriptor was before the capture (the real
	// stdout or stderr): the binary's own protocol output goes there.
	Orig *os.File

	fd      int
	restore func() error
	done    chan struct{}
	syncMu  sync.Mutex
	synced  chan struct{}
}

// Start captures fd (1 or 2): from now on what is written to it is read
// back and passed, as lines, to emit. Stop undoes it.
func Start(fd int, emit func(line string)) (*Stream, error) {
	orig, restore, r, err := redirect(fd)
	if err != nil {
		return nil, fmt.Errorf("capture fd %d: %w", fd, err)
	}
	s := &Stream{Orig: orig, fd: fd, restore: restore, done: make(chan struct{}), synced: make(chan struct{}, 1)}
	lines := NewLines(emit)
	lines.mark = syncMark
	lines.marked = func() { s.synced <- struct{}{} }
	go func() {
		defer close(s.done)
		_, _ = io.Copy(lines, bufio.NewReaderSize(r, 32<<10))
		lines.Flush()
		_ = r.Close()
	}()
	return s, nil
}

// syncMark ends the line Sync writes; no program prints it.
const syncMark = "\x00synapse-capture-sync\x00"

// Sync waits until everything written to the descriptor so far has been
// passed on; an unterminated last line is passed on as a line. A run's
// outcome is written after it, so the run's output comes first.
func (s *Stream) Sync() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if err := writeFD(s.fd, []byte(syncMark+"\n")); err != nil {
		return
	}
	select {
	case <-s.synced:
	case <-s.done:
	case <-time.After(syncTimeout): // a mark split by an overlong line: do not hang
	}
}

// syncTimeout bounds Sync.
const syncTimeout = 2 * time.Second

// Stop puts the descriptor back and waits until what was written to it has
// been passed on. Output written after Stop goes straight to Orig.
func (s *Stream) Stop() {
	_ = s.restore()
	<-s.done
}
