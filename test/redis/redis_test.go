// Package redis tests mako end to end against real redis-server processes:
// publishing through Redis, the provisional window, redis_alt, several
// nodes on one Redis, and both loss policies.
package redis

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
	"mako/internal/redistest"
	"mako/server"
)

func redisConfig(addr, prefix string) *config.Redis {
	return &config.Redis{
		URL: "redis://" + addr + "/0", Host: "localhost", Port: 6379,
		ChannelPrefix: prefix, PingInterval: 0.2, PingTimeout: 0.2,
		OnLoss: "drain", DrainWindow: 0,
	}
}

func openConfig(r *config.Redis) *config.Config {
	cfg := e2e.Config()
	cfg.Redis = r
	f := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &f}
	return cfg
}

func subscribe(t *testing.T, c *e2e.Client, name string) {
	t.Helper()
	if m := c.Roundtrip(fmt.Sprintf(`{"event":"subscribe","subscription":%q}`, name)); m["status"] != "ok" {
		t.Fatalf("subscribe %s: %v", name, m)
	}
}

func expectData(t *testing.T, c *e2e.Client, want string) map[string]any {
	t.Helper()
	m := c.Recv()
	if m["event"] != "message" || fmt.Sprint(m["data"]) != want {
		t.Fatalf("got %v, want a message with data %s", m, want)
	}
	return m
}

func TestRedisPublishWithPrefix(t *testing.T) {
	rs := redistest.Start(t)
	srv := e2e.StartServer(t, openConfig(redisConfig(rs.Addr(), "pfx:")))
	c := e2e.Dial(t, srv)
	subscribe(t, c, "demo.a")
	redistest.Eventually(t, e2e.Timeout, "mako subscribed to pfx:demo.a", func() bool {
		return numsub(rs, "pfx:demo.a") == 1
	})
	rs.MustDo("PUBLISH", "pfx:demo.a", `{"subscription":"demo.a","data":"one"}`)
	m := expectData(t, c, "one")
	if _, ok := m["received_at"]; !ok {
		t.Fatalf("a live message carries received_at: %v", m)
	}
	// The prefix-less channel is not ours.
	rs.MustDo("PUBLISH", "demo.a", `{"subscription":"demo.a","data":"wrong"}`)
	rs.MustDo("PUBLISH", "pfx:demo.a", `{"subscription":"demo.a","data":"two"}`)
	expectData(t, c, "two")

	if m := c.Roundtrip(`{"event":"unsubscribe","subscription":"demo.a"}`); m["status"] != "ok" {
		t.Fatalf("unsubscribe: %v", m)
	}
	redistest.Eventually(t, e2e.Timeout, "pfx:demo.a released", func() bool {
		return numsub(rs, "pfx:demo.a") == 0
	})
}

func numsub(rs *redistest.Server, ch string) int64 {
	v, err := rs.Do("PUBSUB", "NUMSUB", ch)
	if err != nil {
		return -1
	}
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return -1
	}
	n, _ := a[1].(int64)
	return n
}

// TestRedisProvisionalWindow publishes between the authorizer and the end
// of before_subscribe: the messages arrive after the ok, in order, with
// sent_at only.
func TestRedisProvisionalWindow(t *testing.T) {
	rs := redistest.Start(t)
	svc := e2e.NewService(t)
	release, called := make(chan struct{}), make(chan struct{}, 1)
	svc.ReplyFunc("/before", func(c e2e.Call) (int, string) {
		if c.Body["block"] == true {
			called <- struct{}{}
			select {
			case <-release:
			case <-time.After(e2e.Timeout):
			}
		}
		return 200, `{"status":"ok"}`
	})
	cfg := openConfig(redisConfig(rs.Addr(), ""))
	f := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &f, BeforeSubscribe: svc.URL("/before"), ExtraFields: []string{"block"}}
	// One loop: once the observer has a message, the pending session on
	// the same loop has been offered it too.
	srv := e2e.StartServer(t, cfg, func(o *server.Options) { o.Loops = 1 })
	obs := e2e.Dial(t, srv)
	subscribe(t, obs, "demo.p")
	c := e2e.Dial(t, srv)
	c.Send(`{"event":"subscribe","subscription":"demo.p","block":true}`)
	select {
	case <-called:
	case <-time.After(e2e.Timeout):
		t.Fatal("before_subscribe not called")
	}
	for i := 1; i <= 3; i++ {
		rs.MustDo("PUBLISH", "demo.p", fmt.Sprintf(`{"subscription":"demo.p","data":%d}`, i))
	}
	for i := 1; i <= 3; i++ {
		expectData(t, obs, fmt.Sprint(i))
	}
	close(release)
	if m := c.Recv(); m["event"] != "subscribe" || m["status"] != "ok" {
		t.Fatalf("first frame must be the ok reply, got %v", m)
	}
	for i := 1; i <= 3; i++ {
		m := expectData(t, c, fmt.Sprint(i))
		if _, ok := m["received_at"]; ok {
			t.Fatalf("a held message carries only sent_at: %v", m)
		}
		if _, ok := m["sent_at"]; !ok || m["block"] != true {
			t.Fatalf("a held message carries sent_at and the extra field: %v", m)
		}
	}
}

// TestRedisSubscribeAckBeforeCallback: before_subscribe runs only once Redis
// has acknowledged the SUBSCRIBE.
func TestRedisSubscribeAckBeforeCallback(t *testing.T) {
	rs := redistest.Start(t)
	svc := e2e.NewService(t)
	seen := make(chan int64, 1)
	svc.ReplyFunc("/before", func(e2e.Call) (int, string) {
		seen <- numsub(rs, "demo.ack")
		return 200, `{"status":"ok"}`
	})
	cfg := openConfig(redisConfig(rs.Addr(), ""))
	f := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &f, BeforeSubscribe: svc.URL("/before")}
	srv := e2e.StartServer(t, cfg)
	c := e2e.Dial(t, srv)
	subscribe(t, c, "demo.ack")
	if n := <-seen; n != 1 {
		t.Fatalf("before_subscribe saw NUMSUB %d, want 1", n)
	}
}

func TestRedisAlt(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	cfg := openConfig(redisConfig(a.Addr(), "a:"))
	cfg.RedisAlt = redisConfig(b.Addr(), "b:")
	srv := e2e.StartServer(t, cfg)
	c := e2e.Dial(t, srv)
	subscribe(t, c, "demo.m")
	redistest.Eventually(t, e2e.Timeout, "both servers subscribed", func() bool {
		return numsub(a, "a:demo.m") == 1 && numsub(b, "b:demo.m") == 1
	})
	a.MustDo("PUBLISH", "a:demo.m", `{"subscription":"demo.m","data":"from-a"}`)
	expectData(t, c, "from-a")
	b.MustDo("PUBLISH", "b:demo.m", `{"subscription":"demo.m","data":"from-b"}`)
	expectData(t, c, "from-b")
}

// TestTwoNodes: a message posted to node 2's API reaches a client on node 1.
func TestTwoNodes(t *testing.T) {
	rs := redistest.Start(t)
	n1 := e2e.StartServer(t, openConfig(redisConfig(rs.Addr(), "")))
	n2 := e2e.StartServer(t, openConfig(redisConfig(rs.Addr(), "")))
	c := e2e.Dial(t, n1)
	subscribe(t, c, "demo.x")
	redistest.Eventually(t, e2e.Timeout, "node 1 subscribed", func() bool { return numsub(rs, "demo.x") == 1 })
	e2e.Publish(t, n2, `{"subscription":"demo.x","data":"via-node-2"}`)
	expectData(t, c, "via-node-2")
}

// TestDrainOnLoss kills Redis under 1,000 clients: readiness goes false, new
// upgrades get 503, and every client is closed with 1012, spread over the
// drain window rather than at once.
func TestDrainOnLoss(t *testing.T) {
	rs := redistest.Start(t)
	r := redisConfig(rs.Addr(), "")
	r.DrainWindow = 2
	srv := e2e.StartServer(t, openConfig(r))
	const n = 1000
	clients := make([]*e2e.Client, n)
	for i := range clients {
		clients[i] = e2e.Dial(t, srv)
		clients[i].Send(`{"event":"subscribe","subscription":"demo.d"}`)
	}
	for _, c := range clients {
		if m := c.Recv(); m["status"] != "ok" {
			t.Fatalf("subscribe: %v", m)
		}
	}
	lost := time.Now()
	rs.Kill()
	type closed struct {
		at   time.Duration
		code websocket.StatusCode
	}
	results := make([]closed, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := c.Closed()
			results[i] = closed{time.Since(lost), code}
		}()
	}
	redistest.Eventually(t, e2e.Timeout, "readyz 503", func() bool { return status(srv, "/readyz") == 503 })
	if s := status(srv, "/healthz"); s != 200 {
		t.Fatalf("healthz = %d while Redis is lost; the process is alive", s)
	}
	wg.Wait()
	times := make([]time.Duration, n)
	for i, r := range results {
		if r.code != 1012 {
			t.Fatalf("client %d closed with %d, want 1012", i, r.code)
		}
		times[i] = r.at
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	// Spread, not a storm: the middle half of the closes takes a fair share
	// of the 2 s window (at once it would be a few milliseconds).
	if spread := times[3*n/4] - times[n/4]; spread < 500*time.Millisecond {
		t.Fatalf("closes not spread over the window: quartiles at %v and %v", times[n/4], times[3*n/4])
	}
	resp := upgradeStatus(t, srv)
	if resp != 503 {
		t.Fatalf("upgrade while Redis is lost: %d, want 503", resp)
	}
	// Back: ready again, and new sessions work.
	rs.Restart()
	redistest.Eventually(t, e2e.Timeout, "readyz 200 after Redis returns", func() bool { return status(srv, "/readyz") == 200 })
	c := e2e.Dial(t, srv)
	subscribe(t, c, "demo.d")
	redistest.Eventually(t, e2e.Timeout, "resubscribed", func() bool { return numsub(rs, "demo.d") == 1 })
	rs.MustDo("PUBLISH", "demo.d", `{"subscription":"demo.d","data":"back"}`)
	expectData(t, c, "back")
}

// TestResubscribeOnLoss keeps sessions through a Redis restart and
// resubscribes every live channel.
func TestResubscribeOnLoss(t *testing.T) {
	rs := redistest.Start(t)
	r := redisConfig(rs.Addr(), "")
	r.OnLoss = "resubscribe"
	srv := e2e.StartServer(t, openConfig(r))
	c := e2e.Dial(t, srv)
	const channels = 50
	for i := 0; i < channels; i++ {
		subscribe(t, c, fmt.Sprintf("demo.r%d", i))
	}
	rs.Kill()
	redistest.Eventually(t, e2e.Timeout, "readyz 503", func() bool { return status(srv, "/readyz") == 503 })
	rs.Restart()
	redistest.Eventually(t, e2e.Timeout, "every channel subscribed again", func() bool {
		chans := rs.Strings("PUBSUB", "CHANNELS", "demo.r*")
		return len(chans) == channels
	})
	for i := 0; i < channels; i++ {
		rs.MustDo("PUBLISH", fmt.Sprintf("demo.r%d", i), fmt.Sprintf(`{"subscription":"demo.r%d","data":%d}`, i, i))
	}
	got := map[string]bool{}
	for i := 0; i < channels; i++ {
		m := c.Recv()
		got[fmt.Sprint(m["data"])] = true
	}
	if len(got) != channels {
		t.Fatalf("received %d distinct messages, want %d", len(got), channels)
	}
	c.Quiet() // the session survived the outage
}

func status(srv *server.Server, path string) int {
	resp, err := http.Get("http://" + srv.APIAddr() + path)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

func upgradeStatus(t *testing.T, srv *server.Server) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "refused") {
			return 503
		}
		t.Fatalf("upgrade: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestClusterShardedTwoNodes runs two mako nodes on a 3-master Redis Cluster
// in sharded mode: clients on node 1 hold channels owned by every master,
// and messages posted to node 2's API (SPUBLISH) reach them all.
func TestClusterShardedTwoNodes(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0)
	rc := func() *config.Redis {
		r := redisConfig("", "")
		r.URL, r.Cluster, r.Sharded, r.Addrs = "", true, true, cl.Addrs()
		return r
	}
	n1 := e2e.StartServer(t, openConfig(rc()))
	n2 := e2e.StartServer(t, openConfig(rc()))
	c := e2e.Dial(t, n1)
	owners := map[string]bool{}
	const channels = 30
	for i := 0; i < channels; i++ {
		name := fmt.Sprintf("demo.s%d", i)
		subscribe(t, c, name)
		owners[cl.Owner(cl.Slot(name)).Addr()] = true
	}
	if len(owners) != 3 {
		t.Fatalf("channels cover %d masters, want 3", len(owners))
	}
	for i := 0; i < channels; i++ {
		e2e.Publish(t, n2, fmt.Sprintf(`{"subscription":"demo.s%d","data":%d}`, i, i))
	}
	got := map[string]bool{}
	for i := 0; i < channels; i++ {
		m := c.Recv()
		got[fmt.Sprint(m["subscription"], "=", m["data"])] = true
	}
	for i := 0; i < channels; i++ {
		if !got[fmt.Sprintf("demo.s%d=%d", i, i)] {
			t.Fatalf("demo.s%d not delivered (got %v)", i, got)
		}
	}
}

// TestRedisFailedBeforeSubscribeReleases: a failed before_subscribe drops
// the provisional hold and releases the Redis subscription when unused.
func TestRedisFailedBeforeSubscribeReleases(t *testing.T) {
	rs := redistest.Start(t)
	svc := e2e.NewService(t)
	svc.Reply("/before", `{"status":"error","error":"nope"}`)
	cfg := openConfig(redisConfig(rs.Addr(), ""))
	f := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &f, BeforeSubscribe: svc.URL("/before")}
	srv := e2e.StartServer(t, cfg)
	c := e2e.Dial(t, srv)
	m := c.Roundtrip(`{"event":"subscribe","subscription":"demo.f"}`)
	if m["status"] != "error" || m["error"] != "nope" {
		t.Fatalf("subscribe: %v", m)
	}
	redistest.Eventually(t, e2e.Timeout, "demo.f released", func() bool { return numsub(rs, "demo.f") == 0 })
	if n := srv.Hub().Channels(); n != 0 {
		t.Fatalf("hub still holds %d channels", n)
	}
}
