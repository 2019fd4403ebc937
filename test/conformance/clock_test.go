package conformance

import (
	"math"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// fakeClock runs the fixture's server on a clock the test advances; its
// timers run only through e2e.Tick.
func fakeClock(f *fixture) *e2e.FakeClock {
	c := e2e.NewFakeClock()
	f.opts = append(f.opts, func(o *server.Options) { o.Clock, o.ManualTimers = c, true })
	return c
}

// re-authorization on a fake clock: every period − random(0, jitter); a
// changed authorizer field calls on_authorization_change with the new body;
// an error ends the subscription, after which no renewal runs.
func TestReauthorizationFakeClock(t *testing.T) {
	t.Parallel()
	var clock *e2e.FakeClock
	f := newFixture(t, func(f *fixture) {
		clock = fakeClock(f)
		s := renewalService(f)
		s.AuthorizationRenewalPeriod, s.AuthorizationRenewalJitter = 60, 10
		f.svc.ReplyFunc("/authorizer", sequence(
			`{"status":"ok","caps":"r"}`,
			`{"status":"ok","caps":"w"}`,
			`{"status":"error","error":"Revoked."}`,
		))
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", "")
	e2e.Tick(t, f.srv, clock, 50*time.Second-time.Millisecond)
	f.svc.NoCall(t) // never before period − jitter
	e2e.Tick(t, f.srv, clock, 10*time.Second+time.Millisecond)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`)
	f.call("/on_authorization_change", `{"subscription":"books.b1","org":"o1","caps":"w","user_id":"u1","session_id":"s1"}`)
	e2e.Tick(t, f.srv, clock, 60*time.Second)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"w","user_id":"u1","session_id":"s1"}`)
	body := `{"subscription":"books.b1","org":"o1","caps":"w","user_id":"u1","session_id":"s1"}`
	f.call("/before_unsubscribe", body)
	f.call("/on_unsubscribe", body)
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"Revoked.","org":"o1"}`)
	e2e.Tick(t, f.srv, clock, time.Hour)
	f.svc.NoCall(t)
	c.Quiet()
}

// expectLiveAt is expectLive on a fake clock: the message was delivered as
// it arrived, at sent (the fake now). received_at is stamped by the broker
// on the real clock, so only its form is checked, not that it precedes
// sent_at.
func expectLiveAt(t testing.TB, got map[string]any, want string, sent time.Time) {
	t.Helper()
	g := clone(got)
	parseISO(t, "received_at", g["received_at"])
	if s := parseISO(t, "sent_at", g["sent_at"]); !s.Equal(sent) {
		t.Fatalf("sent_at %v, want %v in %s", s, sent, enc(got))
	}
	q, ok := g["queue_size"].(float64)
	if !ok || q < 0 || q != math.Trunc(q) {
		t.Fatalf("queue_size = %#v, want an integer ≥ 0 in %s", g["queue_size"], enc(got))
	}
	delete(g, "received_at")
	delete(g, "sent_at")
	delete(g, "queue_size")
	expectJSONMsg(t, "live message", g, want)
}

// expectLateAt is expectLate with sent_at equal to sent.
func expectLateAt(t testing.TB, got map[string]any, want string, sent time.Time) {
	t.Helper()
	expectLate(t, got, want)
	if s := parseISO(t, "sent_at", got["sent_at"]); !s.Equal(sent) {
		t.Fatalf("sent_at %v, want %v in %s", s, sent, enc(got))
	}
}

// Timers run on the monotonic reading: with the wall clock set back an hour
// (NTP, VM resume) right after subscribing, re-authorization still comes one
// period of elapsed time later, not an hour and a period later.
func TestReauthorizationWallClockStepBack(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(_ *fixture, s *config.Service) { s.AuthorizationRenewalJitter = 0 })
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	clock.StepWall(-time.Hour)
	for i := 0; i < 2; i++ {
		e2e.Tick(t, f.srv, clock, renewalPeriod-time.Millisecond)
		f.svc.NoCall(t)
		e2e.Tick(t, f.srv, clock, time.Millisecond)
		f.call("/authorizer", `{"subscription":"books.b1","user_id":"u1","session_id":"s1"}`)
	}
	// A step forward does not bring the next one early either.
	clock.StepWall(2 * time.Hour)
	e2e.Tick(t, f.srv, clock, renewalPeriod-time.Millisecond)
	f.svc.NoCall(t)
	c.Quiet()
}

// A throttle window is a timer: after a wall-clock step back its trailing
// message still goes out when the window's elapsed time ends, and sent_at is
// the (stepped) wall time.
func TestThrottleWallClockStepBack(t *testing.T) {
	t.Parallel()
	r := newThrottleRig(t)
	const window = time.Second
	for i := 0; i < 3; i++ {
		r.pub(i, `{"throttle":1}`)
	}
	r.expectFrames(true, 0)
	r.clock.StepWall(-time.Hour)
	r.tick(window - time.Millisecond)
	r.expectFrames(false)
	r.tick(time.Millisecond)
	r.expectFrames(false, 2)
	// The window that sending opened lapses by elapsed time too.
	r.tick(window)
	r.pub(3, `{"throttle":1}`)
	r.expectFrames(true, 3)
}
