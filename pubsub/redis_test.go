package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
	"mako/internal/redistest"
)

type recvMsg struct {
	ch      string
	payload string
}

// recorder is a Handler that never blocks (like the Hub's): it appends to a
// slice and wakes waiters.
type recorder struct {
	mu   sync.Mutex
	msgs []recvMsg
	wake chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) handle(ch string, payload []byte, at time.Time) {
	if at.IsZero() {
		panic("zero receivedAt")
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, recvMsg{ch, string(payload)})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until every wanted message has been received (any order).
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, want ...recvMsg) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		have := map[recvMsg]int{}
		for _, m := range r.msgs {
			have[m]++
		}
		r.mu.Unlock()
		var missing []recvMsg
		for _, m := range want {
			if have[m] == 0 {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			if len(missing) > 5 {
				missing = missing[:5]
			}
			t.Fatalf("missing %d of %d messages, e.g. %v", len(missing), len(want), missing)
		}
	}
}

func (r *recorder) count(m recvMsg) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.msgs {
		if x == m {
			n++
		}
	}
	return n
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("MAKO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startRedis(t testing.TB, opts RedisOptions, h Handler) *Redis {
	t.Helper()
	b, err := NewRedis(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Start(h); err != nil {
		t.Fatal(err)
	}
	return b
}

// subscribeAll subscribes chans and waits for every done.
func subscribeAll(t testing.TB, b Broker, chans ...string) {
	t.Helper()
	errs := make(chan error, len(chans))
	for _, ch := range chans {
		b.Subscribe(ch, func(err error) { errs <- err })
	}
	timeout := time.After(20 * time.Second)
	for range chans {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
		case <-timeout:
			t.Fatal("subscribe: no done")
		}
	}
}

func channelsOn(s *redistest.Server, pattern string) []string {
	out := s.Strings("PUBSUB", "CHANNELS", pattern)
	slices.Sort(out)
	return out
}

func TestRedisOptionsFromConfig(t *testing.T) {
	o, err := RedisOptionsFromConfig(&config.Redis{URL: "redis://:s3cret@db.example:6380/2", ChannelPrefix: "p:", PingInterval: 10, PingTimeout: 5})
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "db.example:6380" || o.Password != "s3cret" || o.Username != "" || o.DB != 2 || o.ChannelPrefix != "p:" || o.PingInterval != 10*time.Second {
		t.Fatalf("url: %+v", o)
	}
	o, err = RedisOptionsFromConfig(&config.Redis{URL: "redis://user:pw@h/"})
	if err != nil || o.Addr != "h:6379" || o.Username != "user" || o.Password != "pw" || o.DB != 0 {
		t.Fatalf("url defaults: %+v %v", o, err)
	}
	o, err = RedisOptionsFromConfig(&config.Redis{Host: "r1", Port: 7000, DB: 3})
	if err != nil || o.Addr != "r1:7000" || o.DB != 3 {
		t.Fatalf("host/port: %+v %v", o, err)
	}
	o, err = RedisOptionsFromConfig(&config.Redis{})
	if err != nil || o.Addr != "localhost:6379" {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	o, err = RedisOptionsFromConfig(&config.Redis{Cluster: true, Sharded: true, Host: "c1", Port: 7001})
	if err != nil || !slices.Equal(o.Addrs, []string{"c1:7001"}) {
		t.Fatalf("cluster seeds: %+v %v", o, err)
	}
	for _, bad := range []*config.Redis{
		{URL: "http://x"},
		{URL: "redis://x:99999"},
		{URL: "redis://x/abc"},
		{Sharded: true},
		{Cluster: true, DB: 1},
		{Cluster: true, Addrs: []string{"nohostport"}},
		{Port: 70000},
	} {
		if _, err := RedisOptionsFromConfig(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestRedisSlot(t *testing.T) {
	// Reference values from CLUSTER KEYSLOT.
	for k, want := range map[string]uint16{"foo": 12182, "bar": 5061, "{user1000}.following": 3443, "{user1000}.followers": 3443, "": 0, "a{}b": 13694, "{}": 15257, "{a": 10276, "s:books.book_7": 1059} {
		if got := redisSlot(k); got != want {
			t.Errorf("slot(%q) = %d, want %d", k, got, want)
		}
	}
}

func TestRedisSubscribePublishUnsubscribe(t *testing.T) {
	srv := redistest.Start(t)
	rec := newRecorder()
	b := startRedis(t, RedisOptions{Addr: srv.Addr(), ChannelPrefix: "pfx:"}, rec.handle)
	if !b.Ready() {
		t.Fatal("not ready after Start")
	}
	subscribeAll(t, b, "books.book_1", "books.book_2")
	if got := channelsOn(srv, "*"); !slices.Equal(got, []string{"pfx:books.book_1", "pfx:books.book_2"}) {
		t.Fatalf("PUBSUB CHANNELS = %v", got)
	}
	payload := `{"subscription":"books.book_1","data":{"title":"New \u00e9"}}` + "\x00\xff"
	if n := srv.Int("PUBLISH", "pfx:books.book_1", payload); n != 1 {
		t.Fatalf("PUBLISH reached %d subscribers", n)
	}
	srv.MustDo("PUBLISH", "books.book_1", "unprefixed: not ours")
	if err := b.Publish(context.Background(), "books.book_2", []byte("via broker")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 5*time.Second, recvMsg{"books.book_1", payload}, recvMsg{"books.book_2", "via broker"})
	if rec.count(recvMsg{"books.book_1", "unprefixed: not ours"}) != 0 {
		t.Fatal("received a message on the unprefixed channel")
	}

	b.Unsubscribe("books.book_1")
	redistest.Eventually(t, 5*time.Second, "NUMSUB 0", func() bool {
		r := srv.MustDo("PUBSUB", "NUMSUB", "pfx:books.book_1").([]any)
		return r[1].(int64) == 0
	})
	if got := channelsOn(srv, "*"); !slices.Equal(got, []string{"pfx:books.book_2"}) {
		t.Fatalf("after unsubscribe PUBSUB CHANNELS = %v", got)
	}
}

// TestRedisDoneMeansSubscribed publishes the moment done(nil) fires: every
// message must arrive, i.e. done follows Redis' acknowledgement.
func TestRedisDoneMeansSubscribed(t *testing.T) {
	srv := redistest.Start(t)
	rec := newRecorder()
	b := startRedis(t, RedisOptions{Addr: srv.Addr()}, rec.handle)
	pub, err := NewRedis(RedisOptions{Addr: srv.Addr()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 500
	var want []recvMsg
	acked := make(chan string, n)
	for i := range n {
		ch := fmt.Sprintf("ack.%d", i)
		want = append(want, recvMsg{ch, "first"})
		b.Subscribe(ch, func(err error) {
			if err != nil {
				t.Errorf("%s: %v", ch, err)
			}
			acked <- ch
		})
	}
	for range n {
		ch := <-acked
		if err := pub.Publish(context.Background(), ch, []byte("first")); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitFor(t, 10*time.Second, want...)
	calls := srv.MustDo("INFO", "commandstats").(string)
	t.Logf("%d channels took %s", n, statLine(calls, "cmdstat_subscribe"))
}

func statLine(info, name string) string {
	for _, l := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(l, name+":") {
			c := strings.TrimPrefix(l, name+":")
			if i := strings.Index(c, ",usec="); i > 0 {
				c = c[:i]
			}
			return name + " " + c
		}
	}
	return name + " calls=0"
}

// TestRedisChurn flips 1,000 channels from many goroutines (serialised
// per channel, as the Hub does) and checks Redis ends up holding exactly the
// channels whose last call was Subscribe, and every Subscribe got one done.
func TestRedisChurn(t *testing.T) {
	srv := redistest.Start(t)
	rec := newRecorder()
	b := startRedis(t, RedisOptions{Addr: srv.Addr(), ChannelPrefix: "churn:"}, rec.handle)
	const nChans, workers, ops = 1000, 32, 600
	var locks [nChans]sync.Mutex
	var want [nChans]bool
	var subs, dones atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range ops {
				i := r.IntN(nChans)
				ch := fmt.Sprintf("c%d", i)
				locks[i].Lock()
				if !want[i] {
					want[i] = true
					subs.Add(1)
					b.Subscribe(ch, func(err error) {
						if err != nil && !errors.Is(err, errUnsubscribed) {
							t.Errorf("%s: %v", ch, err)
						}
						dones.Add(1)
					})
				} else {
					want[i] = false
					b.Unsubscribe(ch)
				}
				locks[i].Unlock()
				if r.IntN(8) == 0 {
					time.Sleep(time.Duration(r.IntN(300)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	var expected []string
	for i, w := range want {
		if w {
			expected = append(expected, fmt.Sprintf("churn:c%d", i))
		}
	}
	slices.Sort(expected)
	deadline := time.Now().Add(10 * time.Second)
	for dones.Load() != subs.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if dones.Load() != subs.Load() {
		b.mu.Lock()
		for _, rc := range b.chans {
			if len(rc.waiters) > 0 {
				t.Logf("stuck %s want=%v queued=%v inflight=%v on=%v failures=%d waiters=%d", rc.key, rc.want, rc.queued, rc.inflight, rc.on != nil, rc.failures, len(rc.waiters))
			}
		}
		t.Logf("queue=%d", len(b.queue))
		b.mu.Unlock()
		t.Fatalf("%d subscribes, %d dones", subs.Load(), dones.Load())
	}
	var got []string
	redistest.Eventually(t, 10*time.Second, "PUBSUB CHANNELS = expected", func() bool {
		got = channelsOn(srv, "churn:*")
		return slices.Equal(got, expected)
	})
	// Nothing further may change once settled (no late leak or drop).
	time.Sleep(50 * time.Millisecond)
	if got = channelsOn(srv, "churn:*"); !slices.Equal(got, expected) {
		t.Fatalf("PUBSUB CHANNELS changed after settling: %d channels, want %d", len(got), len(expected))
	}
	info := srv.MustDo("INFO", "commandstats").(string)
	t.Logf("%d ops, %d subscribes, %d channels left; %s, %s", workers*ops, subs.Load(), len(expected),
		statLine(info, "cmdstat_subscribe"), statLine(info, "cmdstat_unsubscribe"))
	var msgs []recvMsg
	for _, ch := range expected {
		srv.MustDo("PUBLISH", ch, "x")
		msgs = append(msgs, recvMsg{strings.TrimPrefix(ch, "churn:"), "x"})
	}
	rec.waitFor(t, 5*time.Second, msgs...)
}

type lossWatch struct {
	loss, recover chan struct{}
}

func watchLoss(b interface {
	OnLoss(func())
	OnRecover(func())
}) *lossWatch {
	w := &lossWatch{loss: make(chan struct{}, 10), recover: make(chan struct{}, 10)}
	b.OnLoss(func() { w.loss <- struct{}{} })
	b.OnRecover(func() { w.recover <- struct{}{} })
	return w
}

func await(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestRedisLossAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	rec := newRecorder()
	b, err := NewRedis(RedisOptions{Addr: srv.Addr(), ChannelPrefix: "l:", PingInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := watchLoss(b)
	if err := b.Start(rec.handle); err != nil {
		t.Fatal(err)
	}
	var chans []string
	for i := range 50 {
		chans = append(chans, fmt.Sprintf("ch%d", i))
	}
	subscribeAll(t, b, chans...)

	srv.Kill()
	await(t, w.loss, 5*time.Second, "OnLoss after kill")
	if b.Ready() {
		t.Fatal("Ready during outage")
	}
	if b.Outages() != 1 {
		t.Fatalf("Outages = %d", b.Outages())
	}
	// A subscription asked for during the outage fails now but is kept.
	errc := make(chan error, 1)
	b.Subscribe("during", func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("subscribe during outage: %v", err)
	}

	srv.Restart()
	await(t, w.recover, 10*time.Second, "OnRecover after restart")
	if !b.Ready() {
		t.Fatal("not Ready after recovery")
	}
	expected := []string{"l:during"}
	for _, c := range chans {
		expected = append(expected, "l:"+c)
	}
	slices.Sort(expected)
	if got := channelsOn(srv, "l:*"); !slices.Equal(got, expected) {
		t.Fatalf("resubscribed %d channels, want %d", len(got), len(expected))
	}
	var want []recvMsg
	for _, c := range append(chans, "during") {
		srv.MustDo("PUBLISH", "l:"+c, "after")
		want = append(want, recvMsg{c, "after"})
	}
	rec.waitFor(t, 5*time.Second, want...)
}

// TestRedisPingTimeout: a hung server (SIGSTOP) answers nothing; the missed
// pong must count as a loss, and the broker must come back after SIGCONT.
func TestRedisPingTimeout(t *testing.T) {
	srv := redistest.Start(t)
	rec := newRecorder()
	b, err := NewRedis(RedisOptions{Addr: srv.Addr(), PingInterval: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := watchLoss(b)
	b.Start(rec.handle)
	subscribeAll(t, b, "hung")
	srv.Pause()
	await(t, w.loss, 5*time.Second, "OnLoss while paused")
	srv.Resume()
	await(t, w.recover, 10*time.Second, "OnRecover after resume")
	srv.MustDo("PUBLISH", "hung", "back")
	rec.waitFor(t, 5*time.Second, recvMsg{"hung", "back"})
	if got := srv.Int("PUBSUB", "NUMPAT"); got != 0 {
		t.Fatalf("NUMPAT = %d", got)
	}
	// The connection abandoned during the pause must not leave a second
	// subscriber behind.
	redistest.Eventually(t, 5*time.Second, "one subscriber", func() bool {
		r := srv.MustDo("PUBSUB", "NUMSUB", "hung").([]any)
		return r[1].(int64) == 1
	})
}

func TestRedisAlt(t *testing.T) {
	s1, s2 := redistest.Start(t), redistest.Start(t)
	rec := newRecorder()
	p, err := NewRedis(RedisOptions{Name: "redis", Addr: s1.Addr(), ChannelPrefix: "old:"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewRedis(RedisOptions{Name: "redis_alt", Addr: s2.Addr(), ChannelPrefix: "new:"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMulti(testLogger(t), p, a)
	defer m.Close()
	if err := m.Start(rec.handle); err != nil {
		t.Fatal(err)
	}
	subscribeAll(t, m, "books.b1")
	s1.MustDo("PUBLISH", "old:books.b1", "from old")
	s2.MustDo("PUBLISH", "new:books.b1", "from new")
	if err := m.Publish(context.Background(), "books.b1", []byte("via mako")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 5*time.Second, recvMsg{"books.b1", "from old"}, recvMsg{"books.b1", "from new"}, recvMsg{"books.b1", "via mako"})
	if n := rec.count(recvMsg{"books.b1", "via mako"}); n != 1 {
		t.Fatalf("publish delivered %d times", n)
	}
	m.Unsubscribe("books.b1")
	redistest.Eventually(t, 5*time.Second, "both released", func() bool {
		return len(channelsOn(s1, "*")) == 0 && len(channelsOn(s2, "*")) == 0
	})
}

func clusterShardChannels(c *redistest.Cluster) map[string][]string {
	out := map[string][]string{}
	for _, m := range c.Masters() {
		out[m.Addr()] = m.Strings("PUBSUB", "SHARDCHANNELS", "*")
	}
	return out
}

// TestRedisCluster runs on one 3-master/1-replica cluster: sharded
// subscriptions spread over every master, a slot moving and a master
// failing over while messages flow, then classic (broadcast) mode.
func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	rec := newRecorder()
	b := startRedis(t, RedisOptions{Cluster: true, Sharded: true, Addrs: c.Addrs()[:1], ChannelPrefix: "s:"}, rec.handle)

	var chans []string
	for i := range 300 {
		chans = append(chans, fmt.Sprintf("books.book_%d", i))
	}
	subscribeAll(t, b, chans...)
	per := clusterShardChannels(c)
	total := 0
	for addr, chs := range per {
		if len(chs) == 0 {
			t.Fatalf("master %s holds no shard channel: %v", addr, per)
		}
		total += len(chs)
	}
	if total != 300 {
		t.Fatalf("%d shard channels subscribed, want 300", total)
	}
	var want []recvMsg
	for _, ch := range chans {
		if err := b.Publish(context.Background(), ch, []byte("m0")); err != nil {
			t.Fatal(err)
		}
		want = append(want, recvMsg{ch, "m0"})
	}
	rec.waitFor(t, 10*time.Second, want...)

	// Slot move while a publisher keeps publishing on the moving channel.
	moving := "books.book_7"
	slot := c.Slot("s:" + moving)
	src := c.Owner(slot)
	var dst *redistest.Server
	for _, m := range c.Masters() {
		if m != src {
			dst = m
			break
		}
	}
	publish := func(stop <-chan struct{}, ch string) *sync.WaitGroup {
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cf := context.WithTimeout(context.Background(), time.Second)
				b.Publish(ctx, ch, []byte(fmt.Sprintf("bg%d", i)))
				cf()
				time.Sleep(time.Millisecond)
			}
		})
		return &wg
	}
	stop := make(chan struct{})
	bg := publish(stop, moving)
	c.MoveSlot(slot, dst)
	redistest.Eventually(t, 10*time.Second, "channel follows its slot", func() bool {
		return slices.Contains(dst.Strings("PUBSUB", "SHARDCHANNELS", "s:"+moving), "s:"+moving)
	})
	close(stop)
	bg.Wait()
	if n := len(src.Strings("PUBSUB", "SHARDCHANNELS", "s:"+moving)); n != 0 {
		t.Fatalf("old owner still holds the channel")
	}
	want = want[:0]
	for i := range 20 {
		msg := fmt.Sprintf("after-move-%d", i)
		if err := b.Publish(context.Background(), moving, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		want = append(want, recvMsg{moving, msg})
	}
	rec.waitFor(t, 10*time.Second, want...)

	// Failover of the master now owning the moved slot.
	stop = make(chan struct{})
	bg = publish(stop, moving)
	newMaster := c.Failover(dst)
	close(stop)
	bg.Wait()
	redistest.Eventually(t, 10*time.Second, "subscriptions follow the failover", func() bool {
		n := 0
		for _, chs := range clusterShardChannels(c) {
			n += len(chs)
		}
		return n == 300
	})
	t.Logf("failover %s -> %s; shard channels on new master: %d", dst.Addr(), newMaster.Addr(), len(newMaster.Strings("PUBSUB", "SHARDCHANNELS", "*")))
	want = want[:0]
	for _, ch := range chans {
		msg := "after-failover"
		redistest.Eventually(t, 10*time.Second, "publish after failover", func() bool {
			return b.Publish(context.Background(), ch, []byte(msg)) == nil
		})
		want = append(want, recvMsg{ch, msg})
	}
	rec.waitFor(t, 15*time.Second, want...)

	// Classic mode on the same cluster: PUBLISH is broadcast, so a message
	// published on any master reaches the one connection.
	rec2 := newRecorder()
	cb := startRedis(t, RedisOptions{Cluster: true, Addrs: c.Addrs(), ChannelPrefix: "c:"}, rec2.handle)
	subscribeAll(t, cb, "x", "y")
	want = want[:0]
	for i, m := range c.Masters() {
		msg := fmt.Sprintf("via-%d", i)
		m.MustDo("PUBLISH", "c:x", msg)
		want = append(want, recvMsg{"x", msg})
	}
	if err := cb.Publish(context.Background(), "y", []byte("pub")); err != nil {
		t.Fatal(err)
	}
	want = append(want, recvMsg{"y", "pub"})
	rec2.waitFor(t, 5*time.Second, want...)
	if !b.Ready() || !cb.Ready() {
		t.Fatalf("ready: sharded %v classic %v", b.Ready(), cb.Ready())
	}

	testShardedStartWhileDown(t, c)

	// A master crashes: its connection breaks (a loss, per the spec), the
	// cluster promotes the replica, and the broker resubscribes there.
	w := watchLoss(b)
	victim := c.Owner(c.Slot("s:books.book_0"))
	if len(c.Replicas(victim)) == 0 {
		t.Skip("victim has no replica")
	}
	victim.Kill()
	await(t, w.loss, 10*time.Second, "OnLoss after master crash")
	await(t, w.recover, 30*time.Second, "OnRecover after automatic failover")
	if b.Outages() != 1 {
		t.Fatalf("Outages = %d", b.Outages())
	}
	want = want[:0]
	for _, ch := range chans {
		// The publishing client learns the new topology on its own time.
		redistest.Eventually(t, 10*time.Second, "publish after crash", func() bool {
			return b.Publish(context.Background(), ch, []byte("after-crash")) == nil
		})
		want = append(want, recvMsg{ch, "after-crash"})
	}
	rec.waitFor(t, 10*time.Second, want...)
}

// testShardedStartWhileDown starts a sharded broker while every cluster node
// is hung, so its first CLUSTER SLOTS fails: the broker must keep asking for
// the topology and recover once the cluster answers, not park every channel
// forever for want of a slot map.
func testShardedStartWhileDown(t *testing.T, c *redistest.Cluster) {
	rec := newRecorder()
	b, err := NewRedis(RedisOptions{Cluster: true, Sharded: true, Addrs: c.Addrs()[:1], ChannelPrefix: "d:",
		PingTimeout: 300 * time.Millisecond, CommandTimeout: 300 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := watchLoss(b)
	for _, n := range c.Nodes {
		n.Pause()
	}
	err = b.Start(rec.handle)
	for _, n := range c.Nodes {
		n.Resume()
	}
	if err != nil {
		t.Fatal(err)
	}
	await(t, w.loss, 5*time.Second, "OnLoss when the cluster is hung at Start")
	errc := make(chan error, 1)
	b.Subscribe("late", func(err error) { errc <- err })
	select {
	case err := <-errc:
		// The nodes were resumed right after Start: the broker may already
		// have recovered (nil) or still be lost (ErrRedisUnavailable).
		if err != nil && !errors.Is(err, ErrRedisUnavailable) {
			t.Fatalf("subscribe after a failed first topology read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscribe after a failed first topology read: no done")
	}
	await(t, w.recover, 10*time.Second, "OnRecover once the cluster answers")
	redistest.Eventually(t, 10*time.Second, "publish", func() bool {
		return b.Publish(context.Background(), "late", []byte("back")) == nil
	})
	rec.waitFor(t, 5*time.Second, recvMsg{"late", "back"})
}
