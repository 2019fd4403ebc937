package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// burst is n client frames in one buffer, written with one Write: they
// reach the server in as few TCP segments as the kernel makes of it.
func burst(n int, event func(i int) string) []byte {
	var b []byte
	for i := range n {
		b = append(b, clientFrame(true, 0, opText, []byte(event(i)), true)...)
	}
	return b
}

// A client that resubscribes many topics in one TCP write gets every reply,
// in order, and stays connected: while limits.max_queued_events events wait
// (each behind a service call), mako stops parsing and resumes as they
// finish, instead of closing the connection (SocketShark reads the next
// frame only when the previous event is done). Past the threshold: 300
// subscribes against a queue of 64, and 66 against a queue of 0.
func TestBurstOfSubscribesGetsEveryReplyInOrder(t *testing.T) {
	for _, tc := range []struct{ n, queue int }{{300, 64}, {66, 0}} {
		t.Run(fmt.Sprintf("%d_queue%d", tc.n, tc.queue), func(t *testing.T) {
			t.Parallel()
			svc := e2e.NewService(t)
			no := false
			srv := startServer(t, func(c *cfgT) {
				c.Limits.MaxQueuedEvents = tc.queue
				c.Services["demo"] = &config.Service{RequireAuthentication: &no, BeforeSubscribe: svc.URL("/before_subscribe")}
			})
			rc := open(t, srv)
			rc.write(burst(tc.n, func(i int) string {
				return fmt.Sprintf(`{"event":"subscribe","subscription":"demo.t%d"}`, i)
			}))
			for i := range tc.n {
				m := rc.nextJSON()
				if m["event"] != "subscribe" || m["status"] != "ok" || m["subscription"] != fmt.Sprintf("demo.t%d", i) {
					t.Fatalf("reply %d: %v", i, m)
				}
			}
			rc.ping("still open")
		})
	}
}

// Events that finish at once and events that wait on a service, many in one
// write, come back strictly in order; the burst spans several parse windows.
func TestMixedBurstInOrder(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	svc.ReplyFunc("/on_message", func(c e2e.Call) (int, string) {
		d, _ := json.Marshal(c.Body["data"])
		return 200, `{"status":"ok","data":` + string(d) + `}`
	})
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.Limits.MaxQueuedEvents = 8
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, OnMessage: svc.URL("/on_message")}
	})
	rc := open(t, srv)
	rc.send(`{"event":"subscribe","subscription":"demo.chat"}`)
	if m := rc.nextJSON(); m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	const pairs = 400
	rc.write(burst(2*pairs, func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf(`{"event":"message","subscription":"demo.chat","data":%d}`, i)
		}
		return fmt.Sprintf(`{"event":"ping","data":"%d"}`, i)
	}))
	for i := range 2 * pairs {
		m := rc.nextJSON()
		if i%2 == 0 {
			if m["event"] != "message" || m["data"] != float64(i) {
				t.Fatalf("reply %d: want the message reply, got %v", i, m)
			}
			continue
		}
		expectPong(t, m, strconv.Itoa(i))
	}
}

// Thousands of pings in one write: every pong, in order, connection open.
func TestPingsInOneWrite(t *testing.T) {
	t.Parallel()
	// More than limits.client_events_burst at once: the event rate is not
	// what this test is about (clientlimit_test.go).
	srv := startServer(t, func(c *cfgT) { c.Limits.ClientEventsPerSecond = 0 })
	rc := open(t, srv)
	const n = 3000
	rc.write(burst(n, func(i int) string { return fmt.Sprintf(`{"event":"ping","data":"%d"}`, i) }))
	for i := range n {
		expectPong(t, rc.nextJSON(), strconv.Itoa(i))
	}
	rc.ping("open")
}

// A client that keeps sending while its events wait (mako has stopped
// parsing for it) is cut once its unparsed bytes pass
// limits.max_inbound_bytes: a 1008 close frame, the connection reset, a log
// line and mako_cuts_total{cause="inbound"}. Another client on the same loop
// is unaffected.
func TestInboundFloodIsCut(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	release := make(chan struct{})
	svc.ReplyFunc("/before_subscribe", func(e2e.Call) (int, string) {
		<-release
		return 200, `{"status":"ok"}`
	})
	logs := &syncBuffer{}
	metricsPort := freePort(t)
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Timeout = 30
		c.WS.MaxMessageSize = 4096
		c.Limits.MaxInboundBytes = 64 << 10
		c.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: metricsPort}
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, BeforeSubscribe: svc.URL("/before_subscribe")}
	}, oneLoop, func(o *server.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	t.Cleanup(func() { close(release) }) // before the server's shutdown, which waits for the call
	other := open(t, srv)
	rc := open(t, srv)

	// The first subscribe waits on the service; the 64 behind it fill the
	// queue; everything after stays unparsed until the cap is passed.
	frame := clientFrame(true, 0, opText, []byte(`{"event":"subscribe","subscription":"demo.flood"}`), true)
	flood := bytes.Repeat(frame, (256<<10)/len(frame))
	_ = rc.c.SetWriteDeadline(time.Now().Add(wait))
	_, werr := rc.c.Write(flood) // fails with a reset once cut: both are fine
	t.Logf("flood write: %v", werr)

	f, err := rc.readFrame()
	if err != nil {
		t.Fatalf("want a 1008 close frame before the reset, got %v", err)
	}
	if code, reason := f.close(); f.op != opClose || code != 1008 {
		t.Fatalf("want a 1008 close frame, got %v", f)
	} else {
		t.Logf("closed %d %q", code, reason)
	}
	if _, err := rc.readFrame(); err == nil {
		t.Fatal("more frames after the close frame")
	}
	other.ping("unaffected")
	if !strings.Contains(logs.String(), "too much unread input") {
		t.Fatalf("no log line for the cut; log:\n%s", logs.String())
	}
	if got := e2e.ScrapeMetrics(t, metricsPort)[`mako_cuts_total{cause="inbound"}`]; got != 1 {
		t.Fatalf(`mako_cuts_total{cause="inbound"} = %v, want 1`, got)
	}
}

// syncBuffer is a log destination shared by the server's loops.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While reading is paused for the client's own queued events, its pong may
// be among the unparsed bytes: the pong deadline does not cut it. Once the
// events run, the pong is read and the connection carries on.
func TestPausedSessionIsNotCutForAnUnreadPong(t *testing.T) {
	svc := e2e.NewService(t)
	release := make(chan struct{})
	svc.ReplyFunc("/before_subscribe", func(c e2e.Call) (int, string) {
		if c.Body["subscription"] == "demo.t0" {
			<-release
		}
		return 200, `{"status":"ok"}`
	})
	clock := e2e.NewFakeClock()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Timeout = 30
		c.WS.Ping.Interval = 15
		c.WS.Ping.Timeout = 10
		c.Limits.MaxQueuedEvents = 4
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, BeforeSubscribe: svc.URL("/before_subscribe")}
	}, func(o *server.Options) { o.Clock, o.ManualTimers = clock, true })
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	rc := open(t, srv)
	// demo.t0 waits on the service, four wait behind it, the rest is
	// left unparsed.
	const n = 10
	rc.write(burst(n, func(i int) string { return fmt.Sprintf(`{"event":"subscribe","subscription":"demo.t%d"}`, i) }))
	e2eEventually(t, "demo.t0's call in progress", func() bool {
		st, err := srv.Stats(context.Background())
		return err == nil && st.Calls == 1
	}, func() string { return "" })

	runTimers := func(d time.Duration) {
		clock.Advance(d)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.RunTimers(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runTimers(15 * time.Second)
	if f := rc.next(); f.op != opPing {
		t.Fatalf("want a ping, got %v", f)
	}
	rc.write(clientFrame(true, 0, opPong, nil, true)) // queued behind the unparsed subscribes
	runTimers(10 * time.Second)                       // the pong deadline, while paused
	releaseOnce()
	for i := range n {
		if m := rc.nextJSON(); m["status"] != "ok" || m["subscription"] != fmt.Sprintf("demo.t%d", i) {
			t.Fatalf("reply %d: %v", i, m)
		}
	}
	rc.ping("pong was read")
	// Past the extended deadline the pong has counted: the next ping
	// (due 15 s after the first), not a close.
	runTimers(10 * time.Second)
	if f := rc.next(); f.op != opPing {
		t.Fatalf("want the next ping, got %v", f)
	}
	rc.ping("still open")
}
