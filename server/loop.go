package server

import (
	"context"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
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
	l.sched.run(l.s.clock.Mono())
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
