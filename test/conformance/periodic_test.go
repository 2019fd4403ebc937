package conformance

import (
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

const renewal = 0.3

func renewalService(f *fixture) *config.Service {
	s := &config.Service{
		Authorizer:                 f.url("/authorizer"),
		AuthorizerFields:           []string{"caps"},
		ExtraFields:                []string{"org"},
		AuthorizationRenewalPeriod: renewal,
		AuthorizationRenewalJitter: 0,
		BeforeUnsubscribe:          f.url("/before_unsubscribe"),
		OnUnsubscribe:              f.url("/on_unsubscribe"),
		OnAuthorizationChange:      f.url("/on_authorization_change"),
	}
	f.cfg.Services["books"] = s
	return s
}

// periodic re-authorization: the authorizer is called again every period
// (jitter 0) with the full body (authorizer fields included); unchanged
// fields call nothing else and the client hears nothing.
func TestReauthorizationPeriodic(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		renewalService(f)
		f.svc.ReplyFunc("/authorizer", sequence(
			`{"status":"ok","caps":"r","other":1}`,
			`{"status":"ok","caps":"r","other":2}`,
		))
	})
	c := f.authed()
	start := time.Now()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	for i := 1; i <= 3; i++ {
		f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`)
		if el := time.Since(start); el < time.Duration(float64(i)*renewal*0.9*float64(time.Second)) {
			t.Fatalf("re-authorization %d after %v, period is %vs", i, el, renewal)
		}
	}
	c.Quiet()
	// Still subscribed.
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`)
}

// periodic re-authorization error: the subscription ends, before_unsubscribe
// and on_unsubscribe are called, the client gets {"event":"unsubscribe",
// "subscription","error"} + extra fields + before_unsubscribe's data.
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
			f := newFixture(t, func(f *fixture) {
				renewalService(f)
				f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok","caps":"r"}`, tc.reply))
				f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":{"bye":1}}`)
			})
			c := f.authed()
			expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
			f.call("/authorizer", "")
			expectJSON(t, c.Recv(), tc.want)
			body := `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`
			f.call("/authorizer", body)
			f.call("/before_unsubscribe", body)
			f.call("/on_unsubscribe", body)
			expectJSON(t, c.Roundtrip(ev("message", "books.b1")),
				`{"event":"message","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
			// Re-authorization stopped with the subscription.
			time.Sleep(time.Duration(3 * renewal * float64Second))
			f.svc.NoCall(t)
			c.Quiet()
		})
	}
}

const float64Second = float64(time.Second)

// A revocation without unsubscribe callbacks: the push has no data, and
// before_unsubscribe's error reply is ignored when it has them.
func TestReauthorizationErrorCallbackResultsIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		s := renewalService(f)
		s.OnUnsubscribe = ""
		f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok"}`, `{"status":"error","error":"Revoked."}`, `{"status":"ok"}`))
		f.svc.Reply("/before_unsubscribe", `{"status":"error","error":"no"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"Revoked."}`)
	f.call("/authorizer", "")
	f.call("/before_unsubscribe", "")
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
}

// Changed authorizer fields → on_authorization_change with the new body;
// unchanged ones (an unlisted field changing does not count) → nothing.
func TestAuthorizationChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		renewalService(f)
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
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`)
	f.call("/on_authorization_change", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
	c.Quiet()
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`)
}

// An on_authorization_change error ends the subscription like a
// re-authorization error.
func TestAuthorizationChangeError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		renewalService(f)
		f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok","caps":"rw"}`, `{"status":"ok","caps":"r"}`))
		f.svc.Reply("/on_authorization_change", `{"status":"error","error":"Downgraded."}`)
		f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":[1]}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", "")
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"Downgraded.","org":"o1","data":[1]}`)
	body := `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","caps":"rw","user_id":"u1","session_id":"s1"}`)
	f.call("/on_authorization_change", body)
	f.call("/before_unsubscribe", body)
	f.call("/on_unsubscribe", body)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")),
		`{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
}

// An on_authorization_change error without an error string ends it with
// Unhandled exception. (spec-silent; SocketShark's perform_service_request
// default for every callback but the authorizer).
func TestAuthorizationChangeErrorDefault(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		renewalService(f)
		f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok","caps":"rw"}`, `{"status":"ok","caps":"r"}`))
		f.svc.Reply("/on_authorization_change", `{"status":"error"}`)
		f.svc.Reply("/before_unsubscribe", `{"status":"ok"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","error":"`+errUnhandled+`"}`)
}

// heartbeat: with heartbeat_period and on_heartbeat, each subscription posts
// its body repeatedly; errors do not affect the client; it stops with the
// subscription.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{
			Authorizer:       f.url("/authorizer"),
			AuthorizerFields: []string{"caps"},
			ExtraFields:      []string{"org"},
			HeartbeatPeriod:  0.2,
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
	start := time.Now()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", "")
	var times []time.Duration
	for i := 0; i < 4; i++ {
		f.call("/heartbeat", `{"subscription":"books.b1","org":"o1","caps":"r","user_id":"u1","session_id":"s1"}`)
		times = append(times, time.Since(start))
	}
	if times[0] > 2*200*time.Millisecond+time.Second/2 {
		t.Fatalf("first heartbeat after %v (period 0.2s)", times[0])
	}
	if gap := times[3] - times[1]; gap < 300*time.Millisecond {
		t.Fatalf("heartbeats 2..4 within %v, period is 0.2s", gap)
	}
	c.Quiet()
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`)

	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	time.Sleep(300 * time.Millisecond) // a heartbeat in flight at unsubscribe lands
	for len(f.svc.Calls) > 0 {
		<-f.svc.Calls
	}
	time.Sleep(600 * time.Millisecond) // three periods without a heartbeat
	f.svc.NoCall(t)
}

// heartbeat needs on_heartbeat: a period alone posts nothing.
func TestHeartbeatNeedsURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer"), HeartbeatPeriod: 0.1}
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	time.Sleep(400 * time.Millisecond)
	f.svc.NoCall(t)
}
