package conformance

import (
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

// heartbeat on a fake clock: the first within one period, then every
// period, and none once the subscription ended — checked without waiting
// for real time.
func TestHeartbeatFakeClock(t *testing.T) {
	t.Parallel()
	var clock *e2e.FakeClock
	f := newFixture(t, func(f *fixture) {
		clock = fakeClock(f)
		f.cfg.Services["books"] = &config.Service{
			Authorizer:      f.url("/authorizer"),
			HeartbeatPeriod: 30,
			OnHeartbeat:     f.url("/hb"),
		}
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	body := `{"subscription":"books.b1","user_id":"u1","session_id":"s1"}`
	e2e.Tick(t, f.srv, clock, 29*time.Second+999*time.Millisecond) // first: after random(0, period)
	e2e.Tick(t, f.srv, clock, time.Millisecond)
	f.call("/hb", body)
	f.svc.NoCall(t)
	e2e.Tick(t, f.srv, clock, 29*time.Second)
	f.svc.NoCall(t) // not before a whole period
	e2e.Tick(t, f.srv, clock, time.Second)
	f.call("/hb", body)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok"}`)
	e2e.Tick(t, f.srv, clock, 10*time.Minute)
	f.svc.NoCall(t)
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
