package server

// A loop's wake socket: the re-arm between the chunks of a long drain goes
// through epoll, so the loop's sockets are served between chunks.
//
// gnet v2.10 runs an EventLoop.Execute posted from inside a task in the
// same pass over its task queue (Poller.Polling drains the urgent queue
// until it is empty before the next epoll_wait), so a drain that re-armed
// with Execute let timers run between its chunks but no socket: a client's
// event or pong waited for a whole delivery to 100,000 subscribers and its
// flush. A byte written to a socket gnet polls for the loop instead makes
// the next chunk one more readiness event of the next epoll_wait, served in
// turn with the sockets that became readable meanwhile.
//
// The first drain of an idle inbox is still posted with Execute, from any
// goroutine: it runs after the sockets of the current epoll pass anyway,
// and an eventfd wake (gnet's) measured ~0.6 µs against ~1.7 µs for a
// write and read on the socket pair, paid per idle-to-busy transition,
// where the pair's cost is paid per chunk of at most chunkBudget.

import (
	"context"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// waker is a loop's wake socket pair: gnet polls one end as a connection of
// the loop (its context is the *waker, so the handler tells it from a
// session); mako writes one byte to the other end (fd) to have the loop run
// a drain. One byte is in flight at most (loop.wakePending).
type waker struct {
	l    *loop
	fd   int // mako's end, non-blocking
	once sync.Once
}

// enrollWaker gives l a wake socket, registered with gnet on l's loop
// asynchronously: gnet's OnOpen for it (on the loop) sets l.wakeOpen, and
// until then re-arms use Execute. A platform or gnet refusing it leaves l
// on Execute, which only costs the sockets' turn between chunks.
func (l *loop) enrollWaker() {
	fd, loopEnd, err := wakePair()
	if err != nil {
		l.s.log.Warn("no wake socket for an event loop: sockets wait for long deliveries", "cause", err.Error())
		return
	}
	w := &waker{l: l, fd: fd}
	if _, err := l.el.Enroll(gnet.NewContext(context.Background(), w), loopEnd); err != nil {
		_ = loopEnd.Close()
		w.close()
		l.s.log.Warn("event loop refused the wake socket: sockets wait for long deliveries", "cause", err.Error())
		return
	}
	// gnet owns a dup of loopEnd from here (it closes loopEnd itself).
	l.wk = w
}

// signal writes the wake byte; false when it could not be written, so the
// caller falls back to Execute.
func (w *waker) signal() bool {
	return wakeWrite(w.fd)
}

// close releases mako's end, once the engine has stopped.
func (w *waker) close() {
	w.once.Do(func() { wakeClose(w.fd) })
}

// onOpen, onTraffic and onClose are the handler's callbacks for the wake
// connection, on the loop. It is no session: not counted, timed or closed
// by drains and shutdown; gnet closes it when the engine stops.
func (w *waker) onOpen() { w.l.wakeOpen = true }

func (w *waker) onTraffic(c gnet.Conn) {
	l := w.l
	_, _ = c.Discard(-1)
	l.wakePending = false
	l.drainInbox(l.budget)
}

func (w *waker) onClose() {
	l := w.l
	l.wakeOpen = false
	if l.wakePending {
		// The byte is lost with the socket: the drain it stood for still
		// has to run.
		l.wakePending = false
		l.arm()
	}
}
