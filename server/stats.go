package server

import "context"

// Stats is a snapshot of the server's bookkeeping, for operators and leak
// tests: after every client left, everything but Loops is zero.
type Stats struct {
	Loops       int
	Connections int64 // open sockets
	Sessions    int64 // sessions not yet finished (close steps included)
	Channels    int   // channels held at the Hub
	Indexed     int   // loop-local index entries (subscription names)
	Timers      int   // scheduled timers over all loops
}

// Stats collects a snapshot. Loop-owned counts are read on their loops, so
// this waits for each loop to run a task; it is not for hot paths.
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	st := Stats{
		Connections: s.metrics.connCount.Load(),
		Sessions:    s.sessions.Load(),
		Channels:    s.hub.Channels(),
	}
	loops := s.loopList()
	st.Loops = len(loops)
	type counts struct{ indexed, timers int }
	got := make(chan counts, len(loops))
	for _, l := range loops {
		l.execute(func() { got <- counts{len(l.index), len(l.sched.h)} })
	}
	for range loops {
		select {
		case c := <-got:
			st.Indexed += c.indexed
			st.Timers += c.timers
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
	return st, nil
}
