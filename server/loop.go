package server

import (
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

	in     inbox
	budget int // work per drain (chunkBudget; tests lower it)

	// wk is the loop's wake socket (wake.go), nil without one; wakeOpen is
	// set once gnet has opened it on this loop, and wakePending while its
	// byte is unread (a drain is on its way).
	wk          *waker
	wakeOpen    bool
	wakePending bool

	scratch  []byte
	zscratch []byte
	// variants is the encode cache of the message being delivered, indexed
	// by variant id; gen stamps the message (see liveFrame).
	variants []variant
	gen      uint64

	drain *drainState // non-nil while a broker-loss drain runs

	// delivering is true inside deliverBatch: writes are queued per session
	// (see queueOut) and closes caused by failed writes wait in closedLater.
	delivering  bool
	closedLater []*session
	// Pending output: sessions holding some, spare buffers, owned bytes,
	// and whether a flush task is queued.
	dirty       []*session
	flushAt     int // dirty before it are written (a paused flush)
	outFree     [][]byte
	outBytes    int
	flushPosted bool
	fanoutLat   fanoutMarks // messages written by the coming flush
}

func newLoop(s *Server, el gnet.EventLoop) *loop {
	return &loop{
		s:        s,
		el:       el,
		index:    make(map[string]*chanEntry),
		sessions: make(map[*session]struct{}),
		budget:   chunkBudget,
	}
}

func (l *loop) runTimers() {
	l.tickPosted.Store(false)
	l.sched.run(l.s.clock.Mono())
}

// runDueTimers runs the timers due now, between chunks of a long drain.
func (l *loop) runDueTimers() {
	if now := l.s.clock.Mono(); l.sched.due(now) {
		l.sched.run(now)
	}
}

// chanEntry is the loop-local half of the subscription index for one name.
type chanEntry struct {
	// subs holds each subscription at its slot (subscription.slot), so a
	// release is a swap-remove without a scan.
	subs []*subscription
	// cur is the delivery cursor while a message is part-delivered: subs
	// before it got the message, subs from it on have not.
	cur     int
	acked   bool
	waiters []func(error)

	// Variant interning: subscriptions with equal extra-field values share
	// an id (subscription.vid), reference-counted so ids of departed values
	// are reused and the table stays as small as the live set.
	vids  map[string]int32
	vrefs []int32
	vkeys []string
	vfree []int32
}

func newChanEntry() *chanEntry {
	return &chanEntry{vids: make(map[string]int32)}
}

// add places sub at the end of subs and interns its variant.
func (e *chanEntry) add(sub *subscription) {
	sub.entry, sub.slot = e, int32(len(e.subs))
	e.subs = append(e.subs, sub)
	id, ok := e.vids[sub.variant]
	if !ok {
		if n := len(e.vfree); n > 0 {
			id = e.vfree[n-1]
			e.vfree = e.vfree[:n-1]
			e.vkeys[id] = sub.variant
		} else {
			id = int32(len(e.vrefs))
			e.vrefs = append(e.vrefs, 0)
			e.vkeys = append(e.vkeys, sub.variant)
		}
		e.vids[sub.variant] = id
	}
	e.vrefs[id]++
	sub.vid = id
}

// remove takes sub out of subs in O(1). Outside a part-delivered message
// (cur 0) it is a swap-remove with the last. During one, a sub before the
// cursor (delivered) is first swapped with the last delivered one and the
// cursor steps back, so the unvisited part keeps exactly its members and
// nobody is skipped or visited twice when delivery resumes.
func (e *chanEntry) remove(sub *subscription) bool {
	i := int(sub.slot)
	if sub.entry != e || i < 0 || i >= len(e.subs) || e.subs[i] != sub {
		return false
	}
	if i < e.cur {
		c := e.cur - 1
		e.move(c, i)
		i, e.cur = c, c
	}
	last := len(e.subs) - 1
	e.move(last, i)
	e.subs[last] = nil
	e.subs = e.subs[:last]
	id := sub.vid
	if e.vrefs[id]--; e.vrefs[id] == 0 {
		delete(e.vids, e.vkeys[id])
		e.vkeys[id] = ""
		e.vfree = append(e.vfree, id)
	}
	sub.entry, sub.slot, sub.vid = nil, -1, -1
	return true
}

// move puts subs[from] at slot to.
func (e *chanEntry) move(from, to int) {
	if from == to {
		return
	}
	x := e.subs[from]
	e.subs[to] = x
	x.slot = int32(to)
}

// hold adds sub to the loop-local index; the first holder of a name on this
// loop subscribes the loop at the Hub, and every holder's done waits for the
// broker's acknowledgement.
func (l *loop) hold(sub *subscription, done func(error)) {
	e := l.index[sub.name]
	if e == nil {
		e = newChanEntry()
		e.waiters = []func(error){done}
		l.index[sub.name] = e
		e.add(sub)
		l.s.hub.Subscribe(sub.name, l.id, func(err error) {
			l.execute(func() { l.acked(sub.name, e, err) })
		})
		return
	}
	e.add(sub)
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
	if e == nil || !e.remove(sub) {
		return
	}
	if len(e.subs) == 0 {
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
