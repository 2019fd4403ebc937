package server

import (
	"context"
	"sync"
)

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
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		l.execute(func() {
			defer wg.Done()
			mu.Lock()
			st.Indexed += len(l.index)
			st.Timers += len(l.sched.h)
			mu.Unlock()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return st, nil
	case <-ctx.Done():
		return st, ctx.Err()
	}
}
