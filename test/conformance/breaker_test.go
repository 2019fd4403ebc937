package conformance

import (
	"strconv"
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// TestBreakerTakesNoPoolSlot: a call refused by an open breaker fails at
// once without entering the service's pool, so it neither waits behind a
// slow call nor takes the wait-queue room of calls to the service's other
// URLs. books has one call in flight and one queue place; its
// before_unsubscribe URL is dead and its breaker open; unsubscribes fail at
// once while on_message is stuck, and a later message still gets the queue
// place.
func TestBreakerTakesNoPoolSlot(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	dead := "http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/before_unsubscribe"
	g := newGate(t)
	f := newFixture(t, func(f *fixture) {
		f.cfg.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: port}
		f.cfg.HTTP.MaxConcurrencyPerService = 1
		f.cfg.HTTP.MaxQueuedPerService = 1
		f.cfg.HTTP.Tries = 1
		f.cfg.HTTP.BreakerFailures = 1
		f.cfg.HTTP.BreakerCooldown = 3600
		f.cfg.HTTP.BreakerMaxCooldown = 3600
		f.cfg.Services["books"] = &config.Service{
			Authorizer:        f.url("/authorizer"),
			OnMessage:         f.url("/on_message"),
			BeforeUnsubscribe: dead,
		}
		f.svc.ReplyFunc("/on_message", func(c e2e.Call) (int, string) {
			g.wait()
			return 200, `{"status":"ok","data":"done"}`
		})
	})
	cs := make([]*clientT, 3)
	for i := range cs {
		cs[i] = f.authed()
		subscribed(t, f, cs[i], "books.b1")
	}
	unavailable := `{"event":"unsubscribe","subscription":"books.b1","status":"error","error":"` + errUnavailable + `"}`
	// The dead URL's one failed try opens its breaker.
	expectJSON(t, cs[0].Roundtrip(ev("unsubscribe", "books.b1")), unavailable)

	cs[1].Send(ev("message", "books.b1"))
	g.waitEntered(t)
	// books' only worker slot is taken: these fail at once all the same.
	for range 5 {
		expectJSON(t, cs[0].Roundtrip(ev("unsubscribe", "books.b1")), unavailable)
	}
	// The queue place is still free for a call that may go.
	cs[2].Send(ev("message", "books.b1"))
	waitCalls(t, f, 2)
	g.open()
	for _, c := range cs[1:] {
		if m := c.Recv(); m["status"] != "ok" {
			t.Fatalf("message: %v", m)
		}
	}
	m := scrape(t, port)
	if got := m[`mako_service_refused_total{service="books"}`]; got != 0 {
		t.Errorf("the pool refused %v calls, want 0", got)
	}
	k := `mako_service_breaker_refused_total{url="` + dead + `"}`
	if got := m[k]; got != 5 {
		t.Errorf("%s = %v, want 5", k, got)
	}
}
