package conformance

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

// Renewal timing of renewalService, on a fake clock: each re-authorization
// comes period − random(0, jitter) after the previous one, so never before
// period − jitter and always by period.
const (
	renewalPeriod = 60 * time.Second
	renewalJitter = 10 * time.Second
)

func renewalService(f *fixture) *config.Service {
	s := &config.Service{
		Authorizer:                 f.url("/authorizer"),
		AuthorizerFields:           []string{"caps"},
		ExtraFields:                []string{"org"},
		AuthorizationRenewalPeriod: config.Seconds(renewalPeriod.Seconds()),
		AuthorizationRenewalJitter: config.Seconds(renewalJitter.Seconds()),
		BeforeUnsubscribe:          f.url("/before_unsubscribe"),
		OnUnsubscribe:              f.url("/on_unsubscribe"),
		OnAuthorizationChange:      f.url("/on_authorization_change"),
	}
	f.cfg.Services["books"] = s
	return s
}

// renewalFixture is a fixture on a fake clock with renewalService; mod may
// adjust the service and its replies.
func renewalFixture(t *testing.T, mod func(f *fixture, s *config.Service)) (*fixture, *e2e.FakeClock) {
	t.Helper()
	var clock *e2e.FakeClock
	f := newFixture(t, func(f *fixture) {
		clock = fakeClock(f)
		s := renewalService(f)
		if mod != nil {
			mod(f, s)
		}
	})
	return f, clock
}

// nextRenewal advances the clock to just before the earliest moment the
// next re-authorization may run (period − jitter after the last one) and
// checks nothing was called, then to the end of the period, by which it must
// have run. The service calls it made are left for the caller to check.
func nextRenewal(t *testing.T, f *fixture, clock *e2e.FakeClock) {
	t.Helper()
	e2e.Tick(t, f.srv, clock, renewalPeriod-renewalJitter-time.Millisecond)
	f.svc.NoCall(t)
	e2e.Tick(t, f.srv, clock, renewalJitter+time.Millisecond)
}

// timers is the number of timers scheduled on the server's loops.
func timers(t *testing.T, f *fixture) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	st, err := f.srv.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st.Timers
}

// periodic re-authorization: the authorizer is called again every
// period − random(0, jitter) with the full body (authorizer fields
// included); unchanged fields call nothing else and the client hears
// nothing.
func TestReauthorizationPeriodic(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(f *fixture, _ *config.Service) {
		f.svc.ReplyFunc("/authorizer", sequence(
			`{"status":"ok","caps":"r","other":1}`,
			`{"status":"ok","caps":"r","other":2}`,
		))
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	for i := 1; i <= 3; i++ {
		nextRenewal(t, f, clock)
		f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`)
		f.svc.NoCall(t)
	}
	c.Quiet()
	// Still subscribed.
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLiveAt(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`, clock.Now())
}

// Without jitter the period is exact.
func TestReauthorizationPeriodNoJitter(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(_ *fixture, s *config.Service) { s.AuthorizationRenewalJitter = 0 })
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	for i := 0; i < 3; i++ {
		e2e.Tick(t, f.srv, clock, renewalPeriod-time.Millisecond)
		f.svc.NoCall(t)
		e2e.Tick(t, f.srv, clock, time.Millisecond)
		f.call("/authorizer", `{"subscription":"books.b1","user_id":"u1","session_id":"s1"}`)
		f.svc.NoCall(t)
	}
	c.Quiet()
}

// periodic re-authorization error: the subscription ends, before_unsubscribe
// and on_unsubscribe are called, the client gets {"event":"unsubscribe",
// "subscription","error"} + extra fields + before_unsubscribe's data; no
// re-authorization runs after it.
func TestReauthorizationError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, reply, want string
	}{
		{"with error", `{"status":"error","error":"Revoked.","data":"ignored"}`,
			`{"event":"unsubscribe","subscription":"books.b1","error":"Revoked.","org":"o1","data":{"bye":1}}`},
		{"default error", `{"status":"error"}`,
			`{"event":"unsubscribe","subscription":"books.b1","error":"` + errUnauthorized + `","org":"o1","data":{"bye":1}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, clock := renewalFixture(t, func(f *fixture, _ *config.Service) {
				f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok","caps":"r"}`, tc.reply, `{"status":"ok","caps":"r"}`))
				f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":{"bye":1}}`)
			})
			c := f.authed()
			expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
			f.call("/authorizer", "")
			nextRenewal(t, f, clock)
			body := `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`
			f.call("/authorizer", body)
			f.call("/before_unsubscribe", body)
			f.call("/on_unsubscribe", body)
			f.svc.NoCall(t)
			expectJSON(t, c.Recv(), tc.want)
			expectJSON(t, c.Roundtrip(ev("message", "books.b1")),
				`{"event":"message","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
			// Re-authorization stopped with the subscription.
			if n := timers(t, f); n != 0 {
				t.Fatalf("%d timers left after the revocation", n)
			}
			e2e.Tick(t, f.srv, clock, 10*renewalPeriod)
			f.svc.NoCall(t)
			c.Quiet()
		})
	}
}

// A revocation without on_unsubscribe: the push has no data, and
// before_unsubscribe's error reply is ignored; the name can be subscribed
// again at once.
func TestReauthorizationErrorCallbackResultsIgnored(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(f *fixture, s *config.Service) {
		s.OnUnsubscribe = ""
		f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok"}`, `{"status":"error","error":"Revoked."}`, `{"status":"ok"}`))
		f.svc.Reply("/before_unsubscribe", `{"status":"error","error":"no"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	nextRenewal(t, f, clock)
	f.call("/authorizer", "")
	f.call("/before_unsubscribe", "")
	f.svc.NoCall(t)
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"Revoked."}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
}

// Re-authorization stops when the subscription ends: after an unsubscribe,
// and after the connection closed. Another subscription keeps renewing.
func TestReauthorizationStops(t *testing.T) {
	t.Parallel()
	t.Run("unsubscribe", func(t *testing.T) {
		t.Parallel()
		f, clock := renewalFixture(t, func(_ *fixture, s *config.Service) { s.AuthorizationRenewalJitter = 0 })
		c := f.authed()
		subscribed(t, f, c, "books.b1")
		subscribed(t, f, c, "books.b2")
		e2e.Tick(t, f.srv, clock, renewalPeriod/2)
		expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok"}`)
		f.call("/before_unsubscribe", "")
		f.call("/on_unsubscribe", "")
		for i := 0; i < 3; i++ {
			e2e.Tick(t, f.srv, clock, renewalPeriod)
			f.call("/authorizer", `{"subscription":"books.b2","user_id":"u1","session_id":"s1"}`)
			f.svc.NoCall(t)
		}
		c.Quiet()
	})
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		f, clock := renewalFixture(t, nil)
		c := f.authed()
		subscribed(t, f, c, "books.b1")
		e2e.Tick(t, f.srv, clock, renewalPeriod/2)
		_ = c.Conn.CloseNow()
		f.call("/before_unsubscribe", "")
		f.call("/on_unsubscribe", "")
		if n := timers(t, f); n != 0 {
			t.Fatalf("%d timers left after the connection closed", n)
		}
		e2e.Tick(t, f.srv, clock, 10*renewalPeriod)
		f.svc.NoCall(t)
	})
}

// Changed authorizer fields → on_authorization_change with the new body;
// unchanged ones (an unlisted field changing does not count) → nothing.
func TestAuthorizationChange(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(f *fixture, _ *config.Service) {
		f.svc.ReplyFunc("/authorizer", sequence(
			`{"status":"ok","caps":"r"}`,
			`{"status":"ok","caps":"rw"}`,
			`{"status":"ok","caps":"rw","unlisted":1}`,
		))
		f.svc.Reply("/on_authorization_change", `{"status":"ok","data":"ignored"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	nextRenewal(t, f, clock)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`)
	f.call("/on_authorization_change", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
	f.svc.NoCall(t)
	for i := 0; i < 2; i++ {
		nextRenewal(t, f, clock)
		f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
		f.svc.NoCall(t)
	}
	c.Quiet()
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLiveAt(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`, clock.Now())
}

// An on_authorization_change error ends the subscription like a
// re-authorization error.
func TestAuthorizationChangeError(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(f *fixture, _ *config.Service) {
		f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok","caps":"rw"}`, `{"status":"ok","caps":"r"}`))
		f.svc.Reply("/on_authorization_change", `{"status":"error","error":"Downgraded."}`)
		f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":[1]}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", "")
	nextRenewal(t, f, clock)
	body := `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
	f.call("/on_authorization_change", body)
	f.call("/before_unsubscribe", body)
	f.call("/on_unsubscribe", body)
	f.svc.NoCall(t)
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"Downgraded.","org":"o1","data":[1]}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")),
		`{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
	e2e.Tick(t, f.srv, clock, 10*renewalPeriod)
	f.svc.NoCall(t)
}

// An on_authorization_change error without an error string ends it with
// Unhandled exception. (spec-silent; SocketShark's perform_service_request
// default for every callback but the authorizer).
func TestAuthorizationChangeErrorDefault(t *testing.T) {
	t.Parallel()
	f, clock := renewalFixture(t, func(f *fixture, _ *config.Service) {
		f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok","caps":"rw"}`, `{"status":"ok","caps":"r"}`))
		f.svc.Reply("/on_authorization_change", `{"status":"error"}`)
		f.svc.Reply("/before_unsubscribe", `{"status":"ok"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	nextRenewal(t, f, clock)
	f.call("/authorizer", "")
	f.call("/on_authorization_change", "")
	f.call("/before_unsubscribe", "")
	f.call("/on_unsubscribe", "")
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"`+errUnhandled+`"}`)
}

const heartbeatPeriod = 30 * time.Second

// heartbeat: with heartbeat_period and on_heartbeat, each subscription posts
// its body, first within one period, then every period; errors (an HTTP
// error, an error reply, a reply that is not JSON) are only logged: the
// client hears nothing and stays subscribed. It stops with the
// subscription.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	var clock *e2e.FakeClock
	f := newFixture(t, func(f *fixture) {
		clock = fakeClock(f)
		f.cfg.Services["books"] = &config.Service{
			Authorizer:       f.url("/authorizer"),
			AuthorizerFields: []string{"caps"},
			ExtraFields:      []string{"org"},
			HeartbeatPeriod:  config.Seconds(heartbeatPeriod.Seconds()),
			OnHeartbeat:      f.url("/heartbeat"),
		}
		f.svc.Reply("/authorizer", `{"status":"ok","caps":"r"}`)
		var n atomic.Int32
		f.svc.ReplyFunc("/heartbeat", func(e2e.Call) (int, string) {
			switch n.Add(1) % 3 {
			case 0:
				return 500, `{"status":"ok"}`
			case 1:
				return 200, `{"status":"error","error":"nope","data":1}`
			}
			return 200, `not json`
		})
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", "")
	body := `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`
	e2e.Tick(t, f.srv, clock, heartbeatPeriod) // the first: after random(0, period)
	f.call("/heartbeat", body)
	f.svc.NoCall(t)
	for i := 0; i < 4; i++ {
		e2e.Tick(t, f.srv, clock, heartbeatPeriod-time.Millisecond)
		f.svc.NoCall(t) // not before a whole period
		e2e.Tick(t, f.srv, clock, time.Millisecond)
		f.call("/heartbeat", body)
		f.svc.NoCall(t)
	}
	c.Quiet()
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLiveAt(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`, clock.Now())

	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	if n := timers(t, f); n != 0 {
		t.Fatalf("%d timers left after the unsubscribe", n)
	}
	e2e.Tick(t, f.srv, clock, 10*heartbeatPeriod)
	f.svc.NoCall(t)
}

// heartbeat needs on_heartbeat: a period alone posts nothing.
func TestHeartbeatNeedsURL(t *testing.T) {
	t.Parallel()
	var clock *e2e.FakeClock
	f := newFixture(t, func(f *fixture) {
		clock = fakeClock(f)
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer"), HeartbeatPeriod: 1}
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	if n := timers(t, f); n != 0 {
		t.Fatalf("%d timers scheduled without on_heartbeat", n)
	}
	e2e.Tick(t, f.srv, clock, time.Hour)
	f.svc.NoCall(t)
	c.Quiet()
}
