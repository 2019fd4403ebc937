// Package e2e holds the helpers of mako's black-box tests: a real server on
// a random port, real HTTP services that record every callback, and real
// WebSocket clients.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"mako/config"
	"mako/server"
)

// Timeout bounds every wait in these helpers: a wait is for an event, and
// the timeout only turns a hang into a failure.
const Timeout = 10 * time.Second

// Config returns a config with random ports, the API enabled and fast
// service retries, for tests to adjust before StartServer.
func Config() *config.Config {
	c := config.Default()
	c.WS.Port = 0
	c.WS.Ping.Interval = 0
	c.API = &config.API{Host: "127.0.0.1", Port: 0}
	c.HTTP.Timeout = 2
	c.HTTP.Tries = 1
	c.HTTP.Wait = 0
	c.Services = map[string]*config.Service{}
	return c
}

// StartServer validates cfg, starts mako and stops it at cleanup.
func StartServer(t testing.TB, cfg *config.Config, opts ...func(*server.Options)) *server.Server {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	o := server.Options{Logger: Logger(t)}
	for _, f := range opts {
		f(&o)
	}
	srv, err := server.New(cfg, o)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// Logger logs to stderr only with MAKO_TEST_LOG=1, so test output stays
// readable.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("MAKO_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Call is one request a Service received.
type Call struct {
	Path string
	Body map[string]any
	Raw  []byte
}

// Service is a real HTTP service on loopback that records every call and
// answers with what Reply returns for the path (default {"status":"ok"}).
type Service struct {
	srv   *httptest.Server
	Calls chan Call

	mu      sync.Mutex
	replies map[string]func(Call) (int, string)
}

// NewService starts a recording service.
func NewService(t testing.TB) *Service {
	s := &Service{Calls: make(chan Call, 1024), replies: map[string]func(Call) (int, string){}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := Call{Path: r.URL.Path, Raw: raw}
		_ = json.Unmarshal(raw, &c.Body)
		s.mu.Lock()
		f := s.replies[r.URL.Path]
		s.mu.Unlock()
		status, body := 200, `{"status":"ok"}`
		if f != nil {
			status, body = f(c)
		}
		s.Calls <- c
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the service URL for path (e.g. "/authorizer").
func (s *Service) URL(path string) string { return s.srv.URL + path }

// Reply sets a fixed reply body (status 200) for path.
func (s *Service) Reply(path, body string) {
	s.ReplyFunc(path, func(Call) (int, string) { return 200, body })
}

// ReplyFunc sets a reply function for path.
func (s *Service) ReplyFunc(path string, f func(Call) (int, string)) {
	s.mu.Lock()
	s.replies[path] = f
	s.mu.Unlock()
}

// Next returns the next call, failing the test after Timeout.
func (s *Service) Next(t testing.TB) Call {
	t.Helper()
	select {
	case c := <-s.Calls:
		return c
	case <-time.After(Timeout):
		t.Fatalf("no service call within %v", Timeout)
		return Call{}
	}
}

// NoCall asserts no call is pending right now (use after a reply that is
// known to come after the call would have been made).
func (s *Service) NoCall(t testing.TB) {
	t.Helper()
	select {
	case c := <-s.Calls:
		t.Fatalf("unexpected service call %s %s", c.Path, c.Raw)
	default:
	}
}

// Client is a real WebSocket client (coder/websocket).
type Client struct {
	t    testing.TB
	Conn *websocket.Conn
	msgs chan []byte
	errc chan error
}

// Dial connects to srv.
func Dial(t testing.TB, srv *server.Server) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+srv.Addr(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(-1)
	c := &Client{t: t, Conn: conn, msgs: make(chan []byte, 4096), errc: make(chan error, 1)}
	go func() {
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				c.errc <- err
				close(c.msgs)
				return
			}
			c.msgs <- b
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow() })
	return c
}

// Send writes one JSON text frame; v may be a string of raw JSON.
func (c *Client) Send(v any) {
	c.t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Recv returns the next frame decoded as a JSON object.
func (c *Client) Recv() map[string]any {
	c.t.Helper()
	b := c.RecvRaw()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame is not a JSON object: %s", b)
	}
	return m
}

// RecvRaw returns the next frame's bytes.
func (c *Client) RecvRaw() []byte {
	c.t.Helper()
	select {
	case b, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("connection closed: %v", <-c.errc)
		}
		return b
	case <-time.After(Timeout):
		c.t.Fatalf("no frame within %v", Timeout)
		return nil
	}
}

// Closed waits for the connection to close and returns its close status.
func (c *Client) Closed() websocket.StatusCode {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.msgs:
			if !ok {
				return websocket.CloseStatus(<-c.errc)
			}
		case <-time.After(Timeout):
			c.t.Fatalf("connection still open after %v", Timeout)
			return 0
		}
	}
}

// Next returns the next frame decoded as a JSON object, or, when the
// connection closes instead, nil and its close status.
func (c *Client) Next() (map[string]any, websocket.StatusCode) {
	c.t.Helper()
	select {
	case b, ok := <-c.msgs:
		if !ok {
			return nil, websocket.CloseStatus(<-c.errc)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("frame is not a JSON object: %s", b)
		}
		return m, 0
	case <-time.After(Timeout):
		c.t.Fatalf("no frame or close within %v", Timeout)
		return nil, 0
	}
}

// Roundtrip sends an event and returns the reply; a ping round trip after it
// proves nothing else was sent in between when callers check with Quiet.
func (c *Client) Roundtrip(v any) map[string]any {
	c.t.Helper()
	c.Send(v)
	return c.Recv()
}

// Quiet asserts that nothing arrives before the reply to a ping: events are
// handled in order, so anything queued ahead of the pong shows up first.
func (c *Client) Quiet() {
	c.t.Helper()
	c.Send(`{"event":"ping","data":"quiet"}`)
	m := c.Recv()
	if m["event"] != "pong" || m["data"] != "quiet" {
		c.t.Fatalf("expected only the pong, got %v", m)
	}
}

// Publish posts a message through the server's publish API.
func Publish(t testing.TB, srv *server.Server, body string) {
	t.Helper()
	resp, err := http.Post("http://"+srv.APIAddr()+"/publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
}

// FakeClock is a server.Clock that moves only when the test says so. With
// server.Options{Clock: c, ManualTimers: true} and Server.RunTimers, timer
// driven behaviour (re-authorization, heartbeats, throttle windows, pings)
// is tested without waiting for real time. Its wall and monotonic readings
// move together (Advance) or apart (StepWall), as a real clock's do when
// NTP or a VM resume steps the wall clock.
type FakeClock struct {
	mu   sync.Mutex
	now  time.Time
	mono time.Duration
}

// NewFakeClock starts at a fixed instant, monotonic reading 0.
func NewFakeClock() *FakeClock { return &FakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now is the wall reading.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Mono is the monotonic reading.
func (c *FakeClock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Advance lets d pass: both readings move forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mono += d
	c.mu.Unlock()
}

// StepWall sets the wall clock by d (negative: back) without time passing,
// as NTP or a VM resume does; Mono does not move.
func (c *FakeClock) StepWall(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Tick advances the clock by d and runs every timer now due, returning once
// they ran; then it waits until the service calls they started, and the
// calls their continuations started, have all finished on the loop, so a
// following Service.NoCall is a deterministic check. (A re-authorization
// queued behind a busy session's event is not counted until it starts.)
func Tick(t testing.TB, srv *server.Server, c *FakeClock, d time.Duration) {
	t.Helper()
	c.Advance(d)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := srv.RunTimers(ctx); err != nil {
		t.Fatalf("running timers: %v", err)
	}
	for {
		st, err := srv.Stats(ctx)
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		if st.Calls == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("service calls still running after %v", Timeout)
		case <-time.After(time.Millisecond): // polling the pool, which has no event to await
		}
	}
}

// WaitSessions waits until srv has n sessions not yet finished (their
// close steps included), e.g. 0 after the clients closed.
func WaitSessions(t testing.TB, srv *server.Server, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	for {
		st, err := srv.Stats(ctx)
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		if st.Sessions == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d sessions after %v, want %d", st.Sessions, Timeout, n)
		case <-time.After(time.Millisecond): // the close steps have no event to await from here
		}
	}
}

// ServeMetrics configures /metrics on a free loopback port and returns a
// scraper of it: name{labels} → value, from the Prometheus text format.
func ServeMetrics(t testing.TB, cfg *config.Config) func() map[string]float64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cfg.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: port}
	return func() map[string]float64 {
		t.Helper()
		return ScrapeMetrics(t, port)
	}
}

// ScrapeMetrics reads the Prometheus metrics served on a loopback port:
// name{labels} → value, labels in name order as name="value" (escaped as
// the text format escapes them). A histogram gives its name_bucket{…,le=…},
// name_sum and name_count series. The body is parsed with Prometheus's own
// text parser, so a malformed exposition fails the test.
func ScrapeMetrics(t testing.TB, port int) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, mf := range ScrapeFamilies(t, port) {
		for _, m := range mf.GetMetric() {
			labels := m.GetLabel()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[seriesKey(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[seriesKey(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[seriesKey(name, labels)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					le := strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					if math.IsInf(b.GetUpperBound(), 1) {
						le = "+Inf"
					}
					ls := append(append([]*dto.LabelPair(nil), labels...), &dto.LabelPair{Name: proto.String("le"), Value: proto.String(le)})
					out[seriesKey(name+"_bucket", ls)] = float64(b.GetCumulativeCount())
				}
				out[seriesKey(name+"_sum", labels)] = h.GetSampleSum()
				out[seriesKey(name+"_count", labels)] = float64(h.GetSampleCount())
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				out[seriesKey(name+"_sum", labels)] = sm.GetSampleSum()
				out[seriesKey(name+"_count", labels)] = float64(sm.GetSampleCount())
			}
		}
	}
	return out
}

// ScrapeFamilies reads /metrics on a loopback port with Prometheus's text
// parser: metric families by name, with their types and labels.
func ScrapeFamilies(t testing.TB, port int) map[string]*dto.MetricFamily {
	t.Helper()
	return ScrapeFamiliesAt(t, "127.0.0.1:"+strconv.Itoa(port))
}

// ScrapeFamiliesAt is ScrapeFamilies for a host:port (Server.MetricsAddr).
func ScrapeFamiliesAt(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return fams
}

// seriesKey formats name{a="x",b="y"} with the labels sorted by name.
func seriesKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	ls := append([]*dto.LabelPair(nil), labels...)
	sort.Slice(ls, func(i, j int) bool { return ls[i].GetName() < ls[j].GetName() })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName())
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(l.GetValue()))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// labelEscaper escapes a label value as the text format does.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
