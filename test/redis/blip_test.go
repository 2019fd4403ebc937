package redis

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/internal/redistest"
	"mako/server"
)

// blipRig is mako on a real Redis with on_loss: drain, on one loop and a
// fake clock (the ticker runs, but the grace and the drain move only when
// the test advances the clock), with n clients subscribed to demo.b.
type blipRig struct {
	t       *testing.T
	rs      *redistest.Server
	srv     *server.Server
	clock   *e2e.FakeClock
	port    int // Prometheus
	clients []*e2e.Client
}

func newBlipRig(t *testing.T, n int, grace, window time.Duration, mods ...func(*config.Config)) *blipRig {
	t.Helper()
	r := &blipRig{t: t, rs: redistest.Start(t), clock: e2e.NewFakeClock(), port: freePort(t)}
	rc := redisConfig(r.rs.Addr(), "")
	rc.LossGrace = config.Seconds(grace.Seconds())
	rc.DrainWindow = config.Seconds(window.Seconds())
	// The kill is seen from the closed connection; without pings a slow
	// (race-instrumented, loaded) test machine cannot fake an outage.
	rc.PingInterval = 0
	cfg := openConfig(rc)
	cfg.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: r.port}
	for _, m := range mods {
		m(cfg)
	}
	r.srv = e2e.StartServer(t, cfg, func(o *server.Options) { o.Clock, o.Loops = r.clock, 1 })
	for range n {
		c := e2e.Dial(t, r.srv)
		subscribe(t, c, "demo.b")
		r.clients = append(r.clients, c)
	}
	return r
}

func (r *blipRig) stats() server.Stats {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	st, err := r.srv.Stats(ctx)
	if err != nil {
		r.t.Fatalf("stats: %v", err)
	}
	return st
}

// lose kills Redis and waits until the loss is applied: the loop holds the
// drain's timer (sessions hold none: pings are off), so the grace counts
// from the fake instant of the loss.
func (r *blipRig) lose() {
	r.t.Helper()
	r.rs.Kill()
	redistest.Eventually(r.t, e2e.Timeout, "drain armed on the loop", func() bool { return r.stats().Timers == 1 })
}

// restore restarts Redis and waits until mako has counted the gap (its
// channels are resubscribed by then) and the loop dropped the drain.
func (r *blipRig) restore() {
	r.t.Helper()
	r.rs.Restart()
	redistest.Eventually(r.t, e2e.Timeout, "gap counted", func() bool { return r.metric("mako_redis_gaps_total") == 1 })
	redistest.Eventually(r.t, e2e.Timeout, "drain stopped", func() bool { return r.stats().Timers == 0 })
}

// advance lets d pass on the fake clock and runs whatever is due.
func (r *blipRig) advance(d time.Duration) {
	r.t.Helper()
	r.clock.Advance(d)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	if err := r.srv.RunTimers(ctx); err != nil {
		r.t.Fatalf("running timers: %v", err)
	}
}

// deliveries publishes one message through Redis and sorts the clients:
// each either receives it or is found closed with 1012. It returns the
// number of each.
func (r *blipRig) deliveries(data string) (got, drained int) {
	r.t.Helper()
	r.rs.MustDo("PUBLISH", "demo.b", `{"subscription":"demo.b","data":"`+data+`"}`)
	for i, c := range r.clients {
		m, code := c.Next()
		switch {
		case m == nil && code == 1012:
			drained++
		case m == nil:
			r.t.Fatalf("client %d closed with %d", i, code)
		case m["event"] == "message" && m["data"] == data:
			got++
		default:
			r.t.Fatalf("client %d: got %v, want data %s", i, m, data)
		}
	}
	return got, drained
}

func (r *blipRig) metric(name string) float64 {
	r.t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(r.port) + "/metrics")
	if err != nil {
		r.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.t.Fatalf("metric %s: %q", name, v)
			}
			return f
		}
	}
	r.t.Fatalf("metric %s missing", name)
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A Redis restart shorter than redis.loss_grace closes nobody: once every
// channel is resubscribed the armed drain is dropped, so even long after the
// grace every client is still open and receives what is published after
// the recovery. The gap is counted.
func TestRedisBlipWithinGrace(t *testing.T) {
	const n = 20
	r := newBlipRig(t, n, 5*time.Second, 10*time.Second)
	r.lose()
	r.advance(5*time.Second - time.Millisecond)
	r.restore()
	r.advance(time.Hour) // far past the grace and any drain window
	if got, drained := r.deliveries("after"); got != n || drained != 0 {
		t.Fatalf("after a blip within the grace: %d delivered, %d drained; want %d, 0", got, drained, n)
	}
	if st := r.stats(); st.Connections != n {
		t.Fatalf("%d connections open, want %d", st.Connections, n)
	}
	if g, s, d := r.metric("mako_redis_gaps_total"), r.metric("mako_redis_gap_seconds_total"), r.metric("mako_redis_drain_closed_total"); g != 1 || s != seconds(5*time.Second-time.Millisecond) || d != 0 {
		t.Fatalf("gaps %v, gap seconds %v, drain closed %v; want 1, 4.999, 0", g, s, d)
	}
}

// An outage longer than the grace starts the drain; Redis returning in the
// middle stops it: the sessions it already closed got 1012, the others stay
// open, resubscribed, and receive new messages. The wall clock is also set
// back an hour meanwhile, which must not move the drain's steps.
func TestRedisBackMidDrain(t *testing.T) {
	const n = 20
	const grace, window = time.Second, 100 * time.Second
	r := newBlipRig(t, n, grace, window)
	r.lose()
	r.clock.StepWall(-time.Hour)
	r.advance(grace - time.Millisecond)
	if st := r.stats(); st.Connections != n {
		t.Fatalf("%d connections open within the grace, want %d", st.Connections, n)
	}
	// A quarter of the window: a quarter of the sessions are closed.
	r.advance(window/4 + time.Millisecond)
	redistest.Eventually(t, e2e.Timeout, "a quarter drained", func() bool { return r.stats().Connections == n-n/4 })
	r.restore()
	r.advance(2 * window)
	got, drained := r.deliveries("back")
	if got != n-n/4 || drained != n/4 {
		t.Fatalf("%d delivered, %d drained; want %d, %d", got, drained, n-n/4, n/4)
	}
	want := seconds(grace + window/4)
	if g, s, d := r.metric("mako_redis_gaps_total"), r.metric("mako_redis_gap_seconds_total"), r.metric("mako_redis_drain_closed_total"); g != 1 || s != want || d != n/4 {
		t.Fatalf("gaps %v, gap seconds %v, drain closed %v; want 1, %v, %d", g, s, d, want, n/4)
	}
}

// seconds is d as the metric writes it.
func seconds(d time.Duration) float64 { return float64(d) / 1e9 }

// Drain steps are timers on the monotonic reading: with the wall clock set
// back an hour after the loss, half the window of elapsed time still closes
// half the sessions.
func TestDrainWallClockStepBack(t *testing.T) {
	const n = 20
	const window = 100 * time.Second
	r := newBlipRig(t, n, 0, window)
	r.lose()
	r.clock.StepWall(-time.Hour)
	r.advance(window / 2)
	redistest.Eventually(t, e2e.Timeout, "half drained", func() bool { return r.stats().Connections == n/2 })
	r.clock.StepWall(-time.Hour)
	r.advance(window / 2)
	redistest.Eventually(t, e2e.Timeout, "all drained", func() bool { return r.stats().Connections == 0 })
}

// With redis_alt, the primary decides loss and recovery: a blip of the
// primary within the grace closes nobody, and afterwards messages arrive
// through both servers; losing the alternate is no outage at all.
func TestRedisBlipWithAlt(t *testing.T) {
	const n = 5
	alt := redistest.Start(t)
	r := newBlipRig(t, n, 5*time.Second, 10*time.Second, func(c *config.Config) {
		c.RedisAlt = redisConfig(alt.Addr(), "alt:")
		c.RedisAlt.PingInterval = 0
	})
	redistest.Eventually(t, e2e.Timeout, "alt subscribed", func() bool { return numsub(alt, "alt:demo.b") == 1 })
	r.lose()
	r.advance(5*time.Second - time.Millisecond)
	r.restore()
	r.advance(time.Hour)
	if got, drained := r.deliveries("primary"); got != n || drained != 0 {
		t.Fatalf("%d delivered, %d drained; want %d, 0", got, drained, n)
	}
	alt.MustDo("PUBLISH", "alt:demo.b", `{"subscription":"demo.b","data":"alt"}`)
	for _, c := range r.clients {
		expectData(t, c, "alt")
	}
	alt.Kill()
	alt.Restart()
	redistest.Eventually(t, e2e.Timeout, "alt resubscribed", func() bool { return numsub(alt, "alt:demo.b") == 1 })
	if got, drained := r.deliveries("still"); got != n || drained != 0 || r.metric("mako_redis_gaps_total") != 1 {
		t.Fatalf("after losing the alternate: %d delivered, %d drained, gaps %v", got, drained, r.metric("mako_redis_gaps_total"))
	}
}
