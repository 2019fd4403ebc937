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
// (a payload's subscription), since the channel selects them.
func (l *loop) cutGapped(g *pubsub.Gap) {
	var entries []*chanEntry
	if g.All {
		for name, e := range l.index {
			if g.Covers(name) {
				entries = append(entries, e)
			}
		}
	} else {
		for _, ch := range g.Channels {
			if e := l.index[ch]; e != nil {
				entries = append(entries, e)
			}
		}
	}
	if n := l.closeLosers(entries); n > 0 {
		l.s.metrics.gapCuts.Add(int64(n))
		l.s.log.Warn("fan-out queue overflowed: closing sessions that lost messages",
			"sessions", n, "channels", len(g.Channels), "all_of_worker", g.All, "worker", g.Worker)
	}
}

// closeLosers closes, 1013 behind what is already queued for them, the open
// sessions holding any of entries: they lost messages when this node fell
// behind (a full fan-out queue, or a loop past limits.max_loop_backlog).
// Sessions are collected first, since a close may run close steps that
// change the index. It returns how many it closed.
func (l *loop) closeLosers(entries []*chanEntry) int {
	var cut []*session
	for _, e := range entries {
		for _, sub := range e.subs {
			if sess := sub.sess; !sess.gone && sess.state == stOpen {
				cut = append(cut, sess)
			}
		}
	}
	n := 0
	for _, sess := range cut {
		// A session holding two lost channels is listed twice.
		if sess.state == stOpen && !sess.gone {
			sess.closeWith(closeTryAgainLater, gapCloseReason)
			n++
		}
	}
	return n
}
