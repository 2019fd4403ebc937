package conformance

import (
	"testing"

	"mako/config"
)

func checksFixture(t *testing.T) *fixture {
	return newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{
			Authorizer:  f.url("/authorizer"),
			ExtraFields: []string{"org", "team"},
			OnMessage:   f.url("/on_message"),
		}
		f.cfg.Services["open"] = &config.Service{RequireAuthentication: boolp(false), ExtraFields: []string{"org"}}
		f.cfg.Services["empty"] = &config.Service{}
	})
}

// Check 1: no dot, empty service or topic, a non-string subscription →
// Invalid subscription format.; subscription is echoed when the client gave
// a non-empty string; extra fields are echoed when the part before the
// first dot names a configured service ("books."), as SocketShark picks
// them before it validates the name.
func TestCheckSubscriptionFormat(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.dial() // not authenticated: check 1 comes before check 3
	for _, event := range []string{"subscribe", "message", "unsubscribe"} {
		cases := []struct{ frame, want string }{
			{`{"event":"` + event + `","subscription":"books","org":"o"}`,
				`{"event":"` + event + `","subscription":"books","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":".b1","org":"o"}`,
				`{"event":"` + event + `","subscription":".b1","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":"books.","org":"o"}`,
				`{"event":"` + event + `","subscription":"books.","status":"error","error":"` + errSubFormat + `","org":"o"}`},
			{`{"event":"` + event + `","subscription":".","org":"o"}`,
				`{"event":"` + event + `","subscription":".","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":"nosuch"}`,
				`{"event":"` + event + `","subscription":"nosuch","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":""}`,
				`{"event":"` + event + `","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `"}`,
				`{"event":"` + event + `","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":null}`,
				`{"event":"` + event + `","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":12}`,
				`{"event":"` + event + `","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":["books.b1"]}`,
				`{"event":"` + event + `","status":"error","error":"` + errSubFormat + `"}`},
			{`{"event":"` + event + `","subscription":{"books":"b1"}}`,
				`{"event":"` + event + `","status":"error","error":"` + errSubFormat + `"}`},
		}
		for _, tc := range cases {
			expectJSONMsg(t, tc.frame, c.Roundtrip(tc.frame), tc.want)
		}
	}
	c.Quiet()
	f.svc.NoCall(t)
}

// The name splits at the first dot: "books.a.b" is topic "a.b" of books.
func TestSubscriptionSplitsAtFirstDot(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.a.b")), `{"event":"subscribe","subscription":"books.a.b","status":"ok"}`)
	f.call("/authorizer", `{"subscription":"books.a.b","user_id":"u1","session_id":"s1"}`)
}

// Check 2: service not configured → Invalid service. (before check 3; no
// extra fields echoed: the service has none).
func TestCheckInvalidService(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.dial()
	for _, event := range []string{"subscribe", "message", "unsubscribe"} {
		frame := `{"event":"` + event + `","subscription":"nosuch.b1","org":"o"}`
		expectJSONMsg(t, frame, c.Roundtrip(frame),
			`{"event":"`+event+`","subscription":"nosuch.b1","status":"error","error":"`+errInvalidSvc+`"}`)
		frame = `{"event":"` + event + `","subscription":"Books.b1"}`
		expectJSONMsg(t, frame, c.Roundtrip(frame),
			`{"event":"`+event+`","subscription":"Books.b1","status":"error","error":"`+errInvalidSvc+`"}`)
	}
	c.Quiet()
	f.svc.NoCall(t)
}

// Check 3: subscribe needs a successful auth when require_authentication is
// true (the default, also for an empty service entry); the reply echoes the
// configured extra fields the client sent, and only those.
func TestCheckAuthenticationRequired(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.dial()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1", "team", 7, "other", "x")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errAuthRequired+`","org":"o1","team":7}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "empty.b1")),
		`{"event":"subscribe","subscription":"empty.b1","status":"error","error":"`+errAuthRequired+`"}`)
	c.Quiet()
	f.svc.NoCall(t)
}

// Check 3 does not apply with require_authentication: false.
func TestCheckRequireAuthenticationFalse(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.dial()
	expectJSON(t, c.Roundtrip(ev("subscribe", "open.b1", "org", "o1")),
		`{"event":"subscribe","subscription":"open.b1","status":"ok","org":"o1"}`)
	f.publish(`{"subscription":"open.b1","data":"hi"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"open.b1","data":"hi","org":"o1"}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "open.b1")),
		`{"event":"unsubscribe","subscription":"open.b1","status":"ok","org":"o1"}`)
}

// Check 3 is for subscribe only: message/unsubscribe of a name the
// (unauthenticated) session does not hold → Subscription does not exist.
func TestCheckAuthOnlyForSubscribe(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.dial()
	expectJSON(t, c.Roundtrip(ev("message", "books.b1", "org", "o1", "data", 1)),
		`{"event":"message","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`","org":"o1"}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1", "org", "o1", "nope", 1)),
		`{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`","org":"o1"}`)
	c.Quiet()
	f.svc.NoCall(t)
}

// Check 4: subscribe to a held name → Already subscribed., echoing the
// EXISTING subscription's extra fields, not the request's.
func TestCheckAlreadySubscribed(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1", "other", "x")),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o2", "team", "t2")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errAlreadySub+`","org":"o1"}`)
	// message and unsubscribe on the held name also echo the existing
	// subscription's extra fields.
	f.svc.Reply("/on_message", `{"status":"ok","data":"r"}`)
	expectJSON(t, c.Roundtrip(ev("message", "books.b1", "org", "o3", "data", 1)),
		`{"event":"message","subscription":"books.b1","status":"ok","data":"r","org":"o1"}`)
	f.call("/on_message", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1","data":1}`)
	c.Quiet()
	f.svc.NoCall(t)
}

// Check 4: message/unsubscribe of a name not held → Subscription does not
// exist., echoing the request's extra fields.
func TestCheckSubscriptionDoesNotExist(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", "")
	expectJSON(t, c.Roundtrip(ev("message", "books.b2", "org", "o2", "data", 1)),
		`{"event":"message","subscription":"books.b2","status":"error","error":"`+errSubNotFound+`","org":"o2"}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b2", "team", "t")),
		`{"event":"unsubscribe","subscription":"books.b2","status":"error","error":"`+errSubNotFound+`","team":"t"}`)
	c.Quiet()
	f.svc.NoCall(t)
}

// Echo: a reply echoes subscription and configured extra fields only; an
// extra field the client did not send is absent, an unconfigured one is not
// echoed, any JSON value is echoed as sent.
func TestEchoExtraFields(t *testing.T) {
	t.Parallel()
	f := checksFixture(t)
	c := f.authed()
	expectJSON(t, c.Roundtrip(`{"event":"subscribe","subscription":"books.b1","team":{"id":[1,2]},"user_id":"x","data":"d"}`),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","team":{"id":[1,2]}}`)
	f.call("/authorizer", `{"subscription":"books.b1","team":{"id":[1,2]},"user_id":"u1","session_id":"s1"}`)
	expectJSON(t, c.Roundtrip(`{"event":"subscribe","subscription":"books.b2","org":null}`),
		`{"event":"subscribe","subscription":"books.b2","status":"ok","org":null}`)
	f.call("/authorizer", `{"subscription":"books.b2","org":null,"user_id":"u1","session_id":"s1"}`)
	expectJSON(t, c.Roundtrip(`{"event":"unsubscribe","subscription":"books.b1","org":"ignored"}`),
		`{"event":"unsubscribe","subscription":"books.b1","status":"ok","team":{"id":[1,2]}}`)
}
