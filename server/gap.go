package server

import (
	"mako/pubsub"
)

// Sessions that lost messages to a full fan-out queue (see pubsub.fanout)
// are closed rather than left open with a silent gap.
//
// The close code is 1013 Try Again Later (RFC 6455 7.4.1 registry), not the
// 1008 of a slow consumer: the loss is this node's overload, not anything
// the client did, and 1013 tells a client to reconnect (after a backoff,
// possibly to another node) and resubscribe, where a client library may
// treat 1008 as a policy it must not retry against.
const (
	closeTryAgainLater = 1013
	gapCloseReason     = "messages lost: server overloaded"
)

// Gap implements pubsub.Sink: called on a fan-out worker after the batches
// that precede the loss, it posts the cut behind them, so a session gets
// every message queued before the gap, then the close.
func (l *loop) Gap(g *pubsub.Gap) {
	l.execute(func() { l.cutGapped(g) })
}

// cutGapped closes every session holding a gapped channel. Holding the
// channel covers sessions receiving under another subscription through it
// (a payload's subscription), since the channel selects them. Sessions are
// collected first: closing one may run its close steps, which change the
// index.
func (l *loop) cutGapped(g *pubsub.Gap) {
	var cut []*session
	collect := func(e *chanEntry) {
		for _, sub := range e.subs {
			if sess := sub.sess; !sess.gone && sess.state == stOpen {
				cut = append(cut, sess)
			}
		}
	}
	if g.All {
		for name, e := range l.index {
			if g.Covers(name) {
				collect(e)
			}
		}
	} else {
		for _, ch := range g.Channels {
			if e := l.index[ch]; e != nil {
				collect(e)
			}
		}
	}
	n := 0
	for _, sess := range cut {
		if sess.state == stOpen && !sess.gone {
			sess.closeWith(closeTryAgainLater, gapCloseReason)
			n++
		}
	}
	if n > 0 {
		l.s.metrics.gapCuts.Add(int64(n))
		l.s.log.Warn("fan-out queue overflowed: closing sessions that lost messages",
			"sessions", n, "channels", len(g.Channels), "all_of_worker", g.All, "worker", g.Worker)
	}
}
