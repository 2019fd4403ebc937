package server

import (
	"container/heap"
	"sync/atomic"
	"time"
)

// Clock is the time seam: tests of time-dependent logic inject their own.
//
// It has two readings because they answer different questions. Now is wall
// time, used only for timestamps written to clients (sent_at). Mono is
// monotonic time, a duration since an arbitrary origin fixed for the
// Clock's life, never decreasing; every timer, deadline and window (pings,
// handshake timeout, re-authorization, heartbeats, throttle windows, drain
// steps, the Redis loss grace) runs on it, so a step of the wall clock (NTP,
// VM resume) moves none of them. Both may be called from any goroutine.
type Clock interface {
	Now() time.Time
	Mono() time.Duration
}

type realClock struct{}

// monoOrigin carries the process's monotonic reading; time.Since subtracts
// monotonic readings, never wall ones.
var monoOrigin = time.Now()

func (realClock) Now() time.Time      { return time.Now() }
func (realClock) Mono() time.Duration { return time.Since(monoOrigin) }

// monoInstant puts a monotonic reading on a time.Time line, for state that
// is written in time.Time (protocol.ThrottleState): only differences and
// order mean anything, never the date. monoOf is its inverse.
func monoInstant(d time.Duration) time.Time { return time.Unix(0, int64(d)) }
func monoOf(t time.Time) time.Duration      { return time.Duration(t.UnixNano()) }

// timer is an entry of a loop's schedule. It is embedded in the session or
// subscription that owns it, so scheduling allocates nothing after the first
// use.
type timer struct {
	at  time.Duration // Clock.Mono reading at which it is due
	idx int           // position in the heap; -1 when not scheduled
	fn  func()
}

// schedule is one event loop's timers. Only its loop touches it; next is
// published atomically so the process ticker can tell, without locking,
// whether the loop has anything due.
type schedule struct {
	h timerHeap
	// next is the earliest timer's Mono reading in nanoseconds plus one, 0
	// when empty (one word, so the ticker reads it consistently).
	next atomic.Int64
}

func newTimer(fn func()) timer { return timer{idx: -1, fn: fn} }

// set (re)schedules t to fire once Clock.Mono reaches at.
func (s *schedule) set(t *timer, at time.Duration) {
	t.at = at
	if t.idx >= 0 {
		heap.Fix(&s.h, t.idx)
	} else {
		heap.Push(&s.h, t)
	}
	s.publish()
}

func (s *schedule) stop(t *timer) {
	if t.idx < 0 {
		return
	}
	heap.Remove(&s.h, t.idx)
	s.publish()
}

func (s *schedule) publish() {
	if len(s.h) == 0 {
		s.next.Store(0)
		return
	}
	// Mono readings are ≥ 0; a timer set before the origin is simply due.
	s.next.Store(int64(max(s.h[0].at, 0)) + 1)
}

// due reports whether a timer is due at the Mono reading now (any
// goroutine).
func (s *schedule) due(now time.Duration) bool {
	n := s.next.Load()
	return n != 0 && n-1 <= int64(now)
}

// run fires every timer due at the Mono reading now. A timer may
// reschedule itself (or others) from its fn.
func (s *schedule) run(now time.Duration) {
	for len(s.h) > 0 && s.h[0].at <= now {
		t := heap.Pop(&s.h).(*timer)
		s.publish()
		t.fn()
	}
	s.publish()
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.idx = -1
	*h = old[:n-1]
	return t
}
