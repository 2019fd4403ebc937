package server

import (
	"time"

	"mako/server/ws"
)

// drainTick paces a drain: closes are spread over the window in steps this
// long, so a loop wakes ~100 times a second while draining and not per session.
const drainTick = 10 * time.Millisecond

// drainState spreads closing a loop's sessions evenly over a window, so a
// lost Redis does not send every client to reconnect in the same instant.
// It exists from the loss until Redis is back or every session is closed:
// first armed (the redis.loss_grace wait, on the loop's schedule), then
// draining.
type drainState struct {
	gen    uint64 // the loss it belongs to (lossWatch.gen)
	list   []*session
	begun  bool
	closed int
	start  time.Duration // Clock.Mono: the end of the grace
	window time.Duration
	timer  timer
}

// armDrain prepares the drain of the loss gen: at start (a Clock.Mono
// reading, the end of redis.loss_grace) every session open then is closed
// with 1012, spread over window, unless stopDrain runs first. Sessions
// opened later are not part of this drain. A task posted for a loss that
// has already ended does nothing.
func (l *loop) armDrain(gen uint64, start, window time.Duration) {
	if l.drain != nil || l.s.loss.gen.Load() != gen {
		return
	}
	d := &drainState{gen: gen, start: start, window: window}
	d.timer = newTimer(l.drainStep)
	l.drain = d
	if start <= l.s.clock.Mono() {
		l.drainStep()
		return
	}
	l.sched.set(&d.timer, start)
}

// stopDrain ends the drain (armed or running) of a loss that the recovery
// gen ended: the sessions still open stay, their channels already
// resubscribed by the broker. A drain of a later loss is left alone (loop
// tasks are not assumed to run in posting order). It returns whether the
// drain had begun closing sessions.
func (l *loop) stopDrain(gen uint64) bool {
	d := l.drain
	if d == nil || d.gen > gen {
		return false
	}
	l.sched.stop(&d.timer)
	l.drain = nil
	return d.begun
}

func (l *loop) drainStep() {
	d := l.drain
	now := l.s.clock.Mono()
	if !d.begun {
		d.begun = true
		for sess := range l.sessions {
			d.list = append(d.list, sess)
		}
	}
	target := len(d.list)
	if d.window > 0 {
		if f := float64(now-d.start) / float64(d.window); f < 1 {
			target = int(f * float64(len(d.list)))
		}
	}
	for ; d.closed < target; d.closed++ {
		if !d.list[d.closed].gone {
			l.s.metrics.drainClosed.Add(1)
		}
		d.list[d.closed].closeWith(ws.CloseServiceRestart, "broker unavailable")
		d.list[d.closed] = nil
	}
	if d.closed >= len(d.list) {
		l.drain = nil
		return
	}
	l.sched.set(&d.timer, now+drainTick)
}
