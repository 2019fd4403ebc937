package conformance

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
	"mako/server/service"
)

// calls is Stats.Calls: service calls submitted whose continuation has not
// run yet.
func calls(t *testing.T, f *fixture) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	st, err := f.srv.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st.Calls
}

// waitCalls waits until Stats.Calls is n, polling: a submission has no
// event to await.
func waitCalls(t *testing.T, f *fixture, n int64) {
	t.Helper()
	deadline := time.Now().Add(e2e.Timeout)
	for calls(t, f) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls outstanding, want %d", calls(t, f), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// runTimers advances the fake clock by d and runs the timers due, without
// waiting for the calls they start (e2e.Tick would wait for a service the
// test holds).
func runTimers(t *testing.T, f *fixture, clock *e2e.FakeClock, d time.Duration) {
	t.Helper()
	clock.Advance(d)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	if err := f.srv.RunTimers(ctx); err != nil {
		t.Fatalf("running timers: %v", err)
	}
}

// A slow on_heartbeat service never piles up heartbeats: the next one is
// scheduled a period after the previous one finished (SocketShark's loop
// sleeps a period, then awaits the call). Ten periods with the service
// hanging leave one call outstanding, not ten (issue 6, item 5); once it
// answers, the next comes a whole period later.
func TestHeartbeatWaitsForThePreviousOne(t *testing.T) {
	t.Parallel()
	var clock *e2e.FakeClock
	g := newGate(t)
	f := newFixture(t, func(f *fixture) {
		clock = fakeClock(f)
		f.cfg.HTTP.Timeout = config.Seconds(e2e.Timeout.Seconds() * 2) // the gate, not the caller, ends the hang
		f.cfg.Services["books"] = &config.Service{
			Authorizer:      f.url("/authorizer"),
			HeartbeatPeriod: config.Seconds(heartbeatPeriod.Seconds()),
			OnHeartbeat:     f.url("/heartbeat"),
		}
		f.svc.ReplyFunc("/heartbeat", func(e2e.Call) (int, string) {
			g.wait()
			return 200, `{"status":"ok"}`
		})
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	body := `{"subscription":"books.b1","user_id":"u1","session_id":"s1"}`

	for range 10 {
		runTimers(t, f, clock, heartbeatPeriod)
	}
	g.waitEntered(t)
	if n := calls(t, f); n != 1 {
		t.Fatalf("%d heartbeat calls outstanding after 10 periods with a hanging service, want 1", n)
	}

	g.open()
	e2e.Tick(t, f.srv, clock, 0) // waits for the held call to finish
	f.call("/heartbeat", body)
	f.svc.NoCall(t)
	e2e.Tick(t, f.srv, clock, heartbeatPeriod-time.Millisecond)
	f.svc.NoCall(t) // a whole period after the previous one finished
	e2e.Tick(t, f.srv, clock, time.Millisecond)
	f.call("/heartbeat", body)
	f.svc.NoCall(t)
	c.Quiet()
}

// panicky is a Caller that panics on some URLs and passes the rest to a
// real HTTP caller.
type panicky struct {
	inner  service.Caller
	panics func(url string) bool
	n      atomic.Int32
}

func (p *panicky) Call(ctx context.Context, url string, body []byte) service.Result {
	if p.panics(url) {
		p.n.Add(1)
		panic("caller bug: " + url)
	}
	return p.inner.Call(ctx, url, body)
}

// A Caller that panics yields "Unhandled exception." for the event; the
// session goes on with its next event, and the shutdown drain (whose close
// steps call the panicking on_unsubscribe) completes (issue 6, item 5).
func TestCallerPanicEndsTheEvent(t *testing.T) {
	t.Parallel()
	inner, err := service.NewHTTPCaller(service.Options{Tries: 1, Timeout: e2e.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	var first atomic.Bool
	p := &panicky{inner: inner, panics: func(url string) bool {
		switch {
		case strings.HasSuffix(url, "/on_message"):
			return first.CompareAndSwap(false, true)
		case strings.HasSuffix(url, "/on_unsubscribe"):
			return true
		}
		return false
	}}
	f := newFixture(t, func(f *fixture) {
		f.opts = append(f.opts, func(o *server.Options) { o.Caller = p })
		f.cfg.Services["books"] = &config.Service{
			Authorizer:    f.url("/authorizer"),
			OnMessage:     f.url("/on_message"),
			OnUnsubscribe: f.url("/on_unsubscribe"),
		}
		f.svc.Reply("/on_message", `{"status":"ok","data":"pong"}`)
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1")

	expectJSON(t, c.Roundtrip(ev("message", "books.b1", "data", 1)),
		`{"event":"message","subscription":"books.b1","status":"error","error":"`+errUnhandled+`"}`)
	expectJSON(t, c.Roundtrip(ev("message", "books.b1", "data", 2)),
		`{"event":"message","subscription":"books.b1","status":"ok","data":"pong"}`)
	f.call("/on_message", `{"subscription":"books.b1","data":2,"user_id":"u1","session_id":"s1"}`)
	if n := calls(t, f); n != 0 {
		t.Errorf("%d calls outstanding after both events", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := p.n.Load(); got != 2 {
		t.Errorf("caller panicked %d times, want 2 (on_message, on_unsubscribe)", got)
	}
}

// The per-service wait queue is bounded by http.max_queued_per_service:
// with the service hanging, max_concurrency_per_service calls are in
// flight, max_queued_per_service wait, and every event past that gets
// "Service unavailable." at once without reaching the service. The
// refusals and the queue depth show in the metrics (issue 6, item 3).
func TestServiceQueueBound(t *testing.T) {
	t.Parallel()
	const (
		clients  = 40
		inFlight = 2
		queued   = 5
	)
	port := freePort(t)
	g := newGate(t)
	var reached atomic.Int32
	f := newFixture(t, func(f *fixture) {
		f.cfg.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: port}
		f.cfg.HTTP.Timeout = config.Seconds(e2e.Timeout.Seconds() * 2)
		f.cfg.HTTP.MaxConcurrencyPerService = inFlight
		f.cfg.HTTP.MaxQueuedPerService = queued
		f.cfg.Services["books"] = &config.Service{
			Authorizer: f.url("/authorizer"),
			OnMessage:  f.url("/on_message"),
		}
		f.svc.ReplyFunc("/on_message", func(e2e.Call) (int, string) {
			reached.Add(1)
			g.wait()
			return 200, `{"status":"ok","data":"done"}`
		})
	})
	cs := make([]*e2e.Client, clients)
	for i := range cs {
		cs[i] = f.authed()
		subscribed(t, f, cs[i], "books.b1")
	}
	// One event per session (a session runs its events one at a time).
	// The first ones are taken (in flight or waiting); each is counted once
	// submitted, so waiting for the count orders the sessions.
	accepted := inFlight + queued
	for i, c := range cs[:accepted] {
		c.Send(ev("message", "books.b1"))
		waitCalls(t, f, int64(i+1))
	}
	for range inFlight {
		g.waitEntered(t)
	}
	refused := `{"event":"message","subscription":"books.b1","status":"error","error":"` + errUnavailable + `"}`
	for _, c := range cs[accepted:] {
		expectJSON(t, c.Roundtrip(ev("message", "books.b1")), refused)
	}
	m := scrape(t, port)
	for name, want := range map[string]float64{
		`mako_service_queue{service="books"}`:         queued,
		`mako_service_inflight{service="books"}`:      inFlight,
		`mako_service_refused_total{service="books"}`: clients - inFlight - queued,
		// A refused call is a call that ended unavailable, at once.
		`mako_service_call_duration_seconds_count{endpoint="on_message",outcome="unavailable",service="books"}`: clients - inFlight - queued,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}

	g.open()
	for _, c := range cs[:accepted] {
		expectJSON(t, c.Recv(), `{"event":"message","subscription":"books.b1","status":"ok","data":"done"}`)
	}
	if got := int(reached.Load()); got != accepted {
		t.Errorf("the service received %d calls, want %d", got, accepted)
	}
	// A worker leaves the pool just after posting its result to the loop,
	// so the client may read the reply a moment before the gauge drops:
	// the pool has no event to await, hence the bounded poll.
	deadline := time.Now().Add(e2e.Timeout)
	for {
		m = scrape(t, port)
		q, r := m[`mako_service_queue{service="books"}`], m[`mako_service_inflight{service="books"}`]
		if q == 0 && r == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the release: queue %v, in flight %v", q, r)
		}
		time.Sleep(time.Millisecond)
	}
}
