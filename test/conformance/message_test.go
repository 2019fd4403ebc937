package conformance

import (
	"testing"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
)

// subscribed subscribes c to name on "books" and consumes the subscribe
// callbacks.
func subscribed(t *testing.T, f *fixture, c *e2e.Client, name string, kv ...any) {
	t.Helper()
	m := c.Roundtrip(ev("subscribe", name, kv...))
	if m["event"] != "subscribe" || m["status"] != "ok" {
		t.Fatalf("subscribe %s: %v", name, m)
	}
	f.call("/authorizer", "")
	if f.cfg.Services["books"].BeforeSubscribe != "" {
		f.call("/before_subscribe", "")
	}
	if f.cfg.Services["books"].OnSubscribe != "" {
		f.call("/on_subscribe", "")
	}
}

// message: an ok reply holding data (even null) → {"event":"message",
// "subscription","status":"ok","data"} + extra fields; a null data is then
// left out (SocketShark's send_ok writes data only when it is not None).
func TestMessageOkWithData(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	subscribed(t, f, c, "books.b1", "org", "o1")
	cases := []struct{ reply, want string }{
		{`{"status":"ok","data":{"answer":42},"other":1}`, `{"event":"message","subscription":"books.b1","status":"ok","data":{"answer":42},"org":"o1"}`},
		{`{"status":"ok","data":null}`, `{"event":"message","subscription":"books.b1","status":"ok","org":"o1"}`},
		{`{"status":"ok","data":false}`, `{"event":"message","subscription":"books.b1","status":"ok","data":false,"org":"o1"}`},
		{`{"status":"ok","data":""}`, `{"event":"message","subscription":"books.b1","status":"ok","data":"","org":"o1"}`},
	}
	for _, tc := range cases {
		f.svc.Reply("/on_message", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(ev("message", "books.b1", "data", "q")), tc.want)
		f.call("/on_message", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1","data":"q"}`)
	}
}

// message: an ok reply without data → no reply.
func TestMessageOkWithoutDataNoReply(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	f.svc.Reply("/on_message", `{"status":"ok","other":"x"}`)
	c.Send(ev("message", "books.b1", "data", 1))
	c.Quiet()
	f.call("/on_message", `{"subscription":"books.b1","user_id":"u1","session_id":"s1","data":1}`)
}

// message: an error reply → error (its error or Unhandled exception.) plus
// data; the subscription stays.
func TestMessageError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	subscribed(t, f, c, "books.b1", "team", "t")
	cases := []struct{ reply, want string }{
		{`{"status":"error","error":"Read only.","data":{"x":1}}`, `{"event":"message","subscription":"books.b1","status":"error","error":"Read only.","data":{"x":1},"team":"t"}`},
		{`{"status":"error"}`, `{"event":"message","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","team":"t"}`},
		{`{"status":"error","data":null}`, `{"event":"message","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","team":"t"}`},
		{`[]`, `{"event":"message","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","team":"t"}`},
	}
	for _, tc := range cases {
		f.svc.Reply("/on_message", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(ev("message", "books.b1")), tc.want)
		f.call("/on_message", "")
	}
	f.publish(`{"subscription":"books.b1","data":"still"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"still","team":"t"}`)
}

// message: no on_message configured → no reply.
func TestMessageWithoutOnMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer")}
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	c.Send(ev("message", "books.b1", "data", 1))
	c.Quiet()
	f.svc.NoCall(t)
}

// unsubscribe: a before_unsubscribe error → client error (its error or
// Unhandled exception., plus data), still subscribed.
func TestUnsubscribeBeforeUnsubscribeError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	subscribed(t, f, c, "books.b1", "org", "o1")
	cases := []struct{ reply, want string }{
		{`{"status":"error","error":"Stay.","data":[1]}`, `{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"Stay.","data":[1],"org":"o1"}`},
		{`{"status":"error"}`, `{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"` + errUnhandled + `","org":"o1"}`},
	}
	for _, tc := range cases {
		f.svc.Reply("/before_unsubscribe", tc.reply)
		expectJSONMsg(t, tc.reply, c.Roundtrip(ev("unsubscribe", "books.b1")), tc.want)
		f.call("/before_unsubscribe", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	}
	c.Quiet()
	f.svc.NoCall(t) // no on_unsubscribe
	f.publish(`{"subscription":"books.b1","data":"still"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"still","org":"o1"}`)
	expectJSON(t, c.Roundtrip(ev("subscribe", "books.b1")),
		`{"event":"subscribe","subscription":"books.b1","status":"error","error":"`+errAlreadySub+`","org":"o1"}`)
}

// unsubscribe: ok → reply (+ data from before_unsubscribe), then
// on_unsubscribe; the subscription and the channel are released.
func TestUnsubscribeOk(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		singleLoop(f)
		allCallbacks(f)
		f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":{"bye":true}}`)
		f.svc.Reply("/on_unsubscribe", `{"status":"error","error":"ignored"}`)
	})
	obs := f.authed()
	subscribed(t, f, obs, "books.b1")
	c := f.authed()
	subscribed(t, f, c, "books.b1", "org", "o1")
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1", "org", "other")),
		`{"event":"unsubscribe","subscription":"books.b1","status":"ok","data":{"bye":true},"org":"o1"}`)
	f.call("/before_unsubscribe", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	f.call("/on_unsubscribe", `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`)
	c.Quiet()
	expectJSON(t, c.Roundtrip(ev("message", "books.b1")),
		`{"event":"message","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")),
		`{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"`+errSubNotFound+`"}`)

	// Published now: must never reach c.
	f.publishSeen(obs, `{"subscription":"books.b1","data":"gone"}`)
	subscribed(t, f, c, "books.b1", "org", "o2")
	f.publish(`{"subscription":"books.b1","data":"back"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"back","org":"o2"}`)
}

// unsubscribe with before_unsubscribe data null: left out.
func TestUnsubscribeOkNullData(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":null}`)
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok"}`)
}

// The last session releasing a channel and a new one taking it: the new
// subscriber receives; no stale state from the released channel.
func TestUnsubscribeReleasesOnlyOwnSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	a := f.authed()
	subscribed(t, f, a, "books.b1", "org", "a")
	b := f.authed()
	subscribed(t, f, b, "books.b1", "org", "b")
	expectJSON(t, a.Roundtrip(ev("unsubscribe", "books.b1")), `{"event":"unsubscribe","subscription":"books.b1","status":"ok","org":"a"}`)
	f.call("/before_unsubscribe", "")
	f.call("/on_unsubscribe", "")
	f.publish(`{"subscription":"books.b1","data":1}`)
	expectLive(t, b.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"b"}`)
}

// connection closed: before_unsubscribe and on_unsubscribe are called for
// each remaining subscription, results ignored.
func TestConnectionClosedUnsubscribesAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		f.svc.Reply("/before_unsubscribe", `{"status":"error","error":"ignored"}`)
		f.svc.Reply("/on_unsubscribe", `not json`)
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1", "org", "o1")
	subscribed(t, f, c, "books.b2", "org", "o2")
	subscribed(t, f, c, "books.b3")
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b3")),
		`{"event":"unsubscribe","subscription":"books.b3","status":"error","error":"ignored"}`)
	f.call("/before_unsubscribe", "")
	f.svc.Reply("/before_unsubscribe", `{"status":"ok"}`)
	expectJSON(t, c.Roundtrip(ev("unsubscribe", "books.b3")),
		`{"event":"unsubscribe","subscription":"books.b3","status":"ok"}`)
	f.call("/before_unsubscribe", "")
	f.call("/on_unsubscribe", "")
	f.svc.Reply("/before_unsubscribe", `{"status":"error","error":"ignored"}`)

	_ = c.Conn.Close(websocket.StatusNormalClosure, "bye")
	bodies := map[string]string{
		"books.b1": `{"subscription":"books.b1","org":"o1","user_id":"u1","session_id":"s1"}`,
		"books.b2": `{"subscription":"books.b2","org":"o2","user_id":"u1","session_id":"s1"}`,
	}
	before := map[string]bool{}
	after := map[string]bool{}
	for i := 0; i < 4; i++ {
		call := f.nextCall()
		name, _ := call.Body["subscription"].(string)
		want, ok := bodies[name]
		if !ok {
			t.Fatalf("close: unexpected call %s %s", call.Path, call.Raw)
		}
		expectJSONMsg(t, call.Path, call.Body, want)
		switch call.Path {
		case "/before_unsubscribe":
			if before[name] {
				t.Fatalf("before_unsubscribe twice for %s", name)
			}
			before[name] = true
		case "/on_unsubscribe":
			if !before[name] || after[name] {
				t.Fatalf("on_unsubscribe for %s out of order (before=%v after=%v)", name, before[name], after[name])
			}
			after[name] = true
		default:
			t.Fatalf("close: unexpected call %s %s", call.Path, call.Raw)
		}
	}
	if len(after) != 2 {
		t.Fatalf("on_unsubscribe calls: %v", after)
	}
}

// Spec-silent, SocketShark reference: an error reply's data is sent only
// when truthy (EventError(data=... if error_data else None)): false, 0, "",
// [] and {} are left out of error replies, while ok replies keep any
// non-null data.
func TestErrorReplyFalsyDataOmitted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) { allCallbacks(f) })
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	for _, data := range []string{`false`, `0`, `""`, `[]`, `{}`} {
		f.svc.Reply("/on_message", `{"status":"error","error":"E","data":`+data+`}`)
		expectJSONMsg(t, "data "+data, c.Roundtrip(ev("message", "books.b1")),
			`{"event":"message","subscription":"books.b1","status":"error","error":"E"}`)
		f.call("/on_message", "")
	}
}
