package server

import (
	"container/heap"
	"sync/atomic"
	"time"
)

// Clock is the time seam: tests of time-dependent logic inject their own.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// timer is an entry of a loop's schedule. It is embedded in the session or
// subscription that owns it, so scheduling allocates nothing after the first
// use.
type timer struct {
	at  time.Time
	idx int // position in the heap; -1 when not scheduled
	fn  func()
}

// schedule is one event loop's timers. Only its loop touches it; next is
// published atomically so the process ticker can tell, without locking,
// whether the loop has anything due.
type schedule struct {
	h    timerHeap
	next atomic.Int64 // unix nanos of the earliest timer, 0 when empty
}

func newTimer(fn func()) timer { return timer{idx: -1, fn: fn} }

func (s *schedule) set(t *timer, at time.Time) {
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
	s.next.Store(s.h[0].at.UnixNano())
}

// due reports whether a timer is due at now (any goroutine).
func (s *schedule) due(now time.Time) bool {
	n := s.next.Load()
	return n != 0 && n <= now.UnixNano()
}

// run fires every timer due at now. A timer may reschedule itself (or
// others) from its fn.
func (s *schedule) run(now time.Time) {
	for len(s.h) > 0 && !s.h[0].at.After(now) {
		t := heap.Pop(&s.h).(*timer)
		s.publish()
		t.fn()
	}
	s.publish()
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
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
