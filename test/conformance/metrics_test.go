package conformance

import (
	"net"
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// scrape reads /metrics with Prometheus's text parser (e2e.ScrapeMetrics).
func scrape(t *testing.T, port int) map[string]float64 {
	t.Helper()
	return e2e.ScrapeMetrics(t, port)
}

func counter(event, status string) string {
	return `socketshark_event_success_counter{event="` + event + `",status="` + status + `"}`
}

// Metrics: socketshark_event_success_counter{event,status} counts each
// client event once, with event "invalid" and "unknown" for those cases;
// connection gauges and totals under SocketShark's names.
func TestMetricsEventCounters(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	f := newFixture(t, func(f *fixture) {
		f.cfg.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: port}
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer")}
	})
	c := f.authed() // auth success
	c.Send(`nope`)
	c.Recv() // invalid error
	c.Send(`{"event":"whatever"}`)
	c.Recv() // unknown error
	c.Send(`{"event":"invalid"}`)
	c.Recv() // unknown error: a client-chosen name
	c.Send(ev("subscribe", "nodot"))
	c.Recv()                        // subscribe error
	subscribed(t, f, c, "books.b1") // subscribe success
	c.Quiet()                       // ping success
	m := scrape(t, port)
	want := map[string]float64{
		counter("auth", "success"):      1,
		counter("auth", "error"):        0,
		counter("invalid", "error"):     1,
		counter("unknown", "error"):     2,
		counter("subscribe", "error"):   1,
		counter("subscribe", "success"): 1,
		counter("ping", "success"):      1,
		"socketshark_connection_count":  1,
		"socketshark_connection_total":  1,
		"socketshark_service_state":     1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}
