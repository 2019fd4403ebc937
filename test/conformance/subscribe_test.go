package conformance

import (
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// allCallbacks configures "books" with every per-event callback at its own
// path, extra fields org/team and authorizer field caps.
func allCallbacks(f *fixture) *config.Service {
	s := &config.Service{
		Authorizer:        f.url("/authorizer"),
		AuthorizerFields:  []string{"caps"},
		ExtraFields:       []string{"org", "team"},
		BeforeSubscribe:   f.url("/before_subscribe"),
		OnSubscribe:       f.url("/on_subscribe"),
		OnMessage:         f.url("/on_message"),
		BeforeUnsubscribe: f.url("/before_unsubscribe"),
		OnUnsubscribe:     f.url("/on_unsubscribe"),
	}
	f.cfg.Services["books"] = s
	return s
}

// Rule: the body is subscription + extra fields + authorizer_fields + auth
// fields; on_message adds data. Callbacks run authorizer → before_subscribe
// → on_subscribe, and authorizer fields are sent in every later callback.
func TestCallbackBodiesAndOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		f.svc.Reply("/authorizer", `{"status":"ok","caps":["read"],"unlisted":"x"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1", "junk", 1)),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/authorizer", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	full := `{"subscription":"books.b1","org":"o1","caps":["read"],"user_id":"u1","session_id":"s1"}`
	f.call("/before_subscribe", full)
	f.call("/on_subscribe", full)

	c.Send(ev("message", "books.b1", "data", map[string]any{"q": 1}))
	f.call("/on_message", `{"subscription":"books.b1","org":"o1","caps":["read"],"user_id":"u1","session_id":"s1","data":{"q":1}}`)
	c.Send(ev("message", "books.b1"))
	f.call("/on_message", `{"subscription":"books.b1","org":"o1","caps":["read"],"user_id":"u1","session_id":"s1","data":null}`)
	c.Quiet()

	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")),
		`{"event":"unsubscribe","subscription":"books.b1","status":"ok","org":"o1"}`)
	f.call("/before_unsubscribe", full)
	f.call("/on_unsubscribe", full)
	c.Quiet()
	f.svc.NoCall(t)
}

// Rule: later sources overwrite earlier ones on a clash: extra fields <
// authorizer fields < auth fields; on_message's data wins over all.
func TestCallbackBodyClash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{
			Authorizer:       f.url("/authorizer"),
			AuthorizerFields: []string{"a", "user_id", "data"},
			ExtraFields:      []string{"a", "user_id", "e", "data"},
			BeforeSubscribe:  f.url("/before_subscribe"),
			OnMessage:        f.url("/on_message"),
		}
		f.svc.Reply("/authorizer", `{"status":"ok","a":"from-authorizer","user_id":"from-authorizer","data":"from-authorizer"}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "a", "from-client", "user_id", "from-client", "e", "from-client", "data", "from-client")),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","a":"from-client","user_id":"from-client","e":"from-client","data":"from-client"}`)
	// The authorizer sees no authorizer fields yet; auth fields win over
	// extra fields.
	f.call("/authorizer", `{"subscription":"books.b1","a":"from-client","user_id":"u1","e":"from-client","data":"from-client","session_id":"s1"}`)
	f.call("/before_subscribe", `{"subscription":"books.b1","a":"from-authorizer","user_id":"u1","e":"from-client","data":"from-authorizer","session_id":"s1"}`)
	c.Send(ev("message", "books.b1", "data", "from-message"))
	f.call("/on_message", `{"subscription":"books.b1","a":"from-authorizer","user_id":"u1","e":"from-client","data":"from-message","session_id":"s1"}`)
	c.Quiet()
}

// Subscribe step 1: an authorizer error → its error or Unauthorized., plus
// its data; nothing else is called and no subscription remains.
func TestSubscribeAuthorizerError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	cases := []struct{ reply, want string }{
		{`{"status":"error","error":"No access.","data":{"why":"plan"}}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"No access.","data":{"why":"plan"},"org":"o1"}`},
		{`{"status":"error"}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"` + errUnauthorized + `","org":"o1"}`},
		{`{"status":"nope","data":[1]}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"` + errUnauthorized + `","data":[1],"org":"o1"}`},
		{`{"status":"error","error":"Gone.","data":null}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"Gone.","org":"o1"}`},
	}
	for _, tc := range cases {
		f.svc.Reply("/authorizer", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")), tc.want)
		f.call("/authorizer", "")
	}
	c.Quiet()
	f.svc.NoCall(t)
	expectJSON(t, c.Roundtrip(ev("message", "books.b1")),
		`{"event":"message","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
	// A later subscribe works.
	f.svc.Reply("/authorizer", `{"status":"ok"}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o2")),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o2"}`)
}

// A service reply that is not a JSON object, or unreachable, fails the
// event with Unhandled exception. / Service unavailable.
func TestSubscribeAuthorizerBroken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	f.svc.Reply("/authorizer", `["ok"]`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errUnhandled+`"}`)
	f.call("/authorizer", "")
	f.svc.ReplyFunc("/authorizer", func(e2e.Call) (int, string) { return 500, `{"status":"ok"}` })
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errUnavailable+`"}`)
	f.call("/authorizer", "")
	c.Quiet()
	f.svc.NoCall(t)
}

// Subscribe step 3: before_subscribe error → its error or Unhandled
// exception., plus data; no subscription remains (nothing published
// reaches the session, message → does not exist) and a later subscribe
// works.
func TestSubscribeBeforeSubscribeError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { singleLoop(f); allCallbacks(f) })
	obs := f.authed()
	expectJSON(t, obs.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")

	c := f.authed()
	cases := []struct{ reply, want string }{
		{`{"status":"error","error":"Book locked.","data":{"until":5}}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"Book locked.","data":{"until":5},"team":"t"}`},
		{`{"status":"error"}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","team":"t"}`},
		{`{"status":"error","data":"d"}`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","data":"d","team":"t"}`},
		{`"garbage"`,
			`{"event":"subscribe","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","team":"t"}`},
	}
	for _, tc := range cases {
		f.svc.Reply("/before_subscribe", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(ev("subscribe", "books.b1", "team", "t")), tc.want)
		f.call("/authorizer", "")
		f.call("/before_subscribe", "")
	}
	c.Quiet()
	f.svc.NoCall(t) // no on_subscribe
	expectJSON(t, c.Roundtrip(ev("message", "books.b1")),
		`{"event":"message","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")),
		`{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)

	// Published now: must never reach c.
	f.publishSeen(obs, `{"subscription":"books.b1","data":"dropped"}`)

	f.svc.Reply("/before_subscribe", `{"status":"ok"}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "team", "t2")),
		`{"event":"subscribe","subscription":"books.b1","status":"ok","team":"t2"}`)
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")
	f.publish(`{"subscription":"books.b1","data":"delivered"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"delivered","team":"t2"}`)
}

// Subscribe step 4: the ok reply carries before_subscribe's data when it
// returned one (null is left out); nothing else of the reply is echoed.
func TestSubscribeOkData(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	cases := []struct{ reply, want string }{
		{`{"status":"ok","data":{"title":"T"},"other":1}`, `{"event":"subscribe","subscription":"books.b1","status":"ok","data":{"title":"T"}}`},
		{`{"status":"ok","data":0}`, `{"event":"subscribe","subscription":"books.b1","status":"ok","data":0}`},
		{`{"status":"ok","data":null}`, `{"event":"subscribe","subscription":"books.b1","status":"ok"}`},
		{`{"status":"ok"}`, `{"event":"subscribe","subscription":"books.b1","status":"ok"}`},
	}
	for _, tc := range cases {
		f.svc.Reply("/before_subscribe", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(ev("subscribe", "books.b1")), tc.want)
		f.call("/authorizer", "")
		f.call("/before_subscribe", "")
		f.call("/on_subscribe", "")
		expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok"}`)
		f.call("/before_unsubscribe", "")
		f.call("/on_unsubscribe", "")
	}
}

// Subscribe step 7: on_subscribe's result is ignored.
func TestOnSubscribeResultIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		f.svc.Reply("/on_subscribe", `{"status":"error","error":"ignored","data":1}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")
	c.Quiet()
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1}`)
}

// Subscribe step 4: the before_subscribe reply passes the order check, so
// its options.order seeds the order state: a later published message with a
// lower order is dropped.
func TestBeforeSubscribeOrderSeedsState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		f.svc.Reply("/before_subscribe", `{"status":"ok","data":"hello","options":{"order":5}}`)
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","data":"hello"}`)
	f.publish(`{"subscription":"books.b1","data":"four","options":{"order":4}}`)
	f.publish(`{"subscription":"books.b1","data":"five","options":{"order":5}}`)
	f.publish(`{"subscription":"books.b1","data":"six","options":{"order":6}}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"six"}`)
}

// Subscribe step 4: a before_subscribe reply dropped by the checks gets no
// reply; the subscription exists all the same. (A fresh subscription has
// no order or throttle state, so a filter field is what can drop it.)
func TestBeforeSubscribeReplyFiltered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		s := allCallbacks(f)
		s.FilterFields = []string{"user_id", "org"}
		f.svc.Reply("/before_subscribe", `{"status":"ok","data":"hello","user_id":"someone-else"}`)
	})
	c := f.authed()
	c.Send(ev("subscribe", "books.b1", "org", "o1"))
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")
	c.Quiet()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o1")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errAlreadySub+`","org":"o1"}`)
	// An extra field mismatch drops it too; a matching reply is answered.
	f.svc.Reply("/before_subscribe", `{"status":"ok","data":"hello","org":"o2"}`)
	c.Send(ev("subscribe", "books.b2", "org", "o1"))
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")
	c.Quiet()
	f.svc.Reply("/before_subscribe", `{"status":"ok","data":"hello","org":"o1","user_id":"u1"}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b3", "org", "o1")),
		`{"event":"subscribe","subscription":"books.b3","status":"ok","data":"hello","org":"o1"}`)
}

// Subscribe steps 2–5: a message published while before_subscribe runs is
// held and delivered after the ok reply, with sent_at only; the
// before_subscribe order seeds the state the held messages pass.
func TestProvisionalWindow(t *testing.T) {
	t.Parallel()
	g := (*gate)(nil)
	f := newFixture(t, func(f *fixture) {
		singleLoop(f)
		allCallbacks(f)
		g = newGate(t)
		f.svc.ReplyFunc("/before_subscribe", func(c e2e.Call) (int, string) {
			if c.Body["org"] == "blocked" {
				g.wait()
				return 200, `{"status":"ok","data":"bs","options":{"order":5}}`
			}
			return 200, `{"status":"ok","data":"bs"}`
		})
	})
	obs := f.authed()
	expectJSON(t, obs.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok","data":"bs"}`)
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")

	c := f.authed()
	c.Send(ev("subscribe", "books.b1", "org", "blocked"))
	g.waitEntered(t)
	f.publishSeen(obs, `{"subscription":"books.b1","data":"held-2","options":{"order":2}}`)
	f.publishSeen(obs, `{"subscription":"books.b1","data":"held-7","options":{"order":7}}`)
	f.publishSeen(obs, `{"subscription":"books.b1","data":"held-9","options":{"order":9}}`)
	f.call("/authorizer", "")
	g.open()
	expectJSON(t, c.Recv(), `{"event":"subscribe","subscription":"books.b1","status":"ok","data":"bs","org":"blocked"}`)
	expectLate(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"held-7","org":"blocked"}`)
	expectLate(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"held-9","org":"blocked"}`)
	f.publish(`{"subscription":"books.b1","data":"live-10","options":{"order":10}}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"live-10","org":"blocked"}`)
}

// Subscribe step 3: a before_subscribe error drops the provisional hold:
// messages published during the window are never delivered.
func TestProvisionalWindowDroppedOnError(t *testing.T) {
	t.Parallel()
	g := (*gate)(nil)
	f := newFixture(t, func(f *fixture) {
		singleLoop(f)
		allCallbacks(f)
		g = newGate(t)
		f.svc.ReplyFunc("/before_subscribe", func(c e2e.Call) (int, string) {
			if c.Body["org"] == "blocked" {
				g.wait()
				return 200, `{"status":"error","error":"No."}`
			}
			return 200, `{"status":"ok"}`
		})
	})
	obs := f.authed()
	expectJSON(t, obs.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")

	c := f.authed()
	c.Send(ev("subscribe", "books.b1", "org", "blocked"))
	g.waitEntered(t)
	f.publishSeen(obs, `{"subscription":"books.b1","data":"held"}`)
	g.open()
	expectJSON(t, c.Recv(), `{"event":"subscribe","subscription":"books.b1","status":"error","error":"No.","org":"blocked"}`)
	f.publishSeen(obs, `{"subscription":"books.b1","data":"after"}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1", "org", "o")), `{"event":"subscribe","subscription":"books.b1","status":"ok","org":"o"}`)
	f.publish(`{"subscription":"books.b1","data":"live"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"live","org":"o"}`)
}

// Subscribe steps 4 and 7: the ok reply is sent before on_subscribe is
// called (on_subscribe still running does not hold the reply back), and
// the connection's next event waits for on_subscribe.
func TestOnSubscribeAfterOkReply(t *testing.T) {
	t.Parallel()
	g := (*gate)(nil)
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		g = newGate(t)
		f.svc.ReplyFunc("/on_subscribe", func(e2e.Call) (int, string) {
			g.wait()
			return 200, `{"status":"ok"}`
		})
	})
	c := f.authed()
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")), `{"event":"subscribe","subscription":"books.b1","status":"ok"}`)
	g.waitEntered(t)
	c.Send(`{"event":"ping","data":"p"}`)
	g.open()
	expectJSON(t, c.Recv(), `{"event":"pong","data":"p"}`)
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")
}

// unsubscribe: the ok reply is sent before on_unsubscribe is called.
func TestOnUnsubscribeAfterOkReply(t *testing.T) {
	t.Parallel()
	g := (*gate)(nil)
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		g = newGate(t)
		f.svc.ReplyFunc("/on_unsubscribe", func(e2e.Call) (int, string) {
			g.wait()
			return 200, `{"status":"ok"}`
		})
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok"}`)
	g.waitEntered(t)
	g.open()
	f.call("/before_unsubscribe", "")
	f.call("/on_unsubscribe", "")
}
