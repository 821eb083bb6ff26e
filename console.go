package synapse

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/synapse-sdk/synapse-go/internal/livebar"
	"github.com/synapse-sdk/synapse-go/internal/output"
)

// NewConsoleLogger returns a Logger that writes events for people to w,
// immediately. When w is a terminal it draws a live progress bar per active
// category with other lines scrolling above; otherwise it writes one line
// per event (formats in docs/logging.md):
//
//	INFO: [train] epoch_complete {"epoch":0,"loss":0.1}
//	SUCCESS: Training completed
//	INFO: [train] Progress: 50.0% | ETA: 1.2s
//	INFO: [training] Metrics: {"final_loss":0.05}
//
// Progress lines are printed only when the whole-number percent or the
// category changes, and always at 0% and 100%, so a tight loop stays cheap
// and readable.
func NewConsoleLogger(w io.Writer) Logger {
	c := &consoleLogger{w: w}
	if output.IsTerminal(w) {
		c.live = livebar.New(w)
	}
	return c
}

type consoleLogger struct {
	mu       sync.Mutex
	w        io.Writer
	live     *livebar.Renderer
	throttle progressThrottle
	shown    map[seriesShown]time.Time // when each metric series last had a line
	buf      bytes.Buffer
}

type seriesShown struct {
	run           uint64
	category, key string
}

// metricInterval is the least time between two console lines of one
// metric series.
const metricInterval = time.Second

func (c *consoleLogger) Handle(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Type == EventMetric {
		k := seriesShown{e.run, e.Category, e.Key}
		if last, ok := c.shown[k]; ok && e.Time.Sub(last) < metricInterval {
			return
		}
		if c.shown == nil || len(c.shown) >= maxTracked {
			c.shown = map[seriesShown]time.Time{}
		}
		c.shown[k] = e.Time
	}
	if e.Type == EventProgress {
		if !c.throttle.allow(e, c.live == nil) {
			return
		}
		if c.live != nil {
			c.bar(e)
			return
		}
	}
	c.buf.Reset()
	formatLine(&c.buf, e)
	c.emit()
}

func (c *consoleLogger) bar(e Event) {
	label := ""
	if e.Category != "" {
		label = "[" + e.Category + "]"
	}
	suffix := ""
	if e.ETA >= 0 {
		suffix = "| ETA: " + formatETA(e.ETA)
	}
	key := fmt.Sprintf("%d\x00%s", e.run, e.Category)
	if e.Failed {
		c.live.End(key, label, "| FAILED")
		return
	}
	c.live.Set(key, label, e.Percent, suffix)
}

type progressKey struct {
	run      uint64
	category string
}

// progressThrottle decides which progress events are worth showing: those
// where the whole-number percent changed, the first of a run and category,
// those at 0% and 100%, and (with onCategoryChange) those whose category
// differs from the last one shown. It is not safe for concurrent use.
type progressThrottle struct {
	last    map[progressKey]int // whole percent last shown, per run and category
	lastKey progressKey         // key of the last progress shown
}

// maxTracked bounds the state of a long-lived throttle.
const maxTracked = 4096

func (t *progressThrottle) allow(e Event, onCategoryChange bool) bool {
	key := progressKey{run: e.run, category: e.Category}
	whole := int(math.Floor(e.Percent))
	last, seen := t.last[key]
	done := e.Current == e.Total || e.Failed
	if seen && whole == last && e.Current != 0 && !done && (!onCategoryChange || key == t.lastKey) {
		return false
	}
	if done {
		delete(t.last, key)
	} else {
		if t.last == nil || len(t.last) >= maxTracked {
			t.last = map[progressKey]int{}
		}
		t.last[key] = whole
	}
	t.lastKey = key
	return true
}

// emit writes the line in buf (without its newline) to the output.
func (c *consoleLogger) emit() {
	if c.live != nil {
		c.live.Println(c.buf.String())
		return
	}
	c.buf.WriteByte('\n')
	_, _ = c.w.Write(c.buf.Bytes())
}

// formatLine appends the plain-text line of e, without a newline; trials
// add their table below it.
func formatLine(b *bytes.Buffer, e Event) {
	level := strings.ToUpper(e.Level.String())
	if (e.Type == EventProgress && !e.Failed) || e.Type == EventMetrics || e.Type == EventMetric || e.Type == EventSteps {
		level = "INFO"
	}
	b.WriteString(level)
	b.WriteString(": ")
	if e.Category != "" {
		b.WriteByte('[')
		b.WriteString(e.Category)
		b.WriteString("] ")
	}
	switch e.Type {
	case EventLog:
		b.WriteString(e.Event)
		b.WriteByte(' ')
		writeJSON(b, e.Data)
		writeFile(b, e)
	case EventMessage:
		b.WriteString(e.Message)
	case EventProgress:
		b.WriteString("Progress: ")
		if e.Failed {
			b.WriteString("failed")
			break
		}
		b.WriteString(formatPercent(e.Percent))
		b.WriteByte('%')
		if e.ETA >= 0 {
			b.WriteString(" | ETA: ")
			b.WriteString(formatETA(e.ETA))
		}
	case EventMetrics:
		b.WriteString("Metrics: ")
		writeJSON(b, e.Values)
	case EventMetric:
		b.WriteString("Metric: ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			b.WriteString(strconv.FormatFloat(e.Value, 'g', -1, 64))
		} else {
			b.Write(appendFloat(b.AvailableBuffer(), e.Value))
		}
		if len(e.Data) > 0 {
			b.WriteByte(' ')
			writeJSON(b, e.Data)
		}
	case EventVisualization:
		fmt.Fprintf(b, "Visualization: %v #%v", e.Data["group"], e.Data["index"])
		if meta := withoutKeys(e.Data, "group", "index"); len(meta) > 0 {
			b.WriteByte(' ')
			writeJSON(b, meta)
		}
		writeFile(b, e)
	case EventTrials:
		writeTrials(b, e.Data)
	case EventSteps:
		b.WriteString("Steps: ")
		for i, s := range e.Steps {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%s %s%%", s.Name, formatPercent(s.Proportion))
		}
	default:
		b.WriteString(string(e.Type))
	}
}

// writeFile appends " (file: NAME, SIZE TYPE)" for an event with a file.
func writeFile(b *bytes.Buffer, e Event) {
	if e.File == "" {
		return
	}
	ct, data, err := DecodeDataURI(e.File)
	if err != nil {
		fmt.Fprintf(b, " (file: %s, unreadable)", e.FileName)
		return
	}
	fmt.Fprintf(b, " (file: %s, %s %s)", e.FileName, formatBytes(int64(len(data))), ct)
}

func withoutKeys(m map[string]any, keys ...string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

// writeTrials appends "Trials: N (best: ID)" and a table of the trials,
// one row per trial sorted by ID, the best marked with *.
func writeTrials(b *bytes.Buffer, data map[string]any) {
	var t Trials
	raw, _ := json.Marshal(jsonSafe(data))
	if err := json.Unmarshal(raw, &t); err != nil {
		b.WriteString("Trials: ")
		writeJSON(b, data)
		return
	}
	fmt.Fprintf(b, "Trials: %d", len(t.Trials))
	if t.BestTrial != "" {
		fmt.Fprintf(b, " (best: %s)", t.BestTrial)
	}
	if len(t.Trials) == 0 {
		return
	}
	cols := slices.Concat(t.Base, t.Hyperparameters, t.Metrics)
	if len(cols) == 0 { // no columns named: every key of any row
		seen := map[string]bool{}
		for _, row := range t.Trials {
			for k := range row {
				seen[k] = true
			}
		}
		cols = slices.Sorted(maps.Keys(seen))
	}
	b.WriteByte('\n')
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "  trial")
	for _, c := range cols {
		fmt.Fprintf(tw, "\t%s", cellText(c))
	}
	for _, id := range slices.SortedFunc(maps.Keys(t.Trials), naturalCompare) {
		mark := " "
		if id == t.BestTrial {
			mark = "*"
		}
		fmt.Fprintf(tw, "\n%s %s", mark, cellText(id))
		for _, c := range cols {
			v, ok := t.Trials[id][c]
			cell := "-"
			if ok {
				var cb bytes.Buffer
				if s, isStr := v.(string); isStr {
					cb.WriteString(s)
				} else {
					writeJSON(&cb, v)
				}
				cell = cb.String()
			}
			fmt.Fprintf(tw, "\t%s", cellText(cell))
		}
	}
	_ = tw.Flush()
}

// cellText keeps a table cell on its line and in its column.
func cellText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// naturalCompare orders strings with their digit runs compared as
// numbers: trial-2 before trial-10 (ties, such as t2 and t02, in byte
// order).
func naturalCompare(a, b string) int {
	if c := natural(a, b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func natural(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// formatPercent writes p with at least one and at most two decimals: 50.0, 33.33.
func formatPercent(p float64) string {
	s := strconv.FormatFloat(math.Round(p*100)/100, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// formatETA writes d as 1.2s under a minute, 2m05s under an hour, 1h02m03s above.
func formatETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dh%02dm%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// writeJSON writes v as compact JSON with sorted keys and no HTML escaping;
// values JSON cannot hold (NaN, channels, …) are written as strings.
func writeJSON(b *bytes.Buffer, v any) {
	if m, ok := v.(map[string]any); ok && m == nil {
		b.WriteString("{}")
		return
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		if err = enc.Encode(jsonSafe(v)); err != nil {
			fmt.Fprintf(b, "%q\n", fmt.Sprint(v))
		}
	}
	b.Truncate(b.Len() - 1) // the encoder's newline
}

// jsonSafe returns v with the values encoding/json rejects replaced by
// strings: NaN and ±Inf floats, and anything else unencodable.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = jsonSafe(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = jsonSafe(val)
		}
		return out
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case float32:
		return jsonSafe(float64(x))
	}
	if _, err := json.Marshal(v); err != nil {
		return fmt.Sprint(v)
	}
	return v
}
