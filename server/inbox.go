package server

// A loop's inbox: every task posted to a loop (fan-out batches, service
// results, broker acks, timer ticks, flushes) goes through a FIFO queue
// mako owns, not straight to gnet's EventLoop.Execute. gnet v2.10's
// Execute is not FIFO: Poller.Trigger puts a task in a second queue once
// its first queue holds MaxPollEventsCap (1,024) tasks, and the first queue
// is drained to empty before the second is looked at, so a task posted
// later can run first (pkg/netpoll/poller_epoll_default.go). Here gnet
// sees at most one task per loop (the drain), so its queue never grows.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"mako/pubsub"
)

// chunkBudget bounds the work of one drain: one unit per task plus one per
// subscriber visited by a delivery. Past it the drain re-arms through the
// loop's wake socket and returns, so a delivery to 100,000 subscribers is
// ~100 chunks and the loop's sockets and timers are served between them
// (see drainInbox); the re-arm costs a write, a read and an epoll_wait.
const chunkBudget = 1024

// inboxKeep is the capacity of a drained queue slice kept for reuse;
// larger ones (after a burst) are dropped so a loop does not hold on to
// the memory of its worst moment.
const inboxKeep = 4096

// item is one posted task: a function, a fan-out batch, or a gap marker.
type item struct {
	fn    func()
	ms    []*pubsub.Message
	gap   map[string]struct{} // channels whose messages were not queued
	flush bool                // write the sessions' coalesced output
}

// inbox is a multi-producer, single-consumer FIFO. Producers append under
// mu; the loop takes the whole queue at once (a slice swap) and works
// through it without the lock. A mutex and two slices measured faster than
// a lock-free list here (BenchmarkInboxPost): posts are rare next to the
// work each one carries, and the swap keeps the consumer lock-free.
type inbox struct {
	mu    sync.Mutex
	q     []item
	armed bool // a drain is posted to gnet or running

	// backlog is the number of messages in queued batches (q, run and the
	// unfinished head), bounded by limits.max_loop_backlog.
	backlog atomic.Int64
	cuts    atomic.Int64 // sessions cut because their channel had a gap
	dropped atomic.Int64 // messages not queued (gap markers stand for them)
	drains  atomic.Int64 // drain tasks run (chunks), for tests

	// Loop-owned: the batch taken from q, and the cursor of the head.
	run     []item
	pos     int
	head    delivery
	resumed bool // the last drain ran out of budget
}

// delivery is the cursor of the batch at the head of the inbox: message
// index, and while a message is part-delivered its entry, send time and
// variant generation (the subscriber cursor itself is chanEntry.cur).
type delivery struct {
	mi     int
	active bool // ms[mi] is part-delivered
	entry  *chanEntry
	gen    uint64
	now    time.Time
}

// execute runs fn on the loop after everything posted before it. It is the
// only way other goroutines reach loop-owned state.
func (l *loop) execute(fn func()) {
	l.post(item{fn: fn})
}

// post appends it and arms a drain when the inbox was idle.
func (l *loop) post(it item) {
	in := &l.in
	in.mu.Lock()
	in.q = append(in.q, it)
	arm := !in.armed
	in.armed = true
	in.mu.Unlock()
	if arm {
		l.arm()
	}
}

// Deliver implements pubsub.Sink: called on a fan-out worker, it queues the
// batch for the loop. Messages of one channel come from one worker and the
// inbox is FIFO, so their order holds. When the batch would take the loop's
// backlog past limits.max_loop_backlog, it is not queued: a gap marker
// naming its channels is (merged into the last one when that is the tail),
// and the loop cuts the holders of those channels when it reaches it.
func (l *loop) Deliver(ms []*pubsub.Message) {
	in := &l.in
	max := int64(l.s.cfg.Limits.MaxLoopBacklog)
	in.mu.Lock()
	if in.backlog.Load()+int64(len(ms)) <= max {
		in.backlog.Add(int64(len(ms)))
		in.q = append(in.q, item{ms: ms})
	} else {
		in.dropped.Add(int64(len(ms)))
		var gap map[string]struct{}
		if n := len(in.q); n > 0 && in.q[n-1].gap != nil {
			gap = in.q[n-1].gap
		} else {
			gap = make(map[string]struct{})
			in.q = append(in.q, item{gap: gap})
		}
		for _, m := range ms {
			gap[m.Channel] = struct{}{}
		}
	}
	arm := !in.armed
	in.armed = true
	in.mu.Unlock()
	if arm {
		l.arm()
	}
}

func (l *loop) arm() {
	if err := l.el.Execute(context.Background(), gnet.RunnableFunc(l.drainTask)); err != nil {
		l.s.log.Warn("event loop refused a task", "cause", err.Error())
	}
}

// rearm has the next drain of a busy inbox run (it stays armed) after the
// loop has polled its sockets: through the wake socket, or Execute until
// gnet has opened that (see wake.go).
func (l *loop) rearm() {
	l.in.resumed = true
	switch {
	case l.wakePending: // a drain is on its way
	case l.wakeOpen && l.wk.signal():
		l.wakePending = true
	default:
		l.arm()
	}
}

func (l *loop) drainTask(context.Context) error {
	l.drainInbox(l.budget)
	return nil
}

// drainInbox runs posted work in order until the inbox is empty or budget is
// spent. A batch or flush that does not finish stays at the head with its
// cursor, and the drain re-arms (rearm): the next chunk runs after gnet has
// polled the loop's sockets and served those that are readable, and after
// whatever gnet holds for the loop then. Timers due by then run first on
// resuming: the ticker's own task waits at the tail, and pings and
// handshake deadlines must not starve behind a backlog.
func (l *loop) drainInbox(budget int) {
	in := &l.in
	in.drains.Add(1)
	if in.resumed {
		in.resumed = false
		l.runDueTimers()
	}
	for {
		if in.pos == len(in.run) && !l.take() {
			return
		}
		if budget <= 0 {
			l.rearm()
			return
		}
		it := &in.run[in.pos]
		switch {
		case it.fn != nil:
			fn := it.fn
			in.run[in.pos] = item{}
			in.pos++
			budget--
			fn()
		case it.flush:
			if !l.flushSome(&budget) {
				l.rearm()
				return
			}
			in.run[in.pos] = item{}
			in.pos++
		case it.gap != nil:
			gap := it.gap
			in.run[in.pos] = item{}
			in.pos++
			budget -= l.cutGap(gap)
		default:
			if !l.deliverBatch(it.ms, &budget) {
				l.rearm()
				return
			}
			in.run[in.pos] = item{}
			in.pos++
		}
	}
}

// take moves the posted queue into run; false (and disarmed) when empty.
func (l *loop) take() bool {
	in := &l.in
	old := in.run[:0]
	if cap(old) > inboxKeep {
		old = nil
	}
	in.mu.Lock()
	if len(in.q) == 0 {
		in.armed = false
		in.mu.Unlock()
		in.run, in.pos = old, 0
		return false
	}
	in.run, in.q = in.q, old
	in.mu.Unlock()
	in.pos = 0
	return true
}

// cutGap closes the sessions holding a channel some of whose messages were
// not queued (see closeLosers): they would otherwise stay open with a silent
// gap. Sessions subscribing between the drop and this marker are closed
// too (they cannot be told apart). It returns the work done, for the budget.
func (l *loop) cutGap(chans map[string]struct{}) int {
	entries := make([]*chanEntry, 0, len(chans))
	for ch := range chans {
		if e := l.index[ch]; e != nil {
			entries = append(entries, e)
		}
	}
	n := l.closeLosers(entries)
	if n > 0 {
		l.in.cuts.Add(int64(n))
		l.s.log.Warn("loop backlog over limits.max_loop_backlog: closing sessions that lost messages", "sessions", n, "channels", len(chans))
	}
	return 1 + n
}
