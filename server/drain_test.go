package server

import (
	"testing"
	"time"
)

type monoClock struct{ mono time.Duration }

func (c *monoClock) Now() time.Time      { return time.Time{} }
func (c *monoClock) Mono() time.Duration { return c.mono }

// Loss and recovery reach a loop as separate tasks, which need not run in
// posting order: a late task of an ended outage must neither start a drain
// nor stop the drain of the next outage.
func TestDrainTasksOfOtherOutages(t *testing.T) {
	s := &Server{clock: &monoClock{}}
	l := &loop{s: s, sessions: map[*session]struct{}{}}

	s.loss.gen.Store(2) // outage 1 already ended
	l.armDrain(1, time.Second, time.Minute)
	if l.drain != nil {
		t.Fatal("a drain was armed for an outage that had ended")
	}

	s.loss.gen.Store(3) // outage 2
	l.armDrain(3, time.Second, time.Minute)
	if l.drain == nil || len(l.sched.h) != 1 {
		t.Fatal("the grace timer of the current outage is not armed")
	}
	if l.stopDrain(2) || l.drain == nil {
		t.Fatal("the recovery of outage 1 stopped the drain of outage 2")
	}
	l.armDrain(3, time.Second, time.Minute) // a duplicate is ignored
	if len(l.sched.h) != 1 {
		t.Fatalf("%d timers, want 1", len(l.sched.h))
	}
	s.loss.gen.Store(4)
	l.stopDrain(4)
	if l.drain != nil || len(l.sched.h) != 0 {
		t.Fatal("recovery left the drain or its timer behind")
	}
}
