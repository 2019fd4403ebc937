package conformance

import (
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// withBooks configures service "books" with an authorizer, so callback
// bodies show the session's auth fields.
func withBooks(f *fixture) {
	f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer")}
}

// Rule: method defaults to ticket; the ticket is POSTed as {"ticket": T}.
func TestAuthDefaultMethod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"abc"}`), `{"event":"auth","status":"ok"}`)
	f.call("/auth", `{"ticket":"abc"}`)
	expectJSON(t, c.Roundtrip(`{"event":"auth","method":"ticket","ticket":"def","extra":1}`), `{"event":"auth","status":"ok"}`)
	f.call("/auth", `{"ticket":"def"}`)
}

// Rule: a method absent from `authentication` → Authentication method
// unsupported., with no service call.
func TestAuthUnsupportedMethod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	for _, frame := range []string{
		`{"event":"auth","method":"password","ticket":"abc"}`,
		`{"event":"auth","method":"Ticket","ticket":"abc"}`,
		`{"event":"auth","method":"","ticket":"abc"}`,
		`{"event":"auth","method":1,"ticket":"abc"}`,
	} {
		expectJSONMsg(t, frame, c.Roundtrip(frame), `{"event":"auth","status":"error","error":"`+errAuthMethod+`"}`)
	}
	c.Quiet()
	f.svc.NoCall(t)
}

// Rule: with no ticket authentication configured, even the default method
// is unsupported.
func TestAuthNoMethodConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { f.cfg.Authentication.Ticket = nil })
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"abc"}`), `{"event":"auth","status":"error","error":"`+errAuthMethod+`"}`)
	c.Quiet()
	f.svc.NoCall(t)
}

// Rule: no ticket, or one Python finds false → Must specify ticket.
func TestAuthMissingTicket(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	for _, frame := range []string{
		`{"event":"auth"}`,
		`{"event":"auth","method":"ticket"}`,
		`{"event":"auth","ticket":""}`,
		`{"event":"auth","ticket":null}`,
		`{"event":"auth","ticket":0}`,
		`{"event":"auth","ticket":false}`,
		`{"event":"auth","ticket":[]}`,
		`{"event":"auth","ticket":{}}`,
	} {
		expectJSONMsg(t, frame, c.Roundtrip(frame), `{"event":"auth","status":"error","error":"`+errNeedsTicket+`"}`)
	}
	c.Quiet()
	f.svc.NoCall(t)
}

// Rule: any other ticket is posted as the client sent it (SocketShark checks
// only "if not ticket"), a number or an object too.
func TestAuthTicketAnyTrueValue(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	for _, ticket := range []string{`7`, `true`, `["a"]`, `{"k":"v"}`, `"x\u00e9"`} {
		expectJSONMsg(t, ticket, c.Roundtrip(`{"event":"auth","ticket":`+ticket+`}`), `{"event":"auth","status":"ok"}`)
		f.call("/auth", `{"ticket":`+ticket+`}`)
	}
}

// Rule: a validation reply with status ≠ ok → its error, or Authentication
// failed.
func TestAuthValidationError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	cases := []struct{ reply, want string }{
		{`{"status":"error","error":"Ticket expired."}`, "Ticket expired."},
		{`{"status":"error"}`, errAuthFailed},
		{`{"status":"denied","user_id":"u1","session_id":"s1"}`, errAuthFailed},
		{`{"user_id":"u1","session_id":"s1"}`, errAuthFailed},
	}
	for _, tc := range cases {
		f.svc.Reply("/auth", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"error","error":"`+tc.want+`"}`)
		f.call("/auth", `{"ticket":"t"}`)
	}
}

// Rule: a failed auth leaves the session unauthenticated.
func TestAuthFailureLeavesSessionUnauthenticated(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		withBooks(f)
		f.svc.Reply("/auth", `{"status":"error","error":"No."}`)
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"error","error":"No."}`)
	f.call("/auth", "")
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errAuthRequired+`"}`)
	c.Quiet()
	f.svc.NoCall(t)
}

// Rule: on ok the auth fields become {f: reply[f] for f in auth_fields}
// (nothing else of the reply), and a later auth replaces them.
func TestAuthFieldsSetAndReplaced(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		withBooks(f)
		f.svc.Reply("/auth", `{"status":"ok","user_id":"u1","session_id":"s1","role":"admin"}`)
	})
	c := f.dial()
	f.login(c)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", `{"subscription":"books.b1","user_id":"u1","session_id":"s1"}`)

	f.svc.Reply("/auth", `{"status":"ok","user_id":"u2","session_id":{"n":2}}`)
	f.login(c)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b2")), `{"event":"subscribe","subscription":"books.b2","status":"ok"}`)
	f.call("/authorizer", `{"subscription":"books.b2","user_id":"u2","session_id":{"n":2}}`)
}

// Rule: a reply lacking an auth_fields entry → Authentication failed.; the
// connection stays open and usable.
func TestAuthReplyLacksAuthField(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		withBooks(f)
		f.svc.Reply("/auth", `{"status":"ok","user_id":"u1"}`)
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"error","error":"`+errAuthFailed+`"}`)
	f.call("/auth", `{"ticket":"t"}`)
	c.Quiet()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errAuthRequired+`"}`)
	// A complete reply afterwards authenticates normally.
	f.svc.Reply("/auth", `{"status":"ok","user_id":"u1","session_id":"s1"}`)
	f.login(c)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", `{"subscription":"books.b1","user_id":"u1","session_id":"s1"}`)
}

// Rule: every try failed (HTTP 500, tries=1) → Service unavailable.
func TestAuthServiceUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.svc.ReplyFunc("/auth", func(e2e.Call) (int, string) { return 500, `{"status":"ok"}` })
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"error","error":"`+errUnavailable+`"}`)
	f.call("/auth", `{"ticket":"t"}`)
	c.Quiet()
}

// Rule: every try is made (tries=3), then Service unavailable.
func TestServiceCallTries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.HTTP.Tries = 3
		f.svc.ReplyFunc("/auth", func(e2e.Call) (int, string) { return 503, `` })
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"error","error":"`+errUnavailable+`"}`)
	for i := 0; i < 3; i++ {
		f.call("/auth", `{"ticket":"t"}`)
	}
	c.Quiet()
	f.svc.NoCall(t)
}

// Rule: a service reply that is not a JSON object → Unhandled exception.,
// and the connection stays open.
func TestAuthReplyNotAnObject(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	for _, reply := range []string{`[1,2]`, `"ok"`, `null`, `12`, `not json`, ``} {
		f.svc.Reply("/auth", reply)
		expectJSONMsg(t, "reply "+reply, c.Roundtrip(`{"event":"auth","ticket":"t"}`),
			`{"event":"auth","status":"error","error":"`+errUnhandled+`"}`)
		f.call("/auth", "")
	}
	c.Quiet()
}

// Rule (spec-silent, SocketShark reference): "method": null is a method
// absent from `authentication` (SocketShark's data.get("method", "ticket")
// yields None) → Authentication method unsupported.
func TestAuthMethodNull(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","method":null,"ticket":"abc"}`),
		`{"event":"auth","status":"error","error":"`+errAuthMethod+`"}`)
	c.Quiet()
	f.svc.NoCall(t)
}
