package conformance

import (
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// A published message reaches every subscriber, each with its own extra
// field values.
func TestMessageReachesEverySubscriber(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer"), ExtraFields: []string{"org", "team"}}
	})
	type member struct {
		c    *clientT
		want string
	}
	var ms []member
	for _, tc := range []struct {
		kv   []any
		want string
	}{
		{[]any{"org", "o1"}, `{"event":"message","subscription":"books.b1","data":{"v":1},"org":"o1"}`},
		{[]any{"org", "o2", "team", "t"}, `{"event":"message","subscription":"books.b1","data":{"v":1},"org":"o2","team":"t"}`},
		{[]any{"org", "o1"}, `{"event":"message","subscription":"books.b1","data":{"v":1},"org":"o1"}`},
		{nil, `{"event":"message","subscription":"books.b1","data":{"v":1}}`},
		{[]any{"org", 7}, `{"event":"message","subscription":"books.b1","data":{"v":1},"org":7}`},
	} {
		c := f.authed()
		subscribed(t, f, c, "books.b1", tc.kv...)
		ms = append(ms, member{c, tc.want})
	}
	other := f.authed()
	subscribed(t, f, other, "books.b2")
	f.publish(`{"subscription":"books.b1","data":{"v":1}}`)
	f.publish(`{"subscription":"books.b2","data":{"v":2}}`)
	for _, m := range ms {
		expectLive(t, m.c.Recv(), m.want)
	}
	expectLive(t, other.Recv(), `{"event":"message","subscription":"books.b2","data":{"v":2}}`)
	// The b2 session got nothing of b1: its next frame is its pong.
	other.Quiet()
}

// Events of one connection are strictly sequential: a slow authorizer for
// a subscribe delays the reply to a following ping, and replies come in
// order; another connection is not delayed meanwhile.
func TestEventsSequentialPerConnection(t *testing.T) {
	t.Parallel()
	g := (*gate)(nil)
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer")}
		g = newGate(t)
		f.svc.ReplyFunc("/authorizer", func(c e2e.Call) (int, string) {
			if c.Body["subscription"] == "books.slow" {
				g.wait()
			}
			return 200, `{"status":"ok"}`
		})
	})
	a := f.authed()
	b := f.authed()
	a.Send(ev("subscribe", "books.slow"))
	g.waitEntered(t)
	a.Send(`{"event":"ping","data":"after-subscribe"}`)
	a.Send(ev("subscribe", "books.fast"))
	a.Send(`{"event":"ping","data":"last"}`)

	// b is served while a waits: a ping and a whole subscribe.
	expectJSON(t, b.Roundtrip(`{"event":"ping","data":"b"}`), `{"event":"pong","data":"b"}`)
	expectJSON(t, b.Roundtrip(ev("subscribe", "books.other")), `{"event":"subscribe","subscription":"books.other","status":"ok"}`)
	f.call("/authorizer", `{"subscription":"books.other","user_id":"u1","session_id":"s1"}`)
	// a's second subscribe has not started: its authorizer is not called.
	f.svc.NoCall(t)

	g.open()
	expectJSON(t, a.Recv(), `{"event":"subscribe","subscription":"books.slow","status":"ok"}`)
	expectJSON(t, a.Recv(), `{"event":"pong","data":"after-subscribe"}`)
	expectJSON(t, a.Recv(), `{"event":"subscribe","subscription":"books.fast","status":"ok"}`)
	expectJSON(t, a.Recv(), `{"event":"pong","data":"last"}`)
	f.call("/authorizer", `{"subscription":"books.slow","user_id":"u1","session_id":"s1"}`)
	f.call("/authorizer", `{"subscription":"books.fast","user_id":"u1","session_id":"s1"}`)
}

// A slow on_message holds back the next event of the same connection; a
// subscribe queued behind a message runs after it.
func TestEventsSequentialMessageThenUnsubscribe(t *testing.T) {
	t.Parallel()
	g := (*gate)(nil)
	f := newFixture(t, func(f *fixture) {
		allCallbacks(f)
		g = newGate(t)
		f.svc.ReplyFunc("/on_message", func(e2e.Call) (int, string) {
			g.wait()
			return 200, `{"status":"ok","data":"done"}`
		})
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	c.Send(ev("message", "books.b1", "data", 1))
	g.waitEntered(t)
	c.Send(ev("unsubscribe", "books.b1"))
	g.open()
	expectJSON(t, c.Recv(), `{"event":"message","subscription":"books.b1","status":"ok","data":"done"}`)
	expectJSON(t, c.Recv(), `{"event":"unsubscribe","subscription":"books.b1","status":"ok"}`)
	f.call("/on_message", "")
	f.call("/before_unsubscribe", "")
	f.call("/on_unsubscribe", "")
}
