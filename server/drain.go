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
type drainState struct {
	list   []*session
	closed int
	start  time.Duration // Clock.Mono
	window time.Duration
	timer  timer
}

// startDrain closes every session open now with 1012, spread over window.
// Sessions opened later are not part of this drain.
func (l *loop) startDrain(window time.Duration) {
	if l.drain != nil {
		return
	}
	d := &drainState{start: l.s.clock.Mono(), window: window}
	for sess := range l.sessions {
		d.list = append(d.list, sess)
	}
	d.timer = newTimer(l.drainStep)
	l.drain = d
	l.drainStep()
}

func (l *loop) drainStep() {
	d := l.drain
	now := l.s.clock.Mono()
	target := len(d.list)
	if d.window > 0 {
		if f := float64(now-d.start) / float64(d.window); f < 1 {
			target = int(f * float64(len(d.list)))
		}
	}
	for ; d.closed < target; d.closed++ {
		d.list[d.closed].closeWith(ws.CloseServiceRestart, "broker unavailable")
		d.list[d.closed] = nil
	}
	if d.closed >= len(d.list) {
		l.drain = nil
		return
	}
	l.sched.set(&d.timer, now+drainTick)
}
