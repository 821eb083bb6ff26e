package synapse

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Message helpers: each formats like fmt.Sprintf and reports the text with
// LogMessage at its level.

// Debugf reports a message at LevelDebug.
func (c *Context) Debugf(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelDebug)
}

// Infof reports a message at LevelInfo.
func (c *Context) Infof(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelInfo)
}

// Successf reports a message at LevelSuccess.
func (c *Context) Successf(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelSuccess)
}

// Warningf reports a message at LevelWarning.
func (c *Context) Warningf(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelWarning)
}

// Dangerf reports a message at LevelDanger.
func (c *Context) Dangerf(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelDanger)
}

// Errorf reports a message at LevelError. It does not fail the run: return
// an error from the action for that.
func (c *Context) Errorf(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelError)
}

// Criticalf reports a message at LevelCritical.
func (c *Context) Criticalf(format string, args ...any) {
	c.LogMessage(fmt.Sprintf(format, args...), LevelCritical)
}

// Localized is a message in several languages: language code (ISO 639-1,
// "en", "ko") → text. It is the Python SDK's dict message and
// LocalizedMessage.
type Localized map[string]string

// In returns the text for lang (case-insensitive), falling back to its
// base language ("pt" for "pt-BR"), then to "en", then to the first language in alphabetical
// order; "" for an empty Localized.
func (m Localized) In(lang string) string {
	if s, ok := m.lookup(lang); ok {
		return s
	}
	if base, _, found := strings.Cut(strings.ReplaceAll(lang, "_", "-"), "-"); found {
		if s, ok := m.lookup(base); ok {
			return s
		}
	}
	if s, ok := m["en"]; ok {
		return s
	}
	if len(m) == 0 {
		return ""
	}
	return m[slices.Min(slices.Collect(maps.Keys(m)))]
}

// lookup finds lang, ignoring case (language codes are case-insensitive).
func (m Localized) lookup(lang string) (string, bool) {
	if s, ok := m[lang]; ok {
		return s, true
	}
	for k, s := range m {
		if strings.EqualFold(k, lang) {
			return s, true
		}
	}
	return "", false
}

// LanguageEnv is the environment variable that sets the language of a run
// (Context.Language) when WithLanguage does not; the CLI's --lang sets it.
const LanguageEnv = "SYNAPSE_LANGUAGE"

// WithLanguage sets the language of runs (Context.Language): an ISO 639-1
// code such as "ko". Executors of other modes pass it to the run as the
// environment value SYNAPSE_LANGUAGE. The default is that value, else "en".
func WithLanguage(lang string) Option { return func(c *execConfig) { c.lang = lang } }

// Language returns the run's language: WithLanguage's, else the run
// environment's SYNAPSE_LANGUAGE, else "en".
func (c *Context) Language() string {
	if c.run.lang != "" {
		return c.run.lang
	}
	if l := c.run.env.GetString(LanguageEnv, ""); l != "" {
		return l
	}
	return "en"
}

// LogLocalized reports message in the run's language (Localized.In) at
// level (Python: log_message({lang: text}, level)).
func (c *Context) LogLocalized(message Localized, level Level) {
	if len(message) == 0 {
		c.warnOnce("localized-empty", "ignored an empty localized message")
		return
	}
	c.LogMessage(message.In(c.Language()), level)
}

// SetProgressFailed marks the progress of category (else the Context's
// category) as failed (Python: set_progress_failed(category)): the
// console shows it failed, and the progress record's step gets status
// "failed", keeps the percent it reached (the Python SDK sets 0) and
// becomes the current step. The overall progress is never lowered.
func (c *Context) SetProgressFailed(category ...string) {
	cat := c.category
	if len(category) > 0 {
		cat = category[0]
	}
	e := c.event(EventProgress, LevelError)
	e.Category = cat
	e.Failed = true
	e.ETA = -1
	c.run.handle(e)
}

// Progress returns the run's progress record so far, in the Synapse
// backend's shape (see ProgressRecord).
func (c *Context) Progress() ProgressRecord { return c.run.tracker.Record() }

// MetricPoint is one point of a metric series (LogMetric).
type MetricPoint struct {
	Time  time.Time
	Value float64
	// Extra holds the other metrics given with the point (an epoch or
	// step number, say); nil when none were.
	Extra map[string]any
}

type seriesKey struct{ category, key string }

// series keeps the points of one series in fixed-size chunks, so that a
// long series grows without copying, and compactly (time as Unix
// nanoseconds), so that the garbage collector has little to scan.
type series struct {
	chunks [][]point
	n      int
}

type point struct {
	unixNano int64
	value    float64
	extra    []extraMetric // a copy of the extra map, smaller to keep
}

type extraMetric struct {
	key   string
	value any
}

const chunkPoints = 4096

func (s *series) add(p point) {
	if s.n%chunkPoints == 0 {
		s.chunks = append(s.chunks, make([]point, 0, chunkPoints))
	}
	last := &s.chunks[len(s.chunks)-1]
	*last = append(*last, p)
	s.n++
}

func (s *series) points() []MetricPoint {
	if s == nil {
		return nil
	}
	out := make([]MetricPoint, 0, s.n)
	for _, c := range s.chunks {
		for _, p := range c {
			mp := MetricPoint{Time: time.Unix(0, p.unixNano), Value: p.value}
			if p.extra != nil {
				mp.Extra = make(map[string]any, len(p.extra))
				for _, x := range p.extra {
					mp.Extra[x.key] = x.value
				}
			}
			out = append(out, mp)
		}
	}
	return out
}

// MaxSeriesPoints is how many points a Context keeps per series for
// Series; later points are still reported, not kept (a warning says so
// once). At 40 bytes a point (plus any extra metrics), a full series
// takes 40 MiB.
const MaxSeriesPoints = 1 << 20

// LogMetric adds a point to the metric series key of category, such as
// ("train", "loss", 0.42, {"epoch": 3}) (Python: log_metric(category, key,
// value, **metrics)). Points are kept in order per category and key, and
// each is reported as one EventMetric; unlike SetMetrics, nothing is
// merged. The context keeps a shallow copy of extra; like Log's data, the
// event's Data is extra itself. The console shows at most one line a second per
// series.
func (c *Context) LogMetric(category, key string, value float64, extra map[string]any) {
	if category == "" {
		category = c.category
	}
	if category == "" || key == "" {
		c.warnOnce("metric-names", fmt.Sprintf("ignored metric point (category %q, key %q): both are required, as in LogMetric(\"train\", \"loss\", v, nil)", category, key))
		return
	}
	e := c.event(EventMetric, LevelInfo)
	e.Category, e.Key, e.Value = category, key, value
	var kept []extraMetric
	if len(extra) > 0 {
		e.Data = extra
		kept = make([]extraMetric, 0, len(extra))
		for k, v := range extra {
			kept = append(kept, extraMetric{k, v})
		}
	}
	r := c.run
	r.mu.Lock()
	k := seriesKey{category, key}
	s := r.series[k]
	if s == nil {
		if r.series == nil {
			r.series = map[seriesKey]*series{}
		}
		s = &series{}
		r.series[k] = s
	}
	full := s.n >= MaxSeriesPoints
	if !full {
		s.add(point{unixNano: e.Time.UnixNano(), value: value, extra: kept})
	}
	r.mu.Unlock()
	if full {
		c.warnOnce("series-full\x00"+category+"\x00"+key, fmt.Sprintf("metric series %s/%s has %d points: later points are reported but not kept for Context.Series", category, key, MaxSeriesPoints))
	}
	r.handle(e)
}

// Series returns a copy of the points of the metric series key of
// category, in the order they were logged.
func (c *Context) Series(category, key string) []MetricPoint {
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	return c.run.series[seriesKey{category, key}].points()
}

// MaxFileSize is the largest file, in bytes, a log event or visualization
// may carry (2 MiB). Files travel base64-encoded inside one event line,
// and the log pipelines between a cluster job and the caller do not take
// lines much longer.
const MaxFileSize = 2 << 20

// File is a file attached to an event: the file at Path, or Data.
type File struct {
	// Path is read when Data is nil.
	Path string
	// Data is the file's content.
	Data []byte
	// ContentType is the MIME type ("image/png"). When empty it is taken
	// from Path's extension, else from the content (PNG, JPEG, GIF, WebP),
	// else application/octet-stream.
	ContentType string
	// Name is shown to people; the default is Path's base name.
	Name string
}

// ErrFileTooLarge matches a *FileError for a file over MaxFileSize.
var ErrFileTooLarge = errors.New("file too large")

// FileError is the error of LogFile and LogVisualization for a file that
// cannot be attached: unreadable (Err is the os error), over MaxFileSize
// (Err is ErrFileTooLarge) or not an image where one is needed.
type FileError struct {
	Name string // the file's name or path
	Size int64  // its size in bytes, when known
	Err  error
}

func (e *FileError) Error() string {
	if errors.Is(e.Err, ErrFileTooLarge) {
		return fmt.Sprintf("attach file %s: %d bytes is over the limit of %d bytes (2 MiB, synapse.MaxFileSize); attach a smaller or compressed file, or store it elsewhere and log where", e.Name, e.Size, MaxFileSize)
	}
	return fmt.Sprintf("attach file %s: %v", e.Name, e.Err)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// dataURI reads f and returns it as a base64 data URI, with its name.
// With image, the file must be an image: an image/* ContentType, or else
// content that sniff recognises.
func (f File) dataURI(image bool) (uri, name string, err error) {
	name = f.Name
	if name == "" {
		name = filepath.Base(f.Path)
		if f.Path == "" {
			name = "(bytes)"
		}
	}
	data := f.Data
	if data == nil {
		if data, err = readLimited(f.Path); err != nil {
			return "", name, err
		}
	}
	if len(data) > MaxFileSize {
		return "", name, &FileError{Name: name, Size: int64(len(data)), Err: ErrFileTooLarge}
	}
	ct := strings.ToLower(f.ContentType)
	if ct != "" {
		mt, _, perr := mime.ParseMediaType(ct)
		if perr != nil || !strings.Contains(mt, "/") {
			return "", name, &FileError{Name: name, Err: fmt.Errorf("content type %q is not a MIME type such as image/png", f.ContentType)}
		}
		ct = mt // parameters (charset=…) are dropped: the backend wants the type
	}
	sniffed := sniff(data)
	switch {
	case image && ct == "" && !strings.HasPrefix(sniffed, "image/"):
		return "", name, &FileError{Name: name, Err: errors.New("content is not a PNG, JPEG, GIF or WebP image (set File.ContentType for another image format)")}
	case image && ct != "" && !strings.HasPrefix(ct, "image/"):
		return "", name, &FileError{Name: name, Err: fmt.Errorf("content type %s is not an image (want PNG or JPEG)", ct)}
	case ct == "" && f.Path != "" && sniffed == "application/octet-stream":
		ct, _, _ = strings.Cut(mime.TypeByExtension(filepath.Ext(f.Path)), ";")
	}
	if ct == "" {
		ct = sniffed
	}
	var b strings.Builder
	b.Grow(len("data:;base64,") + len(ct) + base64.StdEncoding.EncodedLen(len(data)))
	b.WriteString("data:")
	b.WriteString(ct)
	b.WriteString(";base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &b)
	_, _ = enc.Write(data)
	_ = enc.Close()
	return b.String(), name, nil
}

// readLimited reads the regular file at path, at most MaxFileSize+1
// bytes: a device, pipe or /proc file could be endless or never end.
func readLimited(path string) ([]byte, error) {
	if path == "" {
		return nil, &FileError{Name: "(none)", Err: errors.New("no Path and no Data")}
	}
	fi, err := os.Stat(path) // never blocks, unlike opening a pipe
	if err != nil {
		return nil, &FileError{Name: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, &FileError{Name: path, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	if fi.Size() > MaxFileSize {
		return nil, &FileError{Name: path, Size: fi.Size(), Err: ErrFileTooLarge}
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Name: path, Err: err}
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, &FileError{Name: path, Err: err}
	}
	if len(data) > MaxFileSize { // it grew after the Stat
		return nil, &FileError{Name: path, Size: int64(len(data)), Err: ErrFileTooLarge}
	}
	return data, nil
}

// sniff names the image formats a visualization is likely to be.
func sniff(b []byte) string {
	switch {
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	case len(b) >= 3 && string(b[:3]) == "\xff\xd8\xff":
		return "image/jpeg"
	case len(b) >= 6 && (string(b[:6]) == "GIF87a" || string(b[:6]) == "GIF89a"):
		return "image/gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image/webp"
	}
	return "application/octet-stream"
}

// DecodeDataURI splits a base64 data URI (Event.File) into its content
// type and bytes.
func DecodeDataURI(uri string) (contentType string, data []byte, err error) {
	rest, ok := strings.CutPrefix(uri, "data:")
	meta, payload, found := strings.Cut(rest, ",")
	if !ok || !found || !strings.HasSuffix(meta, ";base64") {
		return "", nil, fmt.Errorf("decode data URI: want data:TYPE;base64,DATA (got %.40q)", uri)
	}
	data, err = base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, fmt.Errorf("decode data URI: %w", err)
	}
	return strings.TrimSuffix(meta, ";base64"), data, nil
}

// LogFile reports a structured event at level carrying file (Python:
// log(event, data, file=path)); on the wire the file is a base64 data URI
// (Event.File). A file that cannot be read or is over MaxFileSize is a
// *FileError, and nothing is reported.
func (c *Context) LogFile(level Level, event string, data map[string]any, file File) error {
	uri, name, err := file.dataURI(false)
	if err != nil {
		return err
	}
	e := c.event(EventLog, level)
	e.Event, e.Data, e.File, e.FileName = event, data, uri, name
	c.run.handle(e)
	return nil
}

// LogVisualization reports an image of category (a prediction overlay, a
// confusion matrix), the index-th of group, with metadata meta (Python:
// log_visualization(category, group, index, image, **meta)). The event's
// Data holds "group", "index" and meta's entries. An image that cannot be
// read, is over MaxFileSize or is not an image/* type is a *FileError, and
// nothing is reported.
func (c *Context) LogVisualization(category, group string, index int, image File, meta map[string]any) error {
	if category == "" {
		category = c.category
	}
	if category == "" {
		return errors.New("log visualization: a category is required, as in LogVisualization(\"val\", …)")
	}
	uri, name, err := image.dataURI(true)
	if err != nil {
		return err
	}
	if _, clash := meta["group"]; clash {
		c.warnOnce("visualization-meta-group", "visualization meta key \"group\" is replaced by the group argument")
	}
	if _, clash := meta["index"]; clash {
		c.warnOnce("visualization-meta-index", "visualization meta key \"index\" is replaced by the index argument")
	}
	data := make(map[string]any, len(meta)+2)
	maps.Copy(data, meta)
	data["group"], data["index"] = group, index
	e := c.event(EventVisualization, LevelInfo)
	e.Category, e.Data, e.File, e.FileName = category, data, uri, name
	c.run.handle(e)
	return nil
}

// Trials is the state of a hyperparameter search (Python: log_trials).
// Trials maps a trial ID to its row (column → value); Base,
// Hyperparameters and Metrics name the columns of each kind, in display
// order; BestTrial is the ID of the best trial so far ("" for none).
type Trials struct {
	Trials          map[string]map[string]any `json:"trials"`
	Base            []string                  `json:"base"`
	Hyperparameters []string                  `json:"hyperparameters"`
	Metrics         []string                  `json:"metrics"`
	BestTrial       string                    `json:"best_trial"`
}

// LogTrials reports the trials of a hyperparameter search; the console
// shows them as a table with the best trial marked. The event's Data is t
// as a JSON object (the Synapse backend's "trials" log data).
func (c *Context) LogTrials(t Trials) {
	rows := make(map[string]any, len(t.Trials))
	for id, row := range t.Trials {
		rows[id] = maps.Clone(row)
	}
	strs := func(s []string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	e := c.event(EventTrials, LevelInfo)
	e.Data = map[string]any{
		"trials":          rows,
		"base":            strs(t.Base),
		"hyperparameters": strs(t.Hyperparameters),
		"metrics":         strs(t.Metrics),
		"best_trial":      t.BestTrial,
	}
	c.run.handle(e)
}

// formatBytes writes n as 512 B, 12.3 KiB or 2.0 MiB.
func formatBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
