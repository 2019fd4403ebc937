package server

import (
	"context"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"mako/pubsub"
)

// loop is the state one gnet event loop owns: its sessions' channel index,
// its timer schedule and its encode scratch. Everything but the atomics is
// touched on the loop only.
type loop struct {
	s  *Server
	el gnet.EventLoop
	id int

	sched      schedule
	tickPosted atomic.Bool

	// index: subscription name → the subscriptions of this loop's sessions
	// (provisional ones included). The Hub knows only that this loop holds
	// the channel; this is the loop-local half of the subscription index.
	index map[string]*chanEntry

	sessions map[*session]struct{}

	scratch  []byte
	zscratch []byte
	variants []variant

	drain *drainState // non-nil while a broker-loss drain runs

	// delivering is true inside deliverBatch: writes are queued per session
	// (see queueOut) and closes caused by failed writes wait in closedLater.
	delivering  bool
	closedLater []*session
	// Pending output: sessions holding some, spare buffers, owned bytes,
	// and whether a flush task is queued.
	dirty       []*session
	outFree     [][]byte
	outBytes    int
	flushPosted bool
}

// variant is one encoding of the message being delivered.
type variant struct {
	key    string
	frame  []byte
	zframe []byte // the permessage-deflate frame, made on first need
}

func newLoop(s *Server, el gnet.EventLoop) *loop {
	return &loop{
		s:        s,
		el:       el,
		index:    make(map[string]*chanEntry),
		sessions: make(map[*session]struct{}),
	}
}

// execute runs fn on the loop. It is the only way other goroutines reach
// loop-owned state.
func (l *loop) execute(fn func()) {
	if err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		return nil
	})); err != nil {
		l.s.log.Warn("event loop refused a task", "cause", err.Error())
	}
}

func (l *loop) runTimers() {
	l.tickPosted.Store(false)
	l.sched.run(l.s.clock.Now())
}

// Deliver implements pubsub.Sink: called on a fan-out worker, it posts the
// batch to the loop. Messages of one channel come from one worker, and the
// loop's task queue is FIFO, so their order holds.
func (l *loop) Deliver(ms []*pubsub.Message) {
	l.execute(func() { l.deliverBatch(ms) })
}

// deliverBatch delivers a batch with writes coalesced per session. The
// flush is a separate task queued behind whatever the loop already has to
// do, so consecutive batches (one per fan-out worker wake-up) share it: a
// subscriber receiving a burst gets one write syscall, not one per message.
func (l *loop) deliverBatch(ms []*pubsub.Message) {
	l.delivering = true
	for _, m := range ms {
		l.deliver(m)
	}
	l.delivering = false
	// A failed write closes its socket synchronously inside gnet; the
	// close steps change the index, so they wait until delivery is done.
	for i, sess := range l.closedLater {
		l.closedLater[i] = nil
		if !sess.busy {
			sess.runCloseSteps()
		}
	}
	l.closedLater = l.closedLater[:0]
	if len(l.dirty) > 0 && !l.flushPosted {
		l.flushPosted = true
		l.execute(l.flushTask)
	}
}

func (l *loop) flushTask() {
	l.flushPosted = false
	l.flushOut()
}

// Coalescing bounds: one session's buffer is written once it reaches
// maxSessionOut, and everything is written once the loop's sessions own
// maxLoopOut bytes, so a burst to many subscribers never holds much memory.
const (
	maxSessionOut = 64 << 10
	maxLoopOut    = 4 << 20
	maxFreeOut    = 256
)

// queueOut appends a frame to the session's pending output. A session's
// first frame is held by reference when shared (a fan-out frame, immutable
// until the flush), so the common case — one message per subscriber per
// flush — copies nothing and allocates nothing per subscriber; a buffer is
// made only when a second frame arrives.
func (l *loop) queueOut(sess *session, frame []byte, shared bool) {
	switch {
	case sess.out == nil && shared:
		sess.out, sess.outOwned = frame, false
		l.dirty = append(l.dirty, sess)
		return
	case sess.out == nil:
		sess.out, sess.outOwned = l.outBuf(len(frame)), true
		l.dirty = append(l.dirty, sess)
	case !sess.outOwned:
		buf := l.outBuf(len(sess.out) + len(frame))
		l.outBytes += len(sess.out)
		sess.out, sess.outOwned = append(buf, sess.out...), true
	}
	sess.out = append(sess.out, frame...)
	l.outBytes += len(frame)
	switch {
	case l.outBytes >= maxLoopOut:
		l.flushOut()
	case len(sess.out) >= maxSessionOut:
		out := sess.out
		sess.out = out[:0] // gnet copies what the socket does not take
		l.outBytes -= len(out)
		sess.send(out)
	}
}

// outBuf returns an empty buffer for at least n bytes.
func (l *loop) outBuf(n int) []byte {
	if k := len(l.outFree); k > 0 && cap(l.outFree[k-1]) >= n {
		b := l.outFree[k-1]
		l.outFree = l.outFree[:k-1]
		return b
	}
	return make([]byte, 0, 2*n)
}

// flushOut writes every session's pending output.
func (l *loop) flushOut() {
	for i, sess := range l.dirty {
		l.dirty[i] = nil
		out, owned := sess.out, sess.outOwned
		if out == nil {
			continue // closed, or flushed early by closeWith
		}
		sess.out, sess.outOwned = nil, false
		sess.send(out)
		if owned && cap(out) <= maxSessionOut*2 && len(l.outFree) < maxFreeOut {
			l.outFree = append(l.outFree, out[:0])
		}
	}
	l.dirty = l.dirty[:0]
	l.outBytes = 0
}

// chanEntry is the loop-local half of the subscription index for one name.
type chanEntry struct {
	subs    []*subscription
	acked   bool
	waiters []func(error)
}

// hold adds sub to the loop-local index; the first holder of a name on this
// loop subscribes the loop at the Hub, and every holder's done waits for the
// broker's acknowledgement.
func (l *loop) hold(sub *subscription, done func(error)) {
	e := l.index[sub.name]
	if e == nil {
		e = &chanEntry{waiters: []func(error){done}}
		l.index[sub.name] = e
		e.subs = append(e.subs, sub)
		l.s.hub.Subscribe(sub.name, l.id, func(err error) {
			l.execute(func() { l.acked(sub.name, e, err) })
		})
		return
	}
	e.subs = append(e.subs, sub)
	if e.acked {
		done(nil)
		return
	}
	e.waiters = append(e.waiters, done)
}

func (l *loop) acked(name string, e *chanEntry, err error) {
	w := e.waiters
	e.waiters = nil
	if err == nil && l.index[name] == e {
		e.acked = true
	} else if err != nil && l.index[name] == e {
		// Nobody holds a failed channel: the next holder asks the Hub again.
		delete(l.index, name)
		l.s.hub.Unsubscribe(name, l.id)
	}
	for _, f := range w {
		f(err)
	}
}

// release removes sub from the index; the last holder on this loop
// unsubscribes the loop at the Hub.
func (l *loop) release(sub *subscription) {
	e := l.index[sub.name]
	if e == nil {
		return
	}
	subs := e.subs
	for i, x := range subs {
		if x == sub {
			last := len(subs) - 1
			subs[i] = subs[last]
			subs[last] = nil
			subs = subs[:last]
			break
		}
	}
	e.subs = subs
	if len(subs) == 0 {
		delete(l.index, sub.name)
		l.s.hub.Unsubscribe(sub.name, l.id)
	}
}

// closeAll starts the shutdown of every session of this loop.
func (l *loop) closeAll() {
	for sess := range l.sessions {
		sess.closeWith(1001, "server shutting down")
	}
}
