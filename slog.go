package synapse

import (
	"context"
	"log/slog"
)

// slogHandler turns slog records into run events (see Context.Slog).
type slogHandler struct {
	ctx    *Context
	frames []attrFrame // attributes from WithAttrs, each under the groups open then
	groups []string
}

type attrFrame struct {
	groups []string
	attrs  []slog.Attr
}

func (h *slogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	data := map[string]any{}
	for _, f := range h.frames {
		target := descend(data, f.groups)
		for _, a := range f.attrs {
			addAttr(target, a)
		}
	}
	if r.NumAttrs() > 0 {
		target := descend(data, h.groups)
		r.Attrs(func(a slog.Attr) bool {
			addAttr(target, a)
			return true
		})
	}
	level := fromSlogLevel(r.Level)
	if len(data) == 0 {
		h.ctx.LogMessage(r.Message, level)
		return nil
	}
	e := h.ctx.event(EventLog, level)
	if !r.Time.IsZero() {
		e.Time = r.Time
	}
	e.Event = r.Message
	e.Data = data
	h.ctx.run.handle(e)
	return nil
}

// descend returns the map at path below m, creating the maps on the way.
func descend(m map[string]any, path []string) map[string]any {
	for _, g := range path {
		next, ok := m[g].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[g] = next
		}
		m = next
	}
	return m
}

func addAttr(m map[string]any, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		if len(attrs) == 0 {
			return
		}
		target := m
		if a.Key != "" {
			g := map[string]any{}
			m[a.Key] = g
			target = g
		}
		for _, ga := range attrs {
			addAttr(target, ga)
		}
		return
	}
	switch v.Kind() {
	case slog.KindDuration:
		m[a.Key] = v.Duration().String()
	case slog.KindTime:
		m[a.Key] = v.Time()
	default:
		m[a.Key] = v.Any()
	}
}

func fromSlogLevel(l slog.Level) Level {
	switch {
	case l < slog.LevelInfo:
		return LevelDebug
	case l < slog.LevelWarn:
		return LevelInfo
	case l < slog.LevelError:
		return LevelWarning
	case l < slog.LevelError+4:
		return LevelError
	}
	return LevelCritical
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.frames = append(h.frames[:len(h.frames):len(h.frames)], attrFrame{groups: h.groups, attrs: attrs})
	return &h2
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}
