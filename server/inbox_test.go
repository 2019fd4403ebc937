package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// frame reads one server frame: opcode and payload.
func (s *rawSubscriber) frame(tb testing.TB) (byte, []byte) {
	tb.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(e2e.Timeout))
	h := s.hdr[:2]
	if _, err := io.ReadFull(s.r, h); err != nil {
		tb.Fatalf("reading frame: %v", err)
	}
	op := h[0] & 0x0f
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		_, _ = io.ReadFull(s.r, s.hdr[:2])
		n = int(binary.BigEndian.Uint16(s.hdr[:2]))
	case 127:
		_, _ = io.ReadFull(s.r, s.hdr[:8])
		n = int(binary.BigEndian.Uint64(s.hdr[:8]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(s.r, p); err != nil {
		tb.Fatalf("reading frame: %v", err)
	}
	return op, p
}

func openDemo(t *testing.T, mutate func(*config.Config), opts ...func(*server.Options)) *server.Server {
	cfg := e2e.Config()
	f := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &f}
	if mutate != nil {
		mutate(cfg)
	}
	return e2e.StartServer(t, cfg, append([]func(*server.Options){func(o *server.Options) { o.Loops = 1 }}, opts...)...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(e2e.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling counters, which have no event to await
	}
}

// Everything posted to a loop runs in posting order, also past the point
// (1,024 pending tasks) where gnet's Execute starts a second queue that
// runs after its first: the loop is blocked while 2,800 tasks arrive from
// four posters, and unblocked in the middle of them the way that makes
// gnet's queues reorder (a task stalls the loop while gnet's first queue
// is empty and its second still holds older tasks; posts made then go to
// the first queue and would overtake them).
func TestLoopInboxOrderPastGnetQueueThreshold(t *testing.T) {
	srv := openDemo(t, nil)
	dialRaw(t, srv.Addr(), "demo.x") // the loop exists once a connection does

	const posters, perRound = 4, 300
	const total = posters * (2*perRound + 100)
	got := make([][]int, posters)
	done := make(chan struct{})
	ran := 0
	post := func(p, seq int) {
		srv.PostToLoop(0, func() {
			got[p] = append(got[p], seq)
			if ran++; ran == total {
				close(done)
			}
		})
	}
	next := make([]int, posters)
	round := func(n int) {
		var wg sync.WaitGroup
		for p := 0; p < posters; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					post(p, next[p])
					next[p]++
				}
			}(p)
		}
		wg.Wait()
	}
	stall := func() (started, release chan struct{}) {
		started, release = make(chan struct{}), make(chan struct{})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		srv.PostToLoop(0, func() {
			close(started)
			<-release
		})
		return
	}

	started1, release1 := stall()
	<-started1
	round(perRound) // 1,200 pending: past gnet's 1,024
	started2, release2 := stall()
	round(perRound)
	close(release1)
	<-started2
	round(100) // while the loop is stalled again with older tasks pending
	close(release2)

	select {
	case <-done:
	case <-time.After(e2e.Timeout):
		t.Fatalf("only %d of %d tasks ran", ran, total)
	}
	for p, seqs := range got {
		for i, s := range seqs {
			if s != i {
				t.Fatalf("poster %d: task %d ran at position %d (order %v…)", p, s, i, seqs[max(0, i-3):min(len(seqs), i+3)])
			}
		}
	}
}

// One delivery does bounded work per loop task: between its chunks the
// loop runs other work. Observed with the keepalive timer on a fake clock:
// pings are due when a message to 40 subscribers is published with a budget
// of 8 per drain, so the last subscriber gets its ping before the message;
// a delivery in one piece would write the message first (and the ping only
// when timers next run).
func TestLoopDeliveryYieldsBetweenChunks(t *testing.T) {
	clock := e2e.NewFakeClock()
	srv := openDemo(t, func(c *config.Config) {
		c.WS.Ping.Interval = 15
		c.WS.Ping.Timeout = 10
	}, func(o *server.Options) { o.Clock, o.ManualTimers = clock, true })
	const n = 40
	subs := make([]*rawSubscriber, n)
	for i := range subs {
		subs[i] = dialRaw(t, srv.Addr(), "demo.big")
	}
	srv.SetLoopBudget(8)
	clock.Advance(16 * time.Second)
	if err := srv.Hub().Publish(context.Background(), "demo.big", []byte(`{"subscription":"demo.big","data":1}`)); err != nil {
		t.Fatal(err)
	}
	last := subs[n-1]
	if op, p := last.frame(t); op != 0x9 {
		t.Fatalf("last subscriber: want the ping first, got op %d %s", op, p)
	}
	if op, p := last.frame(t); op != 0x1 || !strings.Contains(string(p), `"data":1`) {
		t.Fatalf("last subscriber: want the message, got op %d %s", op, p)
	}
	// The first chunk's subscribers were visited before the pings ran.
	if op, p := subs[0].frame(t); op != 0x1 {
		t.Fatalf("first subscriber: want the message first, got op %d %s", op, p)
	}
}

// Between the chunks of a long delivery the loop serves its sockets, not
// only its timers: a WebSocket ping already readable when a message to 200
// subscribers starts (budget 8: 25 delivery chunks, then a chunked flush)
// is answered before the message reaches the pinging client, the last
// subscriber visited. A re-arm gnet runs without polling (an Execute posted
// from a task joins the queue being drained) would read the ping only after
// the whole delivery and its flush, so the message would come first.
func TestLoopServesSocketsBetweenChunks(t *testing.T) {
	srv := openDemo(t, nil)
	const n = 200
	subs := make([]*rawSubscriber, n)
	for i := range subs {
		subs[i] = dialRaw(t, srv.Addr(), "demo.big")
	}
	client := subs[n-1]
	eventually(t, "the loop's wake socket", func() bool { return srv.LoopWakeReady(0) })
	// The wake socket is a gnet connection of the loop but no session.
	if st, err := srv.Stats(context.Background()); err != nil || st.Connections != n || st.Sessions != n {
		t.Fatalf("stats %+v (%v): want %d connections and sessions", st, err, n)
	}
	srv.SetLoopBudget(8)

	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	srv.PostToLoop(0, func() {
		close(started)
		<-release
	})
	<-started
	// Written while the loop is held: the ping waits in the server's socket
	// buffer before the delivery starts (masked with a zero key).
	if _, err := client.conn.Write([]byte{0x89, 0x84, 0, 0, 0, 0, 'w', 'a', 'k', 'e'}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Hub().Publish(context.Background(), "demo.big", []byte(`{"subscription":"demo.big","data":1}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the message queued on the loop", func() bool { b, _, _ := srv.LoopInbox(); return b == 1 })
	unblock()

	if op, p := client.frame(t); op != 0xA || string(p) != "wake" {
		t.Fatalf("pinging subscriber: want the pong before the message, got op %d %s", op, p)
	}
	for i, s := range []*rawSubscriber{client, subs[0]} {
		if op, p := s.frame(t); op != 0x1 || !strings.Contains(string(p), `"data":1`) {
			t.Fatalf("subscriber %d: want the message, got op %d %s", i, op, p)
		}
	}
}

// A backlog of small tasks does not starve timers either: with a budget of
// 8 per drain, the keepalive ping due before the backlog is written while
// the loop is held by the backlog's 50th task, long before the backlog's
// tail (where the ticker's own "run timers" task would wait).
func TestLoopTimersRunBetweenChunksOfABacklog(t *testing.T) {
	clock := e2e.NewFakeClock()
	srv := openDemo(t, func(c *config.Config) {
		c.WS.Ping.Interval = 15
		c.WS.Ping.Timeout = 10
	}, func(o *server.Options) { o.Clock, o.ManualTimers = clock, true })
	client := dialRaw(t, srv.Addr(), "demo.x")
	srv.SetLoopBudget(8)

	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	srv.PostToLoop(0, func() { <-stalled })
	clock.Advance(16 * time.Second)
	for i := 0; i < 100; i++ {
		if i == 50 {
			srv.PostToLoop(0, func() { <-release })
			continue
		}
		srv.PostToLoop(0, func() {})
	}
	close(stalled)
	if op, p := client.frame(t); op != 0x9 {
		t.Fatalf("want a ping while the backlog is held, got op %d %s", op, p)
	}
	unblock()
}

// The coalesced writes after a delivery are chunked too: with a budget of
// one write per drain, the flush to 40 subscribers takes 40 drains instead
// of one task writing to all.
func TestLoopFlushIsChunked(t *testing.T) {
	srv := openDemo(t, nil)
	const n = 40
	subs := make([]*rawSubscriber, n)
	for i := range subs {
		subs[i] = dialRaw(t, srv.Addr(), "demo.big")
	}
	srv.SetLoopBudget(8) // one write, or eight subscribers visited
	before := srv.LoopDrains()
	if err := srv.Hub().Publish(context.Background(), "demo.big", []byte(`{"subscription":"demo.big","data":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if op, p := s.frame(t); op != 0x1 || !strings.Contains(string(p), `"data":1`) {
			t.Fatalf("want the message, got op %d %s", op, p)
		}
	}
	if d := srv.LoopDrains() - before; d < n {
		t.Fatalf("%d drains for a delivery and flush to %d subscribers, want at least %d", d, n, n)
	}
}

// A loop that falls more than limits.max_loop_backlog messages behind does
// not queue more: the subscribers of the channel whose messages were not
// queued are closed 1013 (messages lost) when the loop gets there, while a
// subscriber of a channel whose messages were all queued stays open and
// gets every one, in order.
func TestLoopBacklogCutsGapChannel(t *testing.T) {
	srv := openDemo(t, func(c *config.Config) { c.Limits.MaxLoopBacklog = 100 })
	keep := dialRaw(t, srv.Addr(), "demo.keep")
	drop := dialRaw(t, srv.Addr(), "demo.drop")

	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test must not leave the loop stuck
	srv.PostToLoop(0, func() {
		close(started)
		<-release
	})
	<-started
	publish := func(ch string, i int) {
		body := fmt.Sprintf(`{"subscription":%q,"data":%d}`, ch, i)
		if err := srv.Hub().Publish(context.Background(), ch, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	const nKeep, nDrop = 60, 60
	for i := 0; i < nKeep; i++ {
		publish("demo.keep", i)
	}
	eventually(t, "keep messages queued", func() bool { b, _, _ := srv.LoopInbox(); return b == nKeep })
	for i := 0; i < nDrop; i++ {
		publish("demo.drop", i)
	}
	eventually(t, "drop messages queued or dropped", func() bool {
		b, d, _ := srv.LoopInbox()
		return b+d == nKeep+nDrop
	})
	if b, d, _ := srv.LoopInbox(); b > 100 || d == 0 {
		t.Fatalf("backlog %d (bound 100), dropped %d: want some dropped", b, d)
	}
	unblock()

	for i := 0; i < nKeep; i++ {
		op, p := keep.frame(t)
		if want := fmt.Sprintf(`"data":%d`, i); op != 0x1 || !strings.Contains(string(p), want) {
			t.Fatalf("keep message %d: got op %d %s", i, op, p)
		}
	}
	keep.send(t, `{"event":"ping"}`)
	if op, p := keep.frame(t); op != 0x1 || !strings.Contains(string(p), "pong") {
		t.Fatalf("keep subscriber after the cut: got op %d %s", op, p)
	}

	for {
		op, p := drop.frame(t)
		if op == 0x1 {
			continue // messages queued before the gap
		}
		if op != 0x8 || len(p) < 2 || binary.BigEndian.Uint16(p) != 1013 || string(p[2:]) != "messages lost: server overloaded" {
			t.Fatalf("drop subscriber: want close 1013 messages lost, got op %d %q", op, p)
		}
		break
	}
	if _, _, cuts := srv.LoopInbox(); cuts != 1 {
		t.Fatalf("cuts %d, want 1", cuts)
	}
}
