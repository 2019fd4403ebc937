package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
)

// openSmallWindowDeflate is openSmallWindow for a client that negotiates
// permessage-deflate (it never reads, so it never has to inflate).
func openSmallWindowDeflate(t testing.TB, addr string) *rawConn {
	t.Helper()
	rc := dialSmallWindow(t, addr)
	key := newKey()
	rc.write([]byte(upgradeRequest(key, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover")))
	resp, body := rc.response()
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Extensions") == "" {
		t.Fatalf("deflate upgrade: %s %q %v", resp.Status, body, resp.Header)
	}
	return rc
}

// One channel with more subscribers on one loop than a drain's budget, so
// every message is delivered in several chunks, and 4 KB messages, so the
// loop's 4 MiB of coalesced output is flushed in the middle of a delivery:
// slow consumers (plain and permessage-deflate) that read nothing are cut
// there, with the delivery cursor in the channel's subscriber list. Half of
// them have a service call in flight (on_message hangs), so their close
// steps wait; the other half are released from the list at once, mid
// delivery. Every healthy subscriber, plain or deflate, receives every
// number in order (nobody skipped or visited twice); exactly the slow ones
// are cut; once the calls return, each cut session gets exactly one
// before_unsubscribe and on_unsubscribe, and finishes.
func TestCutsDuringChunkedDeliveryWithCallsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("1,100 connections")
	}
	const (
		plain   = 1040 // > chunkBudget (1024) subscribers visited per drain
		deflate = 20
		slowN   = 8 // alternately plain and deflate; the first half with a call in flight
		msgs    = 40
		window  = 3 // the publisher stays this many messages ahead of the slowest healthy reader
	)
	svc := e2e.NewService(t)
	var onSub, beforeUnsub, onUnsub atomic.Int64
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	svc.ReplyFunc("/on_subscribe", func(e2e.Call) (int, string) { onSub.Add(1); return 200, `{"status":"ok"}` })
	svc.ReplyFunc("/before_unsubscribe", func(e2e.Call) (int, string) { beforeUnsub.Add(1); return 200, `{"status":"ok"}` })
	svc.ReplyFunc("/on_unsubscribe", func(e2e.Call) (int, string) { onUnsub.Add(1); return 200, `{"status":"ok"}` })
	svc.ReplyFunc("/on_message", func(e2e.Call) (int, string) { <-release; return 200, `{"status":"ok"}` })
	go func() { // e2e.Service records every call in a bounded channel: keep it empty
		for range svc.Calls {
		}
	}()
	metricsPort := freePort(t)
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Timeout = 30
		c.WS.MaxOutboundBytes = 32 << 10
		c.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: metricsPort}
		c.Services["demo"] = &config.Service{
			RequireAuthentication: &no,
			OnSubscribe:           svc.URL("/on_subscribe"),
			OnMessage:             svc.URL("/on_message"),
			BeforeUnsubscribe:     svc.URL("/before_unsubscribe"),
			OnUnsubscribe:         svc.URL("/on_unsubscribe"),
		}
	}, oneLoop)

	// The slow consumers subscribe first, so they sit at the front of the
	// channel's subscriber list: cut mid-delivery, they are behind the
	// cursor, where a plain swap-remove would move an unvisited subscriber.
	var slow []*rawConn
	for i := range slowN {
		var rc *rawConn
		if i%2 == 0 {
			rc = openSmallWindow(t, srv.Addr())
		} else {
			rc = openSmallWindowDeflate(t, srv.Addr())
		}
		rc.send(`{"event":"subscribe","subscription":"demo.feed"}`)
		if i < slowN/2 {
			rc.send(`{"event":"message","subscription":"demo.feed","data":"hang"}`)
		}
		slow = append(slow, rc)
	}
	got := make([]sync.WaitGroup, msgs) // got[i] is done once every healthy subscriber read message i
	for i := range got {
		got[i].Add(plain + deflate)
	}
	errs := make(chan error, plain+deflate)
	check := func(who string, next *int, b []byte) bool {
		// The number is read by hand: decoding 4 KB of JSON per frame
		// in 1,100 readers under the race detector would dominate the test.
		_, rest, ok := bytes.Cut(b, []byte(`"data":{"n":`))
		end := bytes.IndexByte(rest, ',')
		if !ok || end < 0 || !bytes.HasPrefix(b, []byte(`{"event":"message"`)) {
			errs <- fmt.Errorf("%s: unexpected frame %.200q", who, b)
			return false
		}
		if n, err := strconv.Atoi(string(rest[:end])); err != nil || n != *next {
			errs <- fmt.Errorf("%s: got message %q, want %d", who, rest[:end], *next)
			return false
		}
		got[*next].Done()
		*next++
		return true
	}
	var readers sync.WaitGroup
	for i := range plain {
		rc := open(t, srv)
		rc.subscribe("demo.feed")
		readers.Add(1)
		go func() {
			defer readers.Done()
			for next := 0; next < msgs; {
				f, err := rc.readFrame()
				if err != nil {
					errs <- fmt.Errorf("plain %d after %d messages: %v", i, next, err)
					return
				}
				if !check(fmt.Sprintf("plain %d", i), &next, f.payload) {
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	for i := range deflate {
		c, _, err := websocket.Dial(ctx, "ws://"+srv.Addr(), &websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover})
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(-1)
		t.Cleanup(func() { _ = c.CloseNow() })
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"event":"subscribe","subscription":"demo.feed"}`)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := c.Read(ctx); err != nil || json.Unmarshal(b, new(any)) != nil {
			t.Fatalf("deflate subscribe: %q %v", b, err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for next := 0; next < msgs; {
				_, b, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("deflate %d after %d messages: %v", i, next, err)
					return
				}
				if !check(fmt.Sprintf("deflate %d", i), &next, b) {
					return
				}
			}
		}()
	}
	// Every subscription confirmed (on_subscribe ran) and every slow
	// session's on_message in flight.
	e2eEventually(t, "every subscription and the slow sessions' calls", func() bool {
		st, err := srv.Stats(context.Background())
		return err == nil && onSub.Load() == plain+deflate+slowN && st.Calls == slowN/2
	}, func() string { return fmt.Sprint("on_subscribe ", onSub.Load()) })

	// 5,000 random decimal digits: deflate shrinks them to about 2,200
	// bytes (random base64 it would send plain), so the deflate sessions
	// really get compressed frames; 40 messages pass the cap (plus the slow
	// clients' 4 KiB windows) several times over either way.
	digits := make([]byte, 5000)
	_, _ = rand.Read(digits)
	for i := range digits {
		digits[i] = '0' + digits[i]%10
	}
	textPad := string(digits)
	failed := func() bool {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		return false
	}
	for i := range msgs {
		if i >= window {
			waitGroup(t, &got[i-window], errs)
		}
		e2e.Publish(t, srv, fmt.Sprintf(`{"subscription":"demo.feed","data":{"n":%d,"pad":"%s"}}`, i, textPad))
	}
	failed()
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("healthy readers did not get every message")
	}
	failed()
	m := e2e.ScrapeMetrics(t, metricsPort)
	if cuts := m[`mako_cuts_total{cause="slow_consumer"}`]; cuts != slowN {
		t.Fatalf(`mako_cuts_total{cause="slow_consumer"} = %v, want %d`, cuts, slowN)
	}
	for i, rc := range slow {
		if state, _, ok := serverSide(t, rc); ok {
			t.Fatalf("slow consumer %d: server socket still there (state %s)", i, state)
		}
	}
	// The cut sessions finish once their calls return, each with its
	// unsubscribe callbacks exactly once.
	releaseOnce()
	e2eEventually(t, "the cut sessions to finish", func() bool {
		st, err := srv.Stats(context.Background())
		return err == nil && st.Sessions == plain+deflate && st.Calls == 0
	}, func() string {
		st, _ := srv.Stats(context.Background())
		return fmt.Sprintf("%+v before_unsubscribe %d on_unsubscribe %d", st, beforeUnsub.Load(), onUnsub.Load())
	})
	if b, u := beforeUnsub.Load(), onUnsub.Load(); b != slowN || u != slowN {
		t.Fatalf("before_unsubscribe %d, on_unsubscribe %d; want %d each", b, u, slowN)
	}
}

// waitGroup waits for wg, failing on the first reader error or after 3×wait.
func waitGroup(t *testing.T, wg *sync.WaitGroup, errs chan error) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	select {
	case <-done:
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("healthy readers fell behind")
	}
}

// On one loop, service results (on_message echoes), broker acks (new
// subscriptions) and fan-out batches of a numbered stream interleave in
// the loop's inbox: every stream subscriber gets every number in order,
// and every busy client gets its replies in order.
func TestStreamOrderAmidResultsAndAcks(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	svc.ReplyFunc("/on_message", func(c e2e.Call) (int, string) {
		d, _ := json.Marshal(c.Body["data"])
		return 200, `{"status":"ok","data":` + string(d) + `}`
	})
	go func() { // e2e.Service records every call in a bounded channel: keep it empty
		for range svc.Calls {
		}
	}()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, OnMessage: svc.URL("/on_message")}
	}, oneLoop)
	const streamers, busy, events, msgs = 50, 40, 100, 600
	errs := make(chan error, streamers+busy)
	var wg sync.WaitGroup
	for i := range streamers {
		rc := open(t, srv)
		rc.subscribe("demo.x")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next := 0; next < msgs; next++ {
				f, err := rc.readFrame()
				if err != nil {
					errs <- fmt.Errorf("streamer %d at %d: %v", i, next, err)
					return
				}
				var m struct {
					Data struct{ N int }
				}
				if json.Unmarshal(f.payload, &m) != nil || m.Data.N != next {
					errs <- fmt.Errorf("streamer %d: got %q, want %d", i, f.payload, next)
					return
				}
			}
		}()
	}
	var busyConns []*rawConn
	for range busy {
		busyConns = append(busyConns, open(t, srv))
	}
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for n := range msgs {
			e2e.Publish(t, srv, fmt.Sprintf(`{"subscription":"demo.x","data":{"n":%d}}`, n))
		}
	}()
	for c, rc := range busyConns {
		rc.write(burst(events, func(i int) string {
			switch {
			case i == 0:
				return fmt.Sprintf(`{"event":"subscribe","subscription":"demo.m%d"}`, c)
			case i%2 == 0:
				return fmt.Sprintf(`{"event":"message","subscription":"demo.m%d","data":%d}`, c, i)
			}
			return fmt.Sprintf(`{"event":"subscribe","subscription":"demo.b%d_%d"}`, c, i)
		}))
	}
	for c, rc := range busyConns {
		for i := range events {
			m := rc.nextJSON()
			switch {
			case i == 0:
				if m["status"] != "ok" {
					t.Fatalf("busy %d subscribe: %v", c, m)
				}
				continue
			case i%2 == 0:
				if m["event"] != "message" || m["data"] != float64(i) {
					t.Fatalf("busy %d reply %d: %v", c, i, m)
				}
				continue
			}
			if m["event"] != "subscribe" || m["status"] != "ok" || m["subscription"] != fmt.Sprintf("demo.b%d_%d", c, i) {
				t.Fatalf("busy %d reply %d: %v", c, i, m)
			}
		}
	}
	<-pubDone
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(3 * wait):
		t.Fatal("streamers did not get every message")
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
