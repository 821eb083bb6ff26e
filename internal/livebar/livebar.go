// Package livebar draws live progress bars at the bottom of a terminal, one
// per active key, with ordinary lines scrolling above them.
//
// A Renderer is not safe for concurrent use; its owner serialises calls.
package livebar

import (
	"fmt"
	"io"
	"strings"
)

const barWidth = 28

type bar struct {
	key     string
	label   string
	percent float64
	suffix  string
}

// Renderer draws bars on w, which must be a terminal understanding ANSI
// cursor movement.
type Renderer struct {
	w     io.Writer
	bars  []*bar
	drawn int // bar lines currently on screen below the cursor's line start
	buf   strings.Builder
}

// New returns a Renderer writing to w.
func New(w io.Writer) *Renderer { return &Renderer{w: w} }

// Println prints line above the bars.
func (r *Renderer) Println(line string) {
	r.buf.Reset()
	r.clear()
	r.buf.WriteString(line)
	r.buf.WriteByte('\n')
	r.draw()
	r.flush()
}

// Set creates or updates the bar for key. label is shown before the bar and
// suffix after the percentage. A bar that reaches 100% is printed one last
// time as an ordinary line and removed.
func (r *Renderer) Set(key, label string, percent float64, suffix string) {
	var b *bar
	idx := -1
	for i, x := range r.bars {
		if x.key == key {
			b, idx = x, i
			break
		}
	}
	if b == nil {
		b = &bar{key: key}
		r.bars = append(r.bars, b)
		idx = len(r.bars) - 1
	}
	b.label, b.percent, b.suffix = label, percent, suffix
	r.buf.Reset()
	r.clear()
	if percent >= 100 {
		r.buf.WriteString(render(b))
		r.buf.WriteByte('\n')
		r.bars = append(r.bars[:idx], r.bars[idx+1:]...)
	}
	r.draw()
	r.flush()
}

// End prints the bar for key one last time as an ordinary line, at the
// percent it had reached (0 for a new key) with suffix, and removes it:
// for a bar that stops short of 100% (a failure).
func (r *Renderer) End(key, label, suffix string) {
	b := &bar{key: key}
	for i, x := range r.bars {
		if x.key == key {
			b = x
			r.bars = append(r.bars[:i], r.bars[i+1:]...)
			break
		}
	}
	b.label, b.suffix = label, suffix
	r.buf.Reset()
	r.clear()
	r.buf.WriteString(render(b))
	r.buf.WriteByte('\n')
	r.draw()
	r.flush()
}

// clear moves the cursor back to the first bar line and erases the bars.
func (r *Renderer) clear() {
	if r.drawn > 0 {
		fmt.Fprintf(&r.buf, "\x1b[%dA", r.drawn)
	}
	r.buf.WriteString("\r\x1b[J")
	r.drawn = 0
}

func (r *Renderer) draw() {
	for _, b := range r.bars {
		r.buf.WriteString(render(b))
		r.buf.WriteByte('\n')
		r.drawn++
	}
}

func (r *Renderer) flush() {
	_, _ = io.WriteString(r.w, r.buf.String())
}

// render returns one bar line: "[train] ██████░░░░  50.0% | ETA: 1.2s".
func render(b *bar) string {
	filled := int(b.percent / 100 * barWidth)
	filled = max(0, min(barWidth, filled))
	var sb strings.Builder
	if b.label != "" {
		sb.WriteString(b.label)
		sb.WriteByte(' ')
	}
	sb.WriteString(strings.Repeat("█", filled))
	sb.WriteString(strings.Repeat("░", barWidth-filled))
	fmt.Fprintf(&sb, " %5.1f%%", b.percent)
	if b.suffix != "" {
		sb.WriteString(" ")
		sb.WriteString(b.suffix)
	}
	return sb.String()
}
