package edge

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/pubsub"
	"mako/server"
)

// readerBroker stands for Redis: a publish leaves the node and comes back
// through the broker's reader, which must never block, so a message that
// does not fit the fan-out queue is dropped there, not refused.
type readerBroker struct {
	mu sync.Mutex
	h  pubsub.Handler
}

func (b *readerBroker) Start(h pubsub.Handler) error         { b.mu.Lock(); b.h = h; b.mu.Unlock(); return nil }
func (b *readerBroker) Subscribe(_ string, done func(error)) { done(nil) }
func (b *readerBroker) Unsubscribe(string)                   {}
func (b *readerBroker) Ready() bool                          { return true }
func (b *readerBroker) Close() error                         { return nil }
func (b *readerBroker) Publish(_ context.Context, ch string, p []byte) error {
	b.read(ch, string(p))
	return nil
}

// read delivers a message as the reader would.
func (b *readerBroker) read(ch, body string) {
	b.mu.Lock()
	h := b.h
	b.mu.Unlock()
	h(ch, []byte(body), time.Now())
}

// blockSink is a Hub sink whose first Deliver blocks until released: it
// holds up the fan-out worker of the channels it holds.
type blockSink struct {
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (s *blockSink) Deliver([]*pubsub.Message) {
	s.once.Do(func() {
		close(s.entered)
		<-s.gate
	})
}
func (s *blockSink) Gap(*pubsub.Gap) {}

// blockWorker makes the fan-out worker of channel block (publishing one
// message on it through publish) and returns the function releasing it.
func blockWorker(t *testing.T, srv *server.Server, channel string, publish func(ch, body string)) (release func()) {
	t.Helper()
	s := &blockSink{entered: make(chan struct{}), gate: make(chan struct{})}
	h := srv.Hub()
	h.Subscribe(channel, h.AddSink(s), func(error) {})
	publish(channel, fmt.Sprintf(`{"subscription":%q,"data":"block"}`, channel))
	select {
	case <-s.entered:
	case <-time.After(wait):
		t.Fatal("fan-out worker not blocked")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(s.gate) }) }
	t.Cleanup(release)
	return release
}

// sameWorker returns n channel names "demo.<prefix><i>" carried by worker w.
func sameWorker(h *pubsub.Hub, w int, prefix string, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if ch := fmt.Sprintf("demo.%s%d", prefix, i); h.Worker(ch) == w {
			out = append(out, ch)
		}
	}
	return out
}

func subscribeRaw(t *testing.T, srv *server.Server, name string) *rawConn {
	t.Helper()
	rc := open(t, srv)
	rc.send(`{"event":"subscribe","subscription":"` + name + `"}`)
	if m := rc.nextJSON(); m["status"] != "ok" {
		t.Fatalf("subscribe %s: %v", name, m)
	}
	return rc
}

func openDemo(c *cfgT) {
	no := false
	c.Services["demo"] = &config.Service{RequireAuthentication: &no}
}

// A message dropped by a full fan-out queue (read from the broker, so it
// cannot be refused) closes every session holding its channel with 1013,
// after the messages queued before the drop; a session holding another
// channel of the same worker, which lost nothing, stays open.
func TestFanoutGapClosesHolders(t *testing.T) {
	t.Parallel()
	rb := &readerBroker{}
	const maxBytes = 4000
	var scrape func() map[string]float64
	srv := startServer(t, func(c *cfgT) {
		openDemo(c)
		c.Limits.MaxFanoutQueueBytes = maxBytes
		scrape = e2e.ServeMetrics(t, c)
	}, func(o *server.Options) { o.Broker = rb })
	h := srv.Hub()
	block := "demo.block"
	w := h.Worker(block)
	chA, chB := sameWorker(h, w, "a", 1)[0], sameWorker(h, w, "b", 1)[0]
	a := subscribeRaw(t, srv, chA)
	b := subscribeRaw(t, srv, chB)

	release := blockWorker(t, srv, block, rb.read)
	rb.read(chB, `{"subscription":"`+chB+`","data":"b0"}`)
	accepted := 0
	for ; h.FanoutStats()[w].Dropped == 0; accepted++ {
		if accepted > 100_000 {
			t.Fatal("the fan-out queue took 100,000 messages: unbounded")
		}
		rb.read(chA, fmt.Sprintf(`{"subscription":%q,"data":%d}`, chA, accepted))
		if st := h.FanoutStats()[w]; st.Bytes > maxBytes {
			t.Fatalf("fan-out queue holds %d bytes, bound %d", st.Bytes, maxBytes)
		}
	}
	accepted-- // the last one was dropped
	for i := 0; i < 100; i++ {
		rb.read(chA, fmt.Sprintf(`{"subscription":%q,"data":"lost"}`, chA))
	}
	// While the worker sheds, the publish API pushes back before the
	// message reaches the broker.
	post(t, "http://"+srv.APIAddr()+"/publish", "", `{"subscription":"`+chB+`","data":"refused"}`).expectError(t, http.StatusServiceUnavailable)
	release()

	for i := 0; i < accepted; i++ {
		if m := a.nextJSON(); m["data"] != float64(i) {
			t.Fatalf("message %d before the gap: got %v", i, m)
		}
	}
	a.expectClose(1013)
	if m := b.nextJSON(); m["data"] != "b0" {
		t.Fatalf("other channel: got %v", m)
	}
	b.ping("still-open")
	if st := h.FanoutStats()[w]; st.PeakBytes > maxBytes || st.Gaps != 1 {
		t.Fatalf("fan-out stats %+v", st)
	}
	m := scrape()
	lw := fmt.Sprintf(`{worker="%d"}`, w)
	if m["mako_gap_cuts_total"] != 1 || m["mako_fanout_gaps_total"+lw] != 1 || m["mako_fanout_dropped_total"+lw] != 101 ||
		m["mako_fanout_queue_max_bytes"+lw] != maxBytes {
		t.Fatalf("metrics: %v", m)
	}
}

// POST /publish gets 503 with a reason while the fan-out queue is full:
// the message is refused, not dropped, so no session is cut, and every
// accepted message arrives in order once the worker catches up.
func TestPublishBackpressure(t *testing.T) {
	t.Parallel()
	const maxBytes = 4000
	srv := startServer(t, func(c *cfgT) {
		openDemo(c)
		c.Limits.MaxFanoutQueueBytes = maxBytes
	})
	h := srv.Hub()
	block := "demo.block"
	ch := sameWorker(h, h.Worker(block), "a", 1)[0]
	rc := subscribeRaw(t, srv, ch)
	url := "http://" + srv.APIAddr() + "/publish"
	release := blockWorker(t, srv, block, func(ch, body string) {
		if r := post(t, url, "", body); r.status != 200 {
			t.Fatalf("publish: %d %s", r.status, r.raw)
		}
	})
	accepted := 0
	for ; ; accepted++ {
		r := post(t, url, "", fmt.Sprintf(`{"subscription":%q,"data":%d}`, ch, accepted))
		if r.status == http.StatusServiceUnavailable {
			r.expectError(t, http.StatusServiceUnavailable)
			break
		}
		if r.status != 200 {
			t.Fatalf("publish %d: %d %s", accepted, r.status, r.raw)
		}
		if accepted > 10_000 {
			t.Fatal("10,000 publishes accepted by a blocked worker: no backpressure")
		}
	}
	release()
	for i := 0; i < accepted; i++ {
		if m := rc.nextJSON(); m["data"] != float64(i) {
			t.Fatalf("message %d: got %v", i, m)
		}
	}
	rc.ping("open") // nothing was lost, so nobody was cut
	if st := h.FanoutStats()[h.Worker(ch)]; st.Refused == 0 || st.Dropped != 0 || st.Gaps != 0 {
		t.Fatalf("fan-out stats %+v", st)
	}
}

// 100,000 messages with distinct throttle and order keys leave a bounded
// state on the subscription: with windows ending (fake clock), idle keys
// are forgotten as they end; with windows that never end, the caps hold.
func TestKeyStateBounded(t *testing.T) {
	t.Parallel()
	const n, batch = 100_000, 2_000
	tests := []struct {
		name      string
		throttle  string        // options.throttle, seconds
		step      time.Duration // fake clock advance per batch
		maxKeys   int           // limits.max_throttle_keys and max_order_keys
		bound     int           // most throttle keys on the subscription
		orderCap  int
		keysAtEnd int
	}{
		{"windows ending, no cap in reach", "1", time.Second, 1 << 30, 2 * batch, 1 << 30, 1},
		{"windows never ending, capped", "3600", time.Second, 1000, 1000, 1000, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := e2e.NewFakeClock()
			var scrape func() map[string]float64
			srv := startServer(t, func(c *cfgT) {
				openDemo(c)
				scrape = e2e.ServeMetrics(t, c)
				c.Limits.MaxThrottleKeys, c.Limits.MaxOrderKeys = tt.maxKeys, tt.maxKeys
			}, oneLoop, func(o *server.Options) { o.Clock, o.ManualTimers = clock, true })
			rc := subscribeRaw(t, srv, "demo.keys")
			h := srv.Hub()
			ctx := context.Background()
			peak, peakOrder := 0, 0
			for sent := 0; sent < n; {
				for i := 0; i < batch; i, sent = i+1, sent+1 {
					body := fmt.Sprintf(`{"subscription":"demo.keys","data":%d,"options":{"throttle":%s,"throttle_key":"t%d","order":1,"order_key":"o%d"}}`,
						sent, tt.throttle, sent, sent)
					if err := h.Publish(ctx, "demo.keys", []byte(body)); err != nil {
						t.Fatalf("publish %d: %v", sent, err)
					}
				}
				// Every key is new: every message goes out at once, in order.
				for i := sent - batch; i < sent; i++ {
					f := rc.next()
					if want := fmt.Sprintf(`"data":%d,`, i); !bytes.Contains(f.payload, []byte(want)) {
						t.Fatalf("message %d: got %s", i, f.payload)
					}
				}
				st, err := srv.Stats(ctx)
				if err != nil {
					t.Fatal(err)
				}
				peak, peakOrder = max(peak, st.MaxThrottleKeys), max(peakOrder, st.MaxOrderKeys)
				e2e.Tick(t, srv, clock, tt.step)
			}
			if peak > tt.bound || peakOrder > tt.orderCap {
				t.Fatalf("subscription held up to %d throttle keys (bound %d) and %d order keys (cap %d)", peak, tt.bound, peakOrder, tt.orderCap)
			}
			// One more message after the windows ended: only live keys remain.
			e2e.Tick(t, srv, clock, time.Hour)
			if err := h.Publish(ctx, "demo.keys", []byte(`{"subscription":"demo.keys","data":"last","options":{"throttle":1,"throttle_key":"last"}}`)); err != nil {
				t.Fatal(err)
			}
			rc.next()
			st, err := srv.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.ThrottleKeys > tt.keysAtEnd || st.ThrottleTimers != 0 {
				t.Fatalf("after every window ended: %d throttle keys, %d timers", st.ThrottleKeys, st.ThrottleTimers)
			}
			t.Logf("peak per subscription: %d throttle keys, %d order keys; at the end %d throttle keys, %d order keys",
				peak, peakOrder, st.ThrottleKeys, st.OrderKeys)
			// The gauges, kept by deltas on the loops, agree with the walk.
			m := scrape()
			if m["mako_throttle_keys"] != float64(st.ThrottleKeys) || m["mako_order_keys"] != float64(st.OrderKeys) {
				t.Fatalf("gauges: throttle %v order %v, stats %d %d", m["mako_throttle_keys"], m["mako_order_keys"], st.ThrottleKeys, st.OrderKeys)
			}
			rc.c.Close()
			for st.Sessions > 0 {
				e2e.Tick(t, srv, clock, 0) // a loop round trip: the close is an event on the loop, not one the test can await
				if st, err = srv.Stats(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if m := scrape(); m["mako_throttle_keys"] != 0 || m["mako_order_keys"] != 0 {
				t.Fatalf("gauges after the session closed: throttle %v order %v", m["mako_throttle_keys"], m["mako_order_keys"])
			}
		})
	}
}
