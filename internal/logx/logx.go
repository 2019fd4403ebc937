// Package logx holds mako's log plumbing: a slog.Handler that keeps a flood
// of identical lines down to one line plus a count per interval, and the
// session id carried through a context into code that has no session (the
// service caller runs on a pool worker).
package logx

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Suppressed counts, over the process, the lines RateLimit handlers
// counted instead of writing (the sum of the summaries' repeated), for the
// mako_log_lines_suppressed_total metric.
var Suppressed atomic.Int64

type sessionKey struct{}

// WithSession returns ctx carrying a session id for Session.
func WithSession(ctx context.Context, id uint32) context.Context {
	return context.WithValue(ctx, sessionKey{}, id)
}

// Session returns the attribute session=ID for the id ctx carries, or the
// zero Attr (which slog's handlers drop) when it carries none, so a call
// site can always pass it: log.Warn(msg, logx.Session(ctx), ...).
func Session(ctx context.Context) slog.Attr {
	if id, ok := ctx.Value(sessionKey{}).(uint32); ok {
		return slog.Any("session", id)
	}
	return slog.Attr{}
}

// MaxKeys bounds the distinct lines remembered per interval. A flood of
// distinct messages (e.g. formatted with changing numbers) past this many
// is counted in one "other" bucket instead of growing the table.
const MaxKeys = 256

// KeyAttrs are the attributes that, with the level and the message, tell
// one kind of line from another: the same failure against two services is
// two kinds, the same failure from two sessions is one.
var KeyAttrs = [...]string{"service", "url", "src"}

// RateLimit is a slog.Handler that passes the first line of each kind per
// interval to the next handler at once and counts the rest; when the
// interval is over, one summary line per kind that was held back is
// written: the same level and message with repeated=N (the lines not
// written, exactly) and in_last=the time the count covers (the interval,
// give or take the ticker). The summary is written by
// the first line or Flush after the interval ends; a process calls Flush
// from a ticker so that a flood's last summary is not held until the next
// line. Handlers derived with WithAttrs/WithGroup share the counts.
type RateLimit struct {
	next slog.Handler
	st   *limitState
}

type limitState struct {
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	start time.Time
	kinds map[kind]*held
	other int // lines of kinds past MaxKeys
	// otherLevel is the highest level among the other lines, for their
	// summary.
	otherLevel slog.Level
	otherNext  slog.Handler
}

type kind struct {
	level slog.Level
	msg   string
	// attrs are KeyAttrs' values in order (a fixed array, so that telling
	// kinds apart allocates nothing for string values).
	attrs [len(KeyAttrs)]string
	has   [len(KeyAttrs)]bool
}

type held struct {
	n    int
	next slog.Handler // the handler the first line went to (its With attrs)
	key  []slog.Attr
}

// NewRateLimit wraps next. interval <= 0 returns next unchanged. now is
// the clock (nil = time.Now); tests pass a fake one.
func NewRateLimit(next slog.Handler, interval time.Duration, now func() time.Time) slog.Handler {
	if interval <= 0 {
		return next
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimit{next: next, st: &limitState{interval: interval, now: now, kinds: map[kind]*held{}}}
}

// Enabled defers to the next handler.
func (h *RateLimit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs derives a handler sharing the counts.
func (h *RateLimit) WithAttrs(as []slog.Attr) slog.Handler {
	return &RateLimit{next: h.next.WithAttrs(as), st: h.st}
}

// WithGroup derives a handler sharing the counts.
func (h *RateLimit) WithGroup(name string) slog.Handler {
	return &RateLimit{next: h.next.WithGroup(name), st: h.st}
}

// Handle writes r unless a line of its kind was already written in this
// interval, in which case it is counted.
func (h *RateLimit) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	k := kind{level: r.Level, msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		for i, name := range KeyAttrs {
			if a.Key == name {
				k.attrs[i], k.has[i] = a.Value.String(), true
			}
		}
		return true
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rollLocked(ctx, false)
	if e, ok := st.kinds[k]; ok {
		e.n++
		Suppressed.Add(1)
		return nil
	}
	if len(st.kinds) >= MaxKeys {
		Suppressed.Add(1)
		if st.other == 0 || r.Level > st.otherLevel {
			st.otherLevel = r.Level
		}
		st.other++
		st.otherNext = h.next
		return nil
	}
	var key []slog.Attr
	for i, name := range KeyAttrs {
		if k.has[i] {
			key = append(key, slog.String(name, k.attrs[i]))
		}
	}
	st.kinds[k] = &held{next: h.next, key: key}
	return h.next.Handle(ctx, r)
}

// Flush writes the summaries of an interval that has ended. It is cheap
// when nothing is held; call it from a ticker about once per interval.
func (h *RateLimit) Flush() {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	h.st.rollLocked(context.Background(), false)
}

// FlushAll writes the summaries of the interval so far, ending it (at
// exit, so that no count is lost).
func (h *RateLimit) FlushAll() {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	h.st.rollLocked(context.Background(), true)
}

// rollLocked ends the interval when it is over (or force): the summaries
// are written and the counts start again.
func (st *limitState) rollLocked(ctx context.Context, force bool) {
	now := st.now()
	if st.start.IsZero() {
		st.start = now
		return
	}
	if !force && now.Sub(st.start) < st.interval {
		return
	}
	// The counts cover since the interval began: about the interval with
	// a ticker calling Flush, less at FlushAll, more when only a later
	// line ends it.
	in := now.Sub(st.start).Round(time.Millisecond).String()
	for k, e := range st.kinds {
		if e.n == 0 {
			continue
		}
		r := slog.NewRecord(now, k.level, k.msg, 0)
		r.AddAttrs(e.key...)
		r.AddAttrs(slog.Int("repeated", e.n), slog.String("in_last", in))
		_ = e.next.Handle(ctx, r)
	}
	if st.other > 0 {
		r := slog.NewRecord(now, st.otherLevel, "log lines dropped: too many distinct lines in one interval", 0)
		r.AddAttrs(slog.Int("repeated", st.other), slog.String("in_last", in), slog.Int("max_kinds", MaxKeys))
		_ = st.otherNext.Handle(ctx, r)
	}
	clear(st.kinds)
	st.other, st.otherNext = 0, nil
	st.start = now
}
