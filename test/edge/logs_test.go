package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/internal/logx"
	"mako/server"
)

// logBuf collects log lines from the server's goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// processLines are the lines about the node, not a connection.
var processLines = map[string]bool{
	"mako listening": true,
	"ws.allowed_origins is empty: upgrades from any Origin are accepted": true,
	"draining": true,
}

// deadServiceURL is a loopback port nobody listens on: every call is
// refused at once.
func deadServiceURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d/before_subscribe", freePort(t))
}

// Every line about a connection names its session, through a session's
// life: upgrade, a subscribe whose service is dead (the service caller's
// own lines, on a pool worker), a protocol error, a slow consumer cut, a
// rejected upgrade.
func TestLogLinesNameTheSession(t *testing.T) {
	t.Parallel()
	var buf logBuf
	no := false
	dead := deadServiceURL(t)
	srv := startServer(t, func(c *cfgT) {
		c.WS.MaxOutboundBytes = 64 << 10
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
		c.Services["dead"] = &config.Service{RequireAuthentication: &no, BeforeSubscribe: dead}
	}, func(o *server.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Version = "v-test"
	})

	a := open(t, srv)
	a.send(`{"event":"subscribe","subscription":"dead.x"}`)
	if m := a.nextJSON(); m["status"] != "error" {
		t.Fatalf("subscribe to a dead service: %v", m)
	}
	// An unmasked client frame is a protocol error: the session is closed.
	a.write(clientFrame(true, 0, opText, []byte(`{}`), false))
	a.expectClose(1002)

	slow := openSmallWindow(t, srv.Addr())
	slow.subscribe("demo.feed")
	pad := strings.Repeat("p", 1000)
	for sent := 0; ; sent += 100 {
		if state, _, ok := serverSide(t, slow); !ok || state != "01" {
			break
		}
		if sent >= 20000 {
			t.Fatalf("not cut after %d messages", sent)
		}
		for i := range 100 {
			e2e.Publish(t, srv, fmt.Sprintf(`{"subscription":"demo.feed","data":{"n":%d,"p":"%s"}}`, sent+i, pad))
		}
	}

	bad := dialRaw(t, srv)
	bad.write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"))
	if resp, _ := bad.response(); resp.StatusCode/100 != 4 {
		t.Fatalf("upgrade without its headers: %d", resp.StatusCode)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = srv.Shutdown(ctx)
	t.Logf("shutdown took %v", time.Since(start))

	want := map[string]bool{
		"service call failed":                false,
		"closing connection: protocol error": false,
		"cutting connection: slow consumer":  false,
		"rejecting upgrade":                  false,
	}
	for _, m := range buf.lines(t) {
		msg, _ := m["msg"].(string)
		if msg == "mako listening" {
			// The start-up line says what runs: version, listeners,
			// broker, loops and services.
			if m["version"] != "v-test" || m["ws"] != srv.Addr() || m["api"] != srv.APIAddr() ||
				m["broker"] != "embedded" || m["loops"] == nil || fmt.Sprint(m["services"]) != "[dead demo]" {
				t.Errorf("start-up line %v", m)
			}
			if _, ok := m["metrics"]; !ok {
				t.Errorf("start-up line %v lacks metrics", m)
			}
		}
		if _, ok := want[msg]; ok {
			want[msg] = true
		}
		if processLines[msg] || m["src"] == "gnet" {
			continue
		}
		if _, ok := m["session"]; !ok {
			t.Errorf("line about a connection without session: %v", m)
		}
	}
	for msg, seen := range want {
		if !seen {
			t.Errorf("no %q line: the test did not cover it", msg)
		}
	}
}

// countFor counts the records with one message on their way to next, so
// the test knows the exact number of events the rate limit summarised.
type countFor struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (c countFor) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.n.Add(1)
	}
	return c.Handler.Handle(ctx, r)
}

func (c countFor) WithAttrs(as []slog.Attr) slog.Handler {
	return countFor{c.Handler.WithAttrs(as), c.msg, c.n}
}

func (c countFor) WithGroup(g string) slog.Handler {
	return countFor{c.Handler.WithGroup(g), c.msg, c.n}
}

// A dead service under a storm of subscribes from a few clients writes the
// first failure and one summary with the exact count, not a line per try.
func TestDeadServiceFloodLogsAFewLines(t *testing.T) {
	t.Parallel()
	var buf logBuf
	var clock atomic.Int64 // unix nanos; the interval never ends on its own
	clock.Store(time.Unix(1000, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	rl := logx.NewRateLimit(slog.NewJSONHandler(&buf, nil), time.Second, now).(*logx.RateLimit)
	var calls atomic.Int64
	h := countFor{rl, "service call failed", &calls}
	no := false
	dead := deadServiceURL(t)
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Tries = 2
		// No circuit breaker: it would stop the calls after a few, and this
		// test needs a flood of identical failures to log.
		c.HTTP.BreakerFailures = 0
		c.Limits.MaxQueuedEvents = 100
		c.Services["dead"] = &config.Service{RequireAuthentication: &no, BeforeSubscribe: dead}
	}, func(o *server.Options) { o.Logger = slog.New(h) })

	const clients, rounds, batch = 4, 5, 50
	conns := make([]*rawConn, clients)
	for i := range conns {
		conns[i] = open(t, srv)
	}
	for r := range rounds {
		for _, c := range conns {
			for i := range batch {
				c.send(fmt.Sprintf(`{"event":"subscribe","subscription":"dead.r%di%d"}`, r, i))
			}
		}
		for _, c := range conns {
			for range batch {
				if m := c.nextJSON(); m["status"] != "error" {
					t.Fatalf("subscribe to a dead service: %v", m)
				}
			}
		}
	}
	events := calls.Load()
	if events < clients*rounds*batch {
		t.Fatalf("%d failed tries logged, want at least one per subscribe (%d)", events, clients*rounds*batch)
	}
	var failed []map[string]any
	count := func() {
		failed = failed[:0]
		for _, m := range buf.lines(t) {
			if m["msg"] == "service call failed" {
				failed = append(failed, m)
			}
		}
	}
	count()
	if len(failed) != 1 {
		t.Fatalf("%d lines for %d failed tries within one interval, want 1", len(failed), events)
	}
	clock.Add(int64(time.Second))
	rl.Flush()
	count()
	if len(failed) != 2 {
		t.Fatalf("%d lines after the interval, want the first and one summary", len(failed))
	}
	if got := failed[1]["repeated"]; got != float64(events-1) {
		t.Fatalf("summary %v: repeated = %v, want %d", failed[1], got, events-1)
	}
	t.Logf("%d failed tries -> %d lines; summary %v", events, len(failed), failed[1])
	if n := logx.Suppressed.Load(); n < events-1 {
		t.Fatalf("logx.Suppressed = %d, want at least %d", n, events-1)
	}
}
