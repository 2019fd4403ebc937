// Package chaos runs mako through the failures an edge tier meets at once —
// a reconnect storm, a misbehaving service, a consumer that reads nothing and
// a Redis crash — and accounts for every message: each live subscriber must
// receive, in order and once, every number published while it was
// subscribed and Redis delivered to mako.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
	"mako/internal/redistest"
)

const (
	channels = 20
	clients  = 2000
	// pubEvery paces the publisher: 20 channels × 100 subscribers each at
	// one message per channel every 100 ms is 20,000 deliveries/s, enough
	// to keep every loop busy under the race detector without saturating
	// the 2-core machine the test must run on.
	pubEvery = 5 * time.Millisecond
)

func TestChaosDrain(t *testing.T)       { runChaos(t, "drain") }
func TestChaosResubscribe(t *testing.T) { runChaos(t, "resubscribe") }

// publisher numbers the messages of each channel and remembers which were
// accepted: PUBLISH answered with at least one receiver, i.e. Redis handed
// the message to mako's subscriber connection. epoch is bumped before each
// PUBLISH starts, so a client that read epoch e when its subscription was
// confirmed must receive every accepted message whose epoch is above e.
type publisher struct {
	rs    *redistest.Server
	epoch atomic.Int64

	mu       sync.Mutex
	accepted [channels][]pubRecord
	next     [channels]int
	failed   int // PUBLISH errors (Redis down)
	unheard  int // PUBLISH with no receiver (mako not yet resubscribed)
}

type pubRecord struct {
	n     int
	epoch int64
}

func (p *publisher) publishOne(ch int, pad string) {
	p.mu.Lock()
	n := p.next[ch]
	p.next[ch]++
	p.mu.Unlock()
	e := p.epoch.Add(1)
	body := fmt.Sprintf(`{"subscription":"chaos.c%d","data":{"n":%d,"pad":%q}}`, ch, n, pad)
	r, err := p.rs.Do("PUBLISH", fmt.Sprintf("chaos.c%d", ch), body)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch k, _ := r.(int64); {
	case err != nil:
		p.failed++
	case k < 1:
		p.unheard++
	default:
		p.accepted[ch] = append(p.accepted[ch], pubRecord{n: n, epoch: e})
	}
}

func (p *publisher) lastAccepted(ch int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accepted[ch]
	if len(a) == 0 {
		return -1
	}
	return a[len(a)-1].n
}

// period is one subscription of one client, from its confirmation to the
// close of its connection (or the end of the test).
type period struct {
	ch       int
	okEpoch  int64
	got      []int
	closedBy websocket.StatusCode // 0 while open or when the client closed it
	ended    bool
}

type client struct {
	id  int
	ch  int
	url string

	mu      sync.Mutex
	periods []*period
	conn    *websocket.Conn
}

func (c *client) current() *period {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.periods) == 0 {
		return nil
	}
	return c.periods[len(c.periods)-1]
}

// connect dials and subscribes until it succeeds or ctx ends: upgrades get
// 503 while Redis is lost, and the authorizer fails on purpose.
func (c *client) connect(ctx context.Context, p *publisher, t *testing.T) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, e2e.Timeout)
		conn, _, err := websocket.Dial(dctx, c.url, nil)
		cancel()
		if err != nil {
			time.Sleep(20 * time.Millisecond) // reconnect back-off, not synchronisation
			continue
		}
		conn.SetReadLimit(-1)
		if c.subscribe(ctx, conn, p) {
			return
		}
		_ = conn.CloseNow()
	}
}

func (c *client) subscribe(ctx context.Context, conn *websocket.Conn, p *publisher) bool {
	sub := fmt.Sprintf(`{"event":"subscribe","subscription":"chaos.c%d"}`, c.ch)
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, e2e.Timeout)
		err := conn.Write(wctx, websocket.MessageText, []byte(sub))
		cancel()
		if err != nil {
			return false
		}
		// Messages can precede the reply only for an earlier subscription,
		// which this connection does not have.
		rctx, cancel := context.WithTimeout(ctx, 3*e2e.Timeout)
		_, b, err := conn.Read(rctx)
		cancel()
		if err != nil {
			return false
		}
		var m struct {
			Event, Status, Error string
		}
		_ = json.Unmarshal(b, &m)
		if m.Event == "subscribe" && m.Status == "ok" {
			pd := &period{ch: c.ch, okEpoch: p.epoch.Load()}
			c.mu.Lock()
			c.periods = append(c.periods, pd)
			c.conn = conn
			c.mu.Unlock()
			go c.read(conn, pd)
			return true
		}
		// Service unavailable. after the authorizer's failures: try again.
	}
	return false
}

func (c *client) read(conn *websocket.Conn, pd *period) {
	for {
		_, b, err := conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			pd.ended = true
			pd.closedBy = websocket.CloseStatus(err)
			c.mu.Unlock()
			return
		}
		var m struct {
			Event string
			Data  struct{ N int }
		}
		if json.Unmarshal(b, &m) != nil || m.Event != "message" {
			continue
		}
		c.mu.Lock()
		pd.got = append(pd.got, m.Data.N)
		c.mu.Unlock()
	}
}

// chaoticAuthorizer times out, answers 500 and answers 429 with a reset
// header, each on a fixed share of requests, and allows the rest.
func chaoticAuthorizer(t *testing.T, timeout time.Duration) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch n.Add(1) % 10 {
		case 3:
			select { // past http.timeout: mako gives up on this try
			case <-r.Context().Done():
			case <-time.After(2 * timeout):
			}
			return
		case 5:
			w.WriteHeader(500)
			return
		case 7:
			w.Header().Set("X-Rate-Limit-Reset", "0.05")
			w.WriteHeader(429)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// slowConsumer upgrades, subscribes to every channel and to open.slow (a
// channel of large messages only it holds, with no authorizer, so that it
// surely falls behind whatever the load) and never reads.
func slowConsumer(t *testing.T, addr string) net.Conn {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	var b strings.Builder
	b.WriteString(req)
	b.Write(maskedText(`{"event":"subscribe","subscription":"open.slow"}`))
	for ch := range channels {
		b.Write(maskedText(fmt.Sprintf(`{"event":"subscribe","subscription":"chaos.c%d"}`, ch)))
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return conn
}

func maskedText(s string) []byte {
	p := []byte(s)
	f := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	}
	key := []byte{1, 2, 3, 4}
	f = append(f, key...)
	for i, c := range p {
		f = append(f, c^key[i%4])
	}
	return f
}

func runChaos(t *testing.T, policy string) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short")
	}
	rs := redistest.Start(t)
	const svcTimeout = 300 * time.Millisecond
	authz := chaoticAuthorizer(t, svcTimeout)

	cfg := e2e.Config()
	cfg.Redis = &config.Redis{
		URL: "redis://" + rs.Addr() + "/0", Host: "localhost", Port: 6379,
		// No Redis pings: a killed Redis closes its sockets, and on a
		// loaded 2-core machine a 0.2 s ping timeout reports outages that
		// never happened (which the drain then acts on).
		// ping_timeout is also the dial timeout of a reconnect.
		PingInterval: 0, PingTimeout: 2,
		OnLoss: policy, DrainWindow: 5,
		LossGrace: 5, // the outage below is shorter: nobody is drained
	}
	cfg.HTTP.Tries = 3
	cfg.HTTP.Wait = 0.01
	cfg.HTTP.Timeout = config.Seconds(svcTimeout.Seconds())
	cfg.WS.MaxOutboundBytes = 128 << 10
	no := false
	cfg.Services["chaos"] = &config.Service{RequireAuthentication: &no, Authorizer: authz.URL + "/authorize"}
	cfg.Services["open"] = &config.Service{RequireAuthentication: &no}
	scrape := e2e.ServeMetrics(t, cfg)
	srv := e2e.StartServer(t, cfg)

	p := &publisher{rs: rs}
	// Bounds a hang, not the run (about 10 s per policy on an idle 2-core
	// machine).
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()

	cs := make([]*client, clients)
	var wg sync.WaitGroup
	for i := range cs {
		cs[i] = &client{id: i, ch: i % channels, url: "ws://" + srv.Addr()}
		wg.Add(1)
		go func() { defer wg.Done(); cs[i].connect(ctx, p, t) }()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("clients could not all subscribe")
	}

	pad := strings.Repeat("x", 512)
	slowBody := fmt.Sprintf(`{"subscription":"open.slow","data":%q}`, strings.Repeat("s", 32<<10))
	pubStop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tk := time.NewTicker(pubEvery)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-pubStop:
				return
			case <-tk.C:
			}
			p.publishOne(i%channels, pad)
			if i%channels == 0 {
				// 32 KiB for the slow consumer alone: past its cap plus
				// what the kernel holds for it within a few seconds.
				_, _ = p.rs.Do("PUBLISH", "open.slow", slowBody)
			}
		}
	}()

	slow := slowConsumer(t, srv.Addr())

	// (a) the reconnect storm: every client drops its connection and comes
	// back at once.
	time.Sleep(time.Second) // let the stream run before the storm (pacing, not synchronisation)
	for _, c := range cs {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		_ = conn.CloseNow()
	}
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.connect(ctx, p, t) }()
	}
	wg.Wait()

	// (d) Redis crashes and comes back within the grace.
	time.Sleep(time.Second)
	rs.Kill()
	time.Sleep(500 * time.Millisecond)
	rs.Restart()
	redistest.Eventually(t, e2e.Timeout, "mako resubscribed to every channel", func() bool {
		return len(rs.Strings("PUBSUB", "CHANNELS", "chaos.*")) == channels
	})
	time.Sleep(time.Second)
	close(pubStop)
	<-pubDone

	// Every live client catches up to the last accepted number of its
	// channel; then the accounting.
	for ch := range channels {
		last := p.lastAccepted(ch)
		for _, c := range cs {
			if c.ch != ch {
				continue
			}
			redistest.Eventually(t, e2e.Timeout, fmt.Sprintf("client %d caught up", c.id), func() bool {
				pd := c.current()
				c.mu.Lock()
				defer c.mu.Unlock()
				return pd.ended || (len(pd.got) > 0 && pd.got[len(pd.got)-1] >= last)
			})
		}
	}
	var delivered, expected int
	p.mu.Lock()
	accepted := p.accepted
	t.Logf("policy %s: published %d channels, %d PUBLISH failed (Redis down), %d unheard (mako resubscribing)", policy, channels, p.failed, p.unheard)
	p.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		for pi, pd := range c.periods {
			for i := 1; i < len(pd.got); i++ {
				if pd.got[i] <= pd.got[i-1] {
					t.Errorf("client %d period %d: %d after %d (out of order or duplicate)", c.id, pi, pd.got[i], pd.got[i-1])
					break
				}
			}
			last := pi == len(c.periods)-1
			if !last {
				continue // ended by the storm: order only
			}
			if pd.ended {
				t.Errorf("client %d was closed (%d): only the slow consumer may be cut", c.id, pd.closedBy)
				continue
			}
			have := make(map[int]bool, len(pd.got))
			for _, n := range pd.got {
				have[n] = true
			}
			for _, r := range accepted[pd.ch] {
				if r.epoch <= pd.okEpoch {
					continue
				}
				expected++
				if have[r.n] {
					delivered++
				} else if expected-delivered <= 5 {
					t.Errorf("client %d (chaos.c%d) missed message %d", c.id, pd.ch, r.n)
				}
			}
		}
		c.mu.Unlock()
	}
	t.Logf("policy %s: delivered %d of %d expected deliveries", policy, delivered, expected)
	if delivered != expected || expected == 0 {
		t.Fatalf("delivered %d of %d expected", delivered, expected)
	}

	// (c) only the slow consumer was cut: its socket ends, and it is the
	// one cut the server counted; nobody lost messages to an overload.
	_ = slow.SetReadDeadline(time.Now().Add(e2e.Timeout))
	if _, err := io.Copy(io.Discard, slow); err != nil && isTimeout(err) {
		t.Fatalf("the slow consumer was not cut: %v", err)
	}
	m := scrape()
	for name, want := range map[string]float64{
		`mako_cuts_total{cause="slow_consumer"}`: 1,
		`mako_cuts_total{cause="inbound"}`:       0,
		"mako_loop_backlog_cuts_total":           0,
		"mako_gap_cuts_total":                    0,
		"mako_redis_drain_closed_total":          0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if m["mako_redis_gaps_total"] < 1 {
		t.Errorf("mako_redis_gaps_total = %v: the Redis crash was not counted", m["mako_redis_gaps_total"])
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
