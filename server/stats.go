package server

import (
	"context"

	"mako/pubsub"
)

type pubsubStats = pubsub.FanoutStats

// Stats is a snapshot of the server's bookkeeping, for operators and leak
// tests: after every client left, everything but Loops is zero.
type Stats struct {
	Loops       int
	Connections int64 // open sockets
	Sessions    int64 // sessions not yet finished (close steps included)
	Channels    int   // channels held at the Hub
	Indexed     int   // loop-local index entries (subscription names)
	Timers      int   // scheduled timers over all loops
	Calls       int64 // service calls queued, running, or awaiting their continuation

	// Per-subscription key state, summed over every subscription (walked
	// on the loops, so exact): throttle keys tracked, throttle timers kept
	// (one per key with a held message), order keys remembered; and the
	// most any one subscription holds of each.
	ThrottleKeys, ThrottleTimers, OrderKeys          int
	MaxThrottleKeys, MaxThrottleTimers, MaxOrderKeys int
}

// Stats collects a snapshot. Loop-owned counts are read on their loops, so
// this waits for each loop to run a task; it is not for hot paths.
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	st := Stats{
		Calls:       s.calls.Load(),
		Connections: s.metrics.connCount.Load(),
		Sessions:    s.sessions.Load(),
		Channels:    s.hub.Channels(),
	}
	loops := s.loopList()
	st.Loops = len(loops)
	type counts struct {
		indexed, timers int
		keys            Stats
	}
	got := make(chan counts, len(loops))
	for _, l := range loops {
		l.execute(func() { got <- counts{len(l.index), len(l.sched.h), l.keyStats()} })
	}
	for range loops {
		select {
		case c := <-got:
			st.Indexed += c.indexed
			st.Timers += c.timers
			st.addKeys(&c.keys)
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
	return st, nil
}

// RunTimers runs every timer due at the clock's now on every loop and
// returns once they ran. Service calls they start are submitted by then
// (Stats.Calls counts them). Meant for tests with Options.ManualTimers.
func (s *Server) RunTimers(ctx context.Context) error {
	loops := s.loopList()
	done := make(chan struct{}, len(loops))
	for _, l := range loops {
		l.execute(func() {
			l.runTimers()
			done <- struct{}{}
		})
	}
	for range loops {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// keyStats sums the key state of this loop's subscriptions (on the loop).
func (l *loop) keyStats() Stats {
	var k Stats
	for sess := range l.sessions {
		for _, sub := range sess.subs {
			t := Stats{OrderKeys: sub.order.Len()}
			if th := sub.throttle; th != nil {
				t.ThrottleKeys, t.ThrottleTimers = th.state.Len(), len(th.timers)
			}
			t.MaxThrottleKeys, t.MaxThrottleTimers, t.MaxOrderKeys = t.ThrottleKeys, t.ThrottleTimers, t.OrderKeys
			k.addKeys(&t)
		}
	}
	return k
}

func (st *Stats) addKeys(k *Stats) {
	st.ThrottleKeys += k.ThrottleKeys
	st.ThrottleTimers += k.ThrottleTimers
	st.OrderKeys += k.OrderKeys
	st.MaxThrottleKeys = max(st.MaxThrottleKeys, k.MaxThrottleKeys)
	st.MaxThrottleTimers = max(st.MaxThrottleTimers, k.MaxThrottleTimers)
	st.MaxOrderKeys = max(st.MaxOrderKeys, k.MaxOrderKeys)
}
