package conformance

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"

	"mako/config"
	"mako/internal/e2e"
)

// family is what a dashboard depends on: a metric's type and label names.
type family struct {
	typ    dto.MetricType
	labels []string
}

var (
	gauge     = dto.MetricType_GAUGE
	counterT  = dto.MetricType_COUNTER
	histogram = dto.MetricType_HISTOGRAM
	summary   = dto.MetricType_SUMMARY
)

// socketSharkFamilies are SocketShark's series as its Prometheus backend
// (prometheus_client) exposes them: socketshark_event_success_counter is a
// Gauge there, and a Counter comes with its _created gauge.
var socketSharkFamilies = map[string]family{
	"socketshark_service_state":         {gauge, nil},
	"socketshark_connection_count":      {gauge, nil},
	"socketshark_connection_total":      {counterT, nil},
	"socketshark_connection_created":    {gauge, nil},
	"socketshark_event_success_counter": {gauge, []string{"event", "status"}},
}

// makoFamilies are mako's own series named in the README and docs.
var makoFamilies = map[string]family{
	"mako_tcp_connections":               {gauge, nil},
	"mako_tcp_connections_total":         {counterT, nil},
	"mako_channels":                      {gauge, nil},
	"mako_service_queue":                 {gauge, []string{"service"}},
	"mako_service_inflight":              {gauge, []string{"service"}},
	"mako_service_refused_total":         {counterT, []string{"service"}},
	"mako_service_call_duration_seconds": {histogram, []string{"endpoint", "outcome", "service"}},
	"mako_fanout_latency_seconds":        {histogram, nil},
	"mako_throttle_keys":                 {gauge, nil},
	"mako_throttle_untracked_total":      {counterT, nil},
	"mako_order_keys":                    {gauge, nil},
	"mako_order_keys_evicted_total":      {counterT, nil},
	"mako_fanout_queue_messages":         {gauge, []string{"worker"}},
	"mako_fanout_queue_bytes":            {gauge, []string{"worker"}},
	"mako_fanout_queue_max_bytes":        {gauge, []string{"worker"}},
	"mako_fanout_dropped_total":          {counterT, []string{"worker"}},
	"mako_fanout_refused_total":          {counterT, []string{"worker"}},
	"mako_fanout_gaps_total":             {counterT, []string{"worker"}},
	"mako_gap_cuts_total":                {counterT, nil},
	"mako_cuts_total":                    {counterT, []string{"cause"}},
	"mako_close_timeouts_total":          {counterT, nil},
	"mako_sessions_paused":               {gauge, nil},
	"mako_loop_backlog":                  {gauge, nil},
	"mako_loop_backlog_cuts_total":       {counterT, nil},
	"mako_loop_backlog_dropped_total":    {counterT, nil},
	"mako_client_limit_hits_total":       {counterT, []string{"limit"}},
	"mako_client_ips":                    {gauge, nil},
	"mako_proxy_protocol_errors_total":   {counterT, nil},
}

// runtimeFamilies are a sample of the Go and process collectors' series.
// The process_* names are also what prometheus_client exports for a
// Python process, so SocketShark's process panels keep working.
var runtimeFamilies = map[string]family{
	"go_goroutines":                 {gauge, nil},
	"go_gc_duration_seconds":        {summary, nil},
	"go_memstats_heap_alloc_bytes":  {gauge, nil},
	"process_cpu_seconds_total":     {counterT, nil},
	"process_resident_memory_bytes": {gauge, nil},
	"process_start_time_seconds":    {gauge, nil},
	"process_open_fds":              {gauge, nil},
}

func checkFamilies(t *testing.T, got map[string]*dto.MetricFamily, want map[string]family) {
	t.Helper()
	for name, w := range want {
		mf := got[name]
		if mf == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		if mf.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), w.typ)
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName())
			}
			sort.Strings(ls)
			if !slices.Equal(ls, w.labels) {
				t.Errorf("%s: labels %v, want %v", name, ls, w.labels)
				break
			}
		}
	}
}

func metricsFixture(t *testing.T, mod func(f *fixture)) *fixture {
	t.Helper()
	return newFixture(t, func(f *fixture) {
		f.cfg.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: freePort(t)}
		f.cfg.Services["books"] = &config.Service{Authorizer: f.url("/authorizer"), OnMessage: f.url("/on_message")}
		if mod != nil {
			mod(f)
		}
	})
}

// /metrics, read with Prometheus's own text parser: SocketShark's series
// with their exact types and label names (the event counter is a gauge, as
// in SocketShark), every mako_ series the docs name, and the Go and process
// collectors.
func TestPrometheusFamilies(t *testing.T) {
	t.Parallel()
	f := metricsFixture(t, nil)
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	got := e2e.ScrapeFamiliesAt(t, f.srv.MetricsAddr())
	checkFamilies(t, got, socketSharkFamilies)
	checkFamilies(t, got, makoFamilies)
	checkFamilies(t, got, runtimeFamilies)
	// Every event × status pair is there from the start, so a rate() over
	// a pair never sees a series appear.
	ev := got["socketshark_event_success_counter"]
	if n := len(ev.GetMetric()); n != 14 {
		t.Errorf("socketshark_event_success_counter: %d series, want 7 events × 2 statuses", n)
	}
	m := e2e.ScrapeMetrics(t, f.cfg.Metrics.Prometheus.Port)
	for k, v := range map[string]float64{
		"socketshark_service_state":     1,
		"socketshark_connection_count":  1,
		"socketshark_connection_total":  1,
		counter("auth", "success"):      1,
		counter("subscribe", "success"): 1,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m["socketshark_connection_created"] <= 0 {
		t.Errorf("socketshark_connection_created = %v, want a Unix time", m["socketshark_connection_created"])
	}
}

// socketshark_connection_* count WebSocket sessions, as SocketShark does:
// a TCP connection that never upgrades (here one refused with 400) is not
// a connection there; it is in mako_tcp_connections*. A session counts
// until its close steps are done.
func TestPrometheusConnectionsAreSessions(t *testing.T) {
	t.Parallel()
	f := metricsFixture(t, nil)
	port := f.cfg.Metrics.Prometheus.Port

	raw, err := net.Dial("tcp", f.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // no Upgrade: 400
	buf := make([]byte, 64)
	if n, _ := raw.Read(buf); !strings.Contains(string(buf[:n]), " 400 ") {
		t.Fatalf("plain GET: %q, want a 400", buf[:n])
	}
	raw.Close()
	m := e2e.ScrapeMetrics(t, port)
	if m["socketshark_connection_total"] != 0 || m["socketshark_connection_count"] != 0 {
		t.Errorf("after a refused upgrade: connection_total %v, connection_count %v, want 0, 0",
			m["socketshark_connection_total"], m["socketshark_connection_count"])
	}
	if m["mako_tcp_connections_total"] != 1 {
		t.Errorf("mako_tcp_connections_total = %v, want 1", m["mako_tcp_connections_total"])
	}

	c := f.authed()
	subscribed(t, f, c, "books.b1")
	m = e2e.ScrapeMetrics(t, port)
	if m["socketshark_connection_total"] != 1 || m["socketshark_connection_count"] != 1 {
		t.Errorf("one session: connection_total %v, connection_count %v, want 1, 1",
			m["socketshark_connection_total"], m["socketshark_connection_count"])
	}
	_ = c.Conn.Close(websocket.StatusNormalClosure, "")
	e2e.WaitSessions(t, f.srv, 0)
	m = e2e.ScrapeMetrics(t, port)
	if m["socketshark_connection_total"] != 1 || m["socketshark_connection_count"] != 0 {
		t.Errorf("after it closed: connection_total %v, connection_count %v, want 1, 0",
			m["socketshark_connection_total"], m["socketshark_connection_count"])
	}
}

// metrics.prometheus is served on its own listener whether or not the api
// block is configured.
func TestPrometheusWithoutAPI(t *testing.T) {
	t.Parallel()
	f := metricsFixture(t, func(f *fixture) { f.cfg.API = nil })
	if f.srv.APIAddr() != "" {
		t.Fatalf("api served at %s without an api block", f.srv.APIAddr())
	}
	want := net.JoinHostPort("127.0.0.1", fmt.Sprint(f.cfg.Metrics.Prometheus.Port))
	if got := f.srv.MetricsAddr(); got != want {
		t.Fatalf("MetricsAddr = %q, want %q", got, want)
	}
	got := e2e.ScrapeFamiliesAt(t, want)
	checkFamilies(t, got, socketSharkFamilies)
	checkFamilies(t, got, runtimeFamilies)
}

func callKey(service, endpoint, outcome string) string {
	return `mako_service_call_duration_seconds_count{endpoint="` + endpoint + `",outcome="` + outcome + `",service="` + service + `"}`
}

// mako_service_call_duration_seconds counts each call once under its
// service, endpoint and outcome: ok, error (the service answered something
// else), timeout, 429 and unavailable (the last try's failure).
func TestPrometheusCallLatency(t *testing.T) {
	t.Parallel()
	release := newGate(t)
	f := metricsFixture(t, func(f *fixture) {
		f.cfg.HTTP.Timeout = 0.2
		f.svc.ReplyFunc("/on_message", func(c e2e.Call) (int, string) {
			switch c.Body["data"] {
			case "error":
				return 200, `{"status":"error","error":"no"}`
			case "timeout":
				release.wait()
				return 200, `{"status":"ok"}`
			case "429":
				return 429, `{}`
			case "unavailable":
				return 500, `{}`
			}
			return 200, `{"status":"ok"}`
		})
	})
	port := f.cfg.Metrics.Prometheus.Port
	before := e2e.ScrapeMetrics(t, port)
	for _, o := range []string{"ok", "error", "timeout", "429", "unavailable"} {
		if v, ok := before[callKey("books", "on_message", o)]; !ok || v != 0 {
			t.Errorf("before any call: %s = %v (present %v), want 0 present", callKey("books", "on_message", o), v, ok)
		}
	}
	c := f.authed()
	subscribed(t, f, c, "books.b1")
	for _, data := range []string{"ok", "error", "timeout", "429", "unavailable"} {
		c.Send(ev("message", "books.b1", "data", data))
		if data == "ok" {
			f.call("/on_message", "") // an ok without data has no reply
			continue
		}
		if m := c.Recv(); m["status"] != "error" {
			t.Fatalf("message %s: got %v, want an error reply", data, m)
		}
		if data == "timeout" {
			release.open() // the call timed out: let the handler return
		}
		f.call("/on_message", "")
	}
	m := e2e.ScrapeMetrics(t, port)
	want := map[string]float64{
		callKey("auth", "validation_url", "ok"): 1,
		callKey("books", "authorizer", "ok"):    1,
	}
	for _, o := range []string{"ok", "error", "timeout", "429", "unavailable"} {
		want[callKey("books", "on_message", o)] = 1
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// The latency is the call's: one that timed out after 0.2 s is past
	// the 0.1 s bucket.
	k := `mako_service_call_duration_seconds_bucket{endpoint="on_message",le="0.1",outcome="timeout",service="books"}`
	if got, ok := m[k]; !ok || got != 0 {
		t.Errorf("%s = %v (present %v), want 0", k, got, ok)
	}
}

// mako_fanout_latency_seconds is observed once per message per loop,
// however many subscribers (and encodings: here two extra-fields
// variants) the message had there.
func TestPrometheusFanoutLatency(t *testing.T) {
	t.Parallel()
	f := metricsFixture(t, func(f *fixture) {
		singleLoop(f)
		f.cfg.Services["books"].ExtraFields = []string{"org"}
	})
	a, b := f.authed(), f.authed()
	subscribed(t, f, a, "books.b1", "org", "o1")
	subscribed(t, f, b, "books.b1", "org", "o2")
	port := f.cfg.Metrics.Prometheus.Port
	if got := e2e.ScrapeMetrics(t, port)["mako_fanout_latency_seconds_count"]; got != 0 {
		t.Fatalf("before any message: count %v", got)
	}
	f.publish(`{"subscription":"books.b1","data":1}`)
	for _, c := range []*e2e.Client{a, b} {
		if m := c.Recv(); m["data"] != 1.0 {
			t.Fatalf("got %v", m)
		}
	}
	// The observation follows the flush that wrote the frame, on the same
	// loop: a reply to a later event comes after it.
	a.Quiet()
	m := e2e.ScrapeMetrics(t, port)
	if got := m["mako_fanout_latency_seconds_count"]; got != 1 {
		t.Errorf("mako_fanout_latency_seconds_count = %v, want 1 (one message, one loop)", got)
	}
	if got := m[`mako_fanout_latency_seconds_bucket{le="+Inf"}`]; got != 1 {
		t.Errorf(`bucket le="+Inf" = %v, want 1`, got)
	}
}
