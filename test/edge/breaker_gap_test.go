package edge

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"mako/pubsub"
	"mako/server"
)

// gateSink is a Hub sink that blocks its fan-out worker on every Deliver
// while its gate is armed: the test holds the worker up as often as it
// likes.
type gateSink struct {
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
}

func (s *gateSink) Deliver([]*pubsub.Message) {
	s.mu.Lock()
	g, e := s.gate, s.entered
	s.gate, s.entered = nil, nil
	s.mu.Unlock()
	if g != nil {
		close(e)
		<-g
	}
}
func (s *gateSink) Gap(*pubsub.Gap) {}

// hold blocks the worker of block (publishing one message on it) until the
// returned function is called.
func (s *gateSink) hold(t *testing.T, block string, read func(ch, body string)) (release func()) {
	t.Helper()
	g, e := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.gate, s.entered = g, e
	s.mu.Unlock()
	read(block, fmt.Sprintf(`{"subscription":%q,"data":"block"}`, block))
	select {
	case <-e:
	case <-time.After(wait):
		t.Fatal("fan-out worker not blocked")
	}
	return sync.OnceFunc(func() { close(g) })
}

// Round after round, the fan-out worker of a channel is held up until its
// queue overflows and sheds, then let go while the stream goes on, so that
// messages accepted after the shedding ended (hysteresis: half empty)
// follow the dropped ones. Every subscriber of the channel (on both loops)
// sees an unbroken, increasing run of numbers and then a 1013 close: a
// message after a dropped one never reaches a session that stays open, and
// nothing is reordered. Subscribers that join while the stream resumes
// either run unbroken (from the first number published after they joined)
// to the last number, or are closed 1013.
func TestFanoutShedRoundsOnlyCut(t *testing.T) {
	t.Parallel()
	rb := &readerBroker{}
	const maxBytes = 4000
	srv := startServer(t, func(c *cfgT) {
		openDemo(c)
		c.Limits.MaxFanoutQueueBytes = maxBytes
	}, func(o *server.Options) { o.Broker = rb; o.Loops = 2 })
	h := srv.Hub()
	block := "demo.block"
	w := h.Worker(block)
	chA := sameWorker(h, w, "a", 1)[0]
	gs := &gateSink{}
	h.Subscribe(block, h.AddSink(gs), func(error) {})

	n := 0 // the next number published on chA
	publish := func() {
		rb.read(chA, fmt.Sprintf(`{"subscription":%q,"data":%d}`, chA, n))
		n++
	}
	for round := range 5 {
		var subs []*rawConn
		for range 4 { // two per loop, as the kernel spreads them
			subs = append(subs, subscribeRaw(t, srv, chA))
		}
		subsFrom := n
		for range 20 {
			publish() // some flow before the worker is held
		}
		release := gs.hold(t, block, rb.read)
		dropped := h.FanoutStats()[w].Dropped
		for i := 0; h.FanoutStats()[w].Dropped == dropped; i++ {
			if i > 100_000 {
				t.Fatal("the fan-out queue took 100,000 messages: unbounded")
			}
			publish()
		}
		release()
		var late []*rawConn
		lateFrom := 0
		for i := range 2000 {
			publish() // accepted again once the worker has caught up, dropped while it sheds
			if i == 1000 {
				// Late subscribers, whose subscription may start before
				// or after the worker reached the loss: each either runs
				// unbroken to the end or is closed 1013.
				late = append(late, subscribeRaw(t, srv, chA), subscribeRaw(t, srv, chA))
				lateFrom = n
			}
		}
		for i, rc := range append(subs, late...) {
			isLate := i >= len(subs)
			// from is the first number published once the subscription
			// was confirmed: a subscriber may also get older ones still
			// queued at the worker (in order), then a jump over older
			// ones that were dropped; from there on, no gap.
			from := subsFrom
			if isLate {
				from = lateFrom
			}
			first, last := -1, -1
			for !isLate || last != n-1 {
				f, err := rc.readFrame()
				if err != nil {
					t.Fatalf("round %d sub %d: read: %v (after %d..%d)", round, i, err, first, last)
				}
				if f.op == opClose {
					if code, _ := f.close(); code != 1013 {
						t.Fatalf("round %d sub %d: closed %d after %d..%d, want 1013", round, i, code, first, last)
					}
					break
				}
				var k int
				if _, err := fmt.Sscanf(string(f.payload), `{"event":"message","subscription":"`+chA+`","data":%d`, &k); err != nil {
					t.Fatalf("round %d sub %d: frame %q", round, i, f.payload)
				}
				if first >= 0 && (k <= last || k > from && k != last+1) {
					t.Fatalf("round %d sub %d (subscribed before %d): %d after %d (a gap or a reorder in an open session)", round, i, from, k, last)
				}
				if first < 0 {
					first = k
				}
				last = k
			}
			t.Logf("round %d sub %d (late %v): %d..%d", round, i, isLate, first, last)
		}
	}
}
