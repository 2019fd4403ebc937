package pubsub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// recSink records what a loop would see — messages as "channel:data", gaps
// as "gap:ch1,ch2" or "gap:all" — in order. With block set, its first
// Deliver blocks until release, which blocks the fan-out worker.
type recSink struct {
	mu      sync.Mutex
	events  []string
	gaps    []*Gap
	notify  chan struct{}
	block   bool
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func newRecSink(block bool) *recSink {
	return &recSink{notify: make(chan struct{}, 1), block: block, entered: make(chan struct{}), gate: make(chan struct{})}
}

func (s *recSink) Deliver(ms []*Message) {
	if s.block {
		s.once.Do(func() {
			close(s.entered)
			<-s.gate
		})
	}
	s.mu.Lock()
	for _, m := range ms {
		s.events = append(s.events, m.Channel+":"+string(m.Pub.Data))
	}
	s.mu.Unlock()
	s.poke()
}

func (s *recSink) Gap(g *Gap) {
	chs := append([]string(nil), g.Channels...)
	sort.Strings(chs)
	e := "gap:" + strings.Join(chs, ",")
	if g.All {
		e = "gap:all"
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.gaps = append(s.gaps, g)
	s.mu.Unlock()
	s.poke()
}

func (s *recSink) poke() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *recSink) release() { close(s.gate) }

// waitFor returns the events once there are n of them.
func (s *recSink) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got := append([]string(nil), s.events...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("waited for %d events, have %d: %v", n, len(got), got)
		}
	}
}

func body(channel string, i int) []byte {
	return []byte(fmt.Sprintf(`{"subscription":%q,"data":%d}`, channel, i))
}

// blockedHub is a one-worker Hub on b whose worker is blocked inside the
// first Deliver of sink (through channel s.block), with channels held by
// the sinks as given.
func blockedHub(t *testing.T, b Broker, maxBytes, maxGapped int, hold map[*recSink][]string) (*Hub, *recSink) {
	t.Helper()
	h := NewHub(b, 1, quietLog())
	h.SetLimits(maxBytes, maxGapped)
	idle := make(chan struct{}, 1)
	h.workers[0].idleHook = func() {
		select {
		case idle <- struct{}{}:
		default:
		}
	}
	idleHubs.Store(h, idle)
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	blocker := newRecSink(true)
	hold[blocker] = append(hold[blocker], "s.block")
	for s, chs := range hold {
		id := h.AddSink(s)
		for _, ch := range chs {
			h.Subscribe(ch, id, func(error) {})
		}
	}
	if b, ok := b.(*recordingBroker); ok {
		for ch := range b.pending {
			b.ack(ch, nil)
		}
	}
	if err := h.Publish(context.Background(), "s.block", body("s.block", 0)); err != nil {
		t.Fatal(err)
	}
	<-blocker.entered
	return h, blocker
}

var idleHubs sync.Map // *Hub → chan struct{} signalled when its worker idles

// drained waits until h's worker has routed everything and stopped
// shedding, awaiting the worker's idle signal between checks.
func drained(t *testing.T, h *Hub) FanoutStats {
	t.Helper()
	idle, _ := idleHubs.Load(h)
	for {
		if st := h.FanoutStats()[0]; st.Messages == 0 && !st.Shedding {
			return st
		}
		select {
		case <-idle.(chan struct{}):
		case <-time.After(10 * time.Second):
			t.Fatalf("worker not drained: %+v", h.FanoutStats()[0])
		}
	}
}

// TestFanoutOverflowGap fills a blocked worker's queue from the broker's
// reader (which cannot be refused) past its bound, then unblocks it: the
// messages queued before the overflow arrive in order, the loop holding the
// channel that lost messages is told after them (and only that loop, only
// that channel), later messages follow the gap, and the queue never held
// more than its bound.
func TestFanoutOverflowGap(t *testing.T) {
	b := newRecordingBroker()
	const maxBytes = 2000 // about 19 queued messages
	loopA, loopB := newRecSink(false), newRecSink(false)
	h, blocker := blockedHub(t, b, maxBytes, 16, map[*recSink][]string{
		loopA: {"s.a", "s.b"},
		loopB: {"s.b"},
	})
	read := func(ch string, i int) { b.h(ch, body(ch, i), time.Now()) } // the broker's reader

	read("s.b", 0)
	accepted := 0
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("the queue took 100,000 messages: unbounded")
		}
		read("s.a", i)
		st := h.FanoutStats()[0]
		if st.Bytes > maxBytes {
			t.Fatalf("queue holds %d bytes, bound %d", st.Bytes, maxBytes)
		}
		if st.Dropped > 0 {
			accepted = i
			break
		}
	}
	for i := accepted + 1; i < accepted+200; i++ {
		read("s.a", i) // all dropped: the worker sheds until half empty
	}
	st := h.FanoutStats()[0]
	if st.Dropped != 200 || !st.Shedding || st.PeakBytes > maxBytes || st.Messages != accepted+2 {
		t.Fatalf("before release: %+v (accepted %d of s.a)", st, accepted)
	}
	blocker.release()

	want := []string{"s.b:0"}
	for i := 0; i < accepted; i++ {
		want = append(want, fmt.Sprintf("s.a:%d", i))
	}
	want = append(want, "gap:s.a")
	got := loopA.waitFor(t, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("loop A saw\n%v\nwant\n%v", got, want)
	}
	if got := loopB.waitFor(t, 1); fmt.Sprint(got) != "[s.b:0]" {
		t.Fatalf("loop B saw %v, want only s.b:0 and no gap", got)
	}
	// Drained, the worker accepts again; the next message follows the gap.
	read("s.a", 1000)
	if got := loopA.waitFor(t, len(want)+1); got[len(want)] != "s.a:1000" {
		t.Fatalf("after the gap loop A saw %v", got[len(want):])
	}
	st = drained(t, h)
	if st.Bytes != 0 || st.Gaps != 1 || st.PeakBytes > maxBytes {
		t.Fatalf("after drain: %+v", st)
	}
}

// TestFanoutGapSetOverflow drops messages of more channels than the gapped
// set holds: the gap becomes "all", reported to every loop, and covers
// every channel of the worker.
func TestFanoutGapSetOverflow(t *testing.T) {
	b := newRecordingBroker()
	loopA, loopB := newRecSink(false), newRecSink(false)
	chans := []string{"s.c0", "s.c1", "s.c2", "s.c3"}
	h, blocker := blockedHub(t, b, 600, 2, map[*recSink][]string{loopA: chans[:2], loopB: chans[2:]})
	read := func(ch string, i int) { b.h(ch, body(ch, i), time.Now()) }
	for i := 0; h.FanoutStats()[0].Dropped == 0; i++ {
		if i > 100_000 {
			t.Fatal("the queue took 100,000 messages: unbounded")
		}
		read("s.c0", i)
	}
	for _, ch := range chans {
		read(ch, 99)
	}
	blocker.release()
	for _, s := range []*recSink{loopA, loopB} {
		got := s.waitFor(t, 1)
		for len(got) == 0 || got[len(got)-1] != "gap:all" {
			got = s.waitFor(t, len(got)+1)
		}
		g := s.gaps[0]
		for _, ch := range append(chans, "s.other") {
			if !g.Covers(ch) {
				t.Fatalf("an all gap does not cover %s", ch)
			}
		}
	}
	if st := h.FanoutStats()[0]; st.GapAll != 1 {
		t.Fatalf("stats %+v, want one all gap", st)
	}
}

// TestFanoutPublishRefused fills a blocked worker through Publish on the
// embedded broker: past the bound Publish returns ErrFanoutFull (the API
// answers 503), nothing is dropped and no gap is reported; once drained,
// publishing works again.
func TestFanoutPublishRefused(t *testing.T) {
	const maxBytes = 2000
	loop := newRecSink(false)
	h, blocker := blockedHub(t, NewEmbedded(), maxBytes, 16, map[*recSink][]string{loop: {"s.a"}})
	ctx := context.Background()
	accepted := 0
	for ; ; accepted++ {
		err := h.Publish(ctx, "s.a", body("s.a", accepted))
		if errors.Is(err, ErrFanoutFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if accepted > 100_000 {
			t.Fatal("the queue took 100,000 messages: no backpressure")
		}
		if st := h.FanoutStats()[0]; st.Bytes > maxBytes {
			t.Fatalf("queue holds %d bytes, bound %d", st.Bytes, maxBytes)
		}
	}
	for i := 0; i < 50; i++ {
		if err := h.Publish(ctx, "s.a", body("s.a", -1)); !errors.Is(err, ErrFanoutFull) {
			t.Fatalf("publish while shedding: %v, want ErrFanoutFull", err)
		}
	}
	blocker.release()
	got := loop.waitFor(t, accepted)
	for i, e := range got {
		if want := fmt.Sprintf("s.a:%d", i); e != want {
			t.Fatalf("event %d = %s, want %s (all: %v)", i, e, want, got)
		}
	}
	// Drained: accepted again, and no gap came before it.
	drained(t, h)
	if err := h.Publish(ctx, "s.a", body("s.a", accepted)); err != nil {
		t.Fatalf("publish after drain: %v", err)
	}
	got = loop.waitFor(t, accepted+1)
	if got[accepted] != fmt.Sprintf("s.a:%d", accepted) {
		t.Fatalf("after drain loop saw %v", got[accepted:])
	}
	st := h.FanoutStats()[0]
	if st.Dropped != 0 || st.Gaps != 0 || st.Refused != 51 || st.PeakBytes > maxBytes {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkHubDispatch measures the broker reader → worker → sink path
// with at most 4,096 messages in flight (under the bound, so none is
// dropped): the cost of the queue's accounting shows here.
func BenchmarkHubDispatch(b *testing.B) {
	br := newRecordingBroker()
	h := NewHub(br, 1, quietLog())
	_ = h.Start()
	defer h.Close()
	credit := make(chan struct{}, 4096)
	id := h.AddSink(sinkFunc(func(ms []*Message) {
		for range ms {
			<-credit
		}
	}))
	h.Subscribe("s.t", id, func(error) {})
	br.ack("s.t", nil)
	payload := []byte(`{"subscription":"s.t","data":{"text":"0123456789012345678901234567890123456789"}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		credit <- struct{}{}
		br.h("s.t", payload, time.Time{})
	}
	for len(credit) > 0 {
		runtime.Gosched()
	}
}
