package server

// Hooks for the package's external tests (package server_test), which
// need a real server and so cannot live inside the package (e2e imports it).

// PostToLoop runs fn on loop i (in the order loops were first seen) the
// way every task reaches a loop: through the loop's inbox.
func (s *Server) PostToLoop(i int, fn func()) {
	s.loopList()[i].execute(fn)
}

// SetLoopBudget sets the work units per drain on every loop, so tests see
// chunking with a few subscribers instead of thousands.
func (s *Server) SetLoopBudget(n int) {
	done := make(chan struct{})
	for _, l := range s.loopList() {
		l.execute(func() {
			l.budget = n
			done <- struct{}{}
		})
		<-done
	}
}

// LoopInbox reports, summed over loops, the messages queued, the messages
// not queued (gap markers stand for them) and the sessions cut for a gap.
func (s *Server) LoopInbox() (backlog, dropped, cuts int64) {
	for _, l := range s.loopList() {
		backlog += l.in.backlog.Load()
		dropped += l.in.dropped.Load()
		cuts += l.in.cuts.Load()
	}
	return
}

// LoopDrains counts the drain tasks (chunks) loops have run.
func (s *Server) LoopDrains() (n int64) {
	for _, l := range s.loopList() {
		n += l.in.drains.Load()
	}
	return
}
