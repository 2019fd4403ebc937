package server

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// Hooks for the package's external tests (package server_test), which
// need a real server and so cannot live inside the package (e2e imports it).

// PostToLoop runs fn on loop i (in the order loops were first seen) the
// way every task reaches a loop: through the loop's inbox.
func (s *Server) PostToLoop(i int, fn func()) {
	s.loopList()[i].execute(fn)
}

// SetLoopBudget sets the work units per drain on every loop, so tests see
// chunking with a few subscribers instead of thousands.
// It returns once the drain that set it has ended (a gnet task queued
// behind it ran), so everything posted afterwards runs on the new budget.
func (s *Server) SetLoopBudget(n int) {
	done := make(chan struct{})
	for _, l := range s.loopList() {
		l.execute(func() {
			l.budget = n
			_ = l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				done <- struct{}{}
				return nil
			}))
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

// LoopWakeReady reports whether loop i's wake socket is open in gnet, so
// a drain's re-arm between chunks goes through epoll (it falls back to
// Execute until then). It reads the loop-owned flag on the loop.
func (s *Server) LoopWakeReady(i int) bool {
	l := s.loopList()[i]
	got := make(chan bool, 1)
	l.execute(func() { got <- l.wakeOpen })
	return <-got
}
