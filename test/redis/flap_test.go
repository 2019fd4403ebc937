package redis

import (
	"testing"
	"time"

	"mako/internal/e2e"
	"mako/internal/redistest"
)

// restoreNth is restore for the nth outage of the test.
func (r *blipRig) restoreNth(n float64) {
	r.t.Helper()
	r.rs.Restart()
	redistest.Eventually(r.t, e2e.Timeout, "gap counted", func() bool { return r.metric("mako_redis_gaps_total") == n })
	redistest.Eventually(r.t, e2e.Timeout, "drain stopped", func() bool { return r.stats().Timers == 0 })
}

// Redis flapping twice in quick succession: the grace of the second loss
// counts from the second loss, not from the first (a timer left over from
// the first outage would start the drain at the first loss's deadline, in
// the middle of the second outage's grace). Both outages are counted.
func TestRedisFlapTwiceWithinGrace(t *testing.T) {
	const n = 10
	const grace, window = 5 * time.Second, 10 * time.Second
	r := newBlipRig(t, n, grace, window)
	r.lose()
	r.advance(3 * time.Second)
	r.restoreNth(1)
	r.advance(time.Second)
	r.lose()                   // 4 s after the first loss
	r.advance(2 * time.Second) // past the first loss's deadline
	if st := r.stats(); st.Connections != n {
		t.Fatalf("%d connections open 2 s into the second outage, want %d", st.Connections, n)
	}
	r.advance(grace - 2*time.Second - time.Millisecond) // just short of the second deadline
	if st := r.stats(); st.Connections != n {
		t.Fatalf("%d connections open just within the second grace, want %d", st.Connections, n)
	}
	r.restoreNth(2)
	r.advance(time.Hour)
	if got, drained := r.deliveries("after"); got != n || drained != 0 {
		t.Fatalf("after two blips: %d delivered, %d drained; want %d, 0", got, drained, n)
	}
	if d := r.metric("mako_redis_drain_closed_total"); d != 0 {
		t.Fatalf("drain closed %v, want 0", d)
	}
}

// Redis comes back in the middle of a drain and is lost again at once: the
// second loss waits a full grace before closing anyone more, then drains the
// sessions still open over a window of its own; every session ends up closed
// 1012 exactly once and none is left open or closed twice.
func TestRedisLostAgainRightAfterMidDrainRecovery(t *testing.T) {
	const n = 20
	const grace, window = time.Second, 100 * time.Second
	r := newBlipRig(t, n, grace, window)
	r.lose()
	r.advance(grace + window/4 + time.Millisecond)
	redistest.Eventually(t, e2e.Timeout, "a quarter drained", func() bool { return r.stats().Connections == n-n/4 })
	r.restoreNth(1)
	r.lose()
	r.advance(grace - time.Millisecond)
	if st := r.stats(); st.Connections != n-n/4 {
		t.Fatalf("%d connections open within the second grace, want %d", st.Connections, n-n/4)
	}
	r.advance(window + time.Millisecond)
	redistest.Eventually(t, e2e.Timeout, "all drained", func() bool { return r.stats().Connections == 0 })
	for i, c := range r.clients {
		if code := c.Closed(); code != 1012 {
			t.Fatalf("client %d closed with %d, want 1012", i, code)
		}
	}
	if d := r.metric("mako_redis_drain_closed_total"); d != n {
		t.Fatalf("drain closed %v, want %d", d, n)
	}
}
