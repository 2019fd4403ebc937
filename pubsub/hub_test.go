package pubsub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recordingBroker is a Broker that records the Hub's transitions and lets
// the test acknowledge subscriptions when it chooses.
type recordingBroker struct {
	mu      sync.Mutex
	h       Handler
	subs    map[string]int
	pending map[string][]func(error)
	ops     []string
}

func newRecordingBroker() *recordingBroker {
	return &recordingBroker{subs: map[string]int{}, pending: map[string][]func(error){}}
}

func (b *recordingBroker) Start(h Handler) error { b.h = h; return nil }
func (b *recordingBroker) Subscribe(ch string, done func(error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[ch]++
	b.ops = append(b.ops, "sub "+ch)
	b.pending[ch] = append(b.pending[ch], done)
}
func (b *recordingBroker) Unsubscribe(ch string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[ch]--
	b.ops = append(b.ops, "unsub "+ch)
}
func (b *recordingBroker) ack(ch string, err error) {
	b.mu.Lock()
	p := b.pending[ch]
	delete(b.pending, ch)
	b.mu.Unlock()
	for _, f := range p {
		f(err)
	}
}
func (b *recordingBroker) Publish(_ context.Context, ch string, p []byte) error {
	b.h(ch, p, time.Now())
	return nil
}
func (b *recordingBroker) Ready() bool  { return true }
func (b *recordingBroker) Close() error { return nil }

type chanSink chan *Message

func (c chanSink) Deliver(ms []*Message) {
	for _, m := range ms {
		c <- m
	}
}

func (c chanSink) Gap(*Gap) {}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestHubTransitions(t *testing.T) {
	b := newRecordingBroker()
	h := NewHub(b, 2, quietLog())
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	acks := make(chan string, 8)
	done := func(who string) func(error) {
		return func(err error) { acks <- fmt.Sprint(who, err) }
	}
	h.Subscribe("a.b", 0, done("l0"))
	h.Subscribe("a.b", 1, done("l1")) // not acked yet: waits with l0
	select {
	case a := <-acks:
		t.Fatalf("ack before the broker acknowledged: %s", a)
	default:
	}
	b.ack("a.b", nil)
	got := map[string]bool{<-acks: true, <-acks: true}
	if !got["l0<nil>"] || !got["l1<nil>"] {
		t.Fatalf("acks = %v", got)
	}
	h.Subscribe("a.b", 2, done("l2")) // acknowledged channel: at once
	if a := <-acks; a != "l2<nil>" {
		t.Fatalf("ack = %s", a)
	}
	h.Unsubscribe("a.b", 0)
	h.Unsubscribe("a.b", 1)
	if b.subs["a.b"] != 1 {
		t.Fatalf("broker unsubscribed while loop 2 holds the channel")
	}
	h.Unsubscribe("a.b", 2)
	if b.subs["a.b"] != 0 || h.Channels() != 0 {
		t.Fatalf("channel not released: broker %d, hub %d", b.subs["a.b"], h.Channels())
	}
	want := []string{"sub a.b", "unsub a.b"}
	if fmt.Sprint(b.ops) != fmt.Sprint(want) {
		t.Fatalf("broker ops = %v, want %v", b.ops, want)
	}
}

func TestHubRetriesFailedSubscribe(t *testing.T) {
	b := newRecordingBroker()
	h := NewHub(b, 1, quietLog())
	_ = h.Start()
	defer h.Close()
	errs := make(chan error, 2)
	h.Subscribe("x.y", 0, func(err error) { errs <- err })
	b.ack("x.y", fmt.Errorf("boom"))
	if err := <-errs; err == nil {
		t.Fatal("want the broker's error")
	}
	h.Subscribe("x.y", 1, func(err error) { errs <- err })
	if b.subs["x.y"] != 2 {
		t.Fatalf("a failed channel must be subscribed again on new interest (subs=%d)", b.subs["x.y"])
	}
	b.ack("x.y", nil)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// TestHubOrderPerChannel publishes interleaved on many channels and checks
// each channel's messages reach the sink in publish order.
func TestHubOrderPerChannel(t *testing.T) {
	b := NewEmbedded()
	h := NewHub(b, 4, quietLog())
	_ = h.Start()
	defer h.Close()
	sink := make(chanSink, 100000)
	id := h.AddSink(sink)
	const channels, per = 20, 500
	for c := 0; c < channels; c++ {
		h.Subscribe(fmt.Sprintf("s.c%d", c), id, func(error) {})
	}
	for i := 0; i < per; i++ {
		for c := 0; c < channels; c++ {
			body := fmt.Sprintf(`{"subscription":"s.c%d","data":%d}`, c, i)
			if err := h.Publish(context.Background(), fmt.Sprintf("s.c%d", c), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := map[string]int{}
	for n := 0; n < channels*per; n++ {
		select {
		case m := <-sink:
			want := fmt.Sprint(next[m.Channel])
			if string(m.Pub.Data) != want {
				t.Fatalf("%s: got data %s, want %s", m.Channel, m.Pub.Data, want)
			}
			next[m.Channel]++
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages delivered", n, channels*per)
		}
	}
}

func TestHubDropsUndecodable(t *testing.T) {
	b := NewEmbedded()
	h := NewHub(b, 1, quietLog())
	_ = h.Start()
	defer h.Close()
	sink := make(chanSink, 4)
	id := h.AddSink(sink)
	h.Subscribe("s.t", id, func(error) {})
	_ = h.Publish(context.Background(), "s.t", []byte(`not json`))
	_ = h.Publish(context.Background(), "s.t", []byte(`{"subscription":"s.t"}`))
	_ = h.Publish(context.Background(), "s.t", []byte(`{"subscription":"s.t","data":1}`))
	if m := <-sink; string(m.Pub.Data) != "1" {
		t.Fatalf("first delivered = %s, want the valid message", m.Pub.Data)
	}
}

func BenchmarkHubRoute(b *testing.B) {
	br := NewEmbedded()
	h := NewHub(br, 1, quietLog())
	_ = h.Start()
	defer h.Close()
	done := make(chan struct{}, 1024)
	id := h.AddSink(sinkFunc(func([]*Message) { done <- struct{}{} }))
	h.Subscribe("s.t", id, func(error) {})
	payload := []byte(`{"subscription":"s.t","data":{"text":"0123456789012345678901234567890123456789012345678901234567890123456789"}}`)
	var out [][]*Message
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = h.route(inbound{channel: "s.t", payload: payload}, 0, out)
		h.flush(out)
		<-done
	}
}

type sinkFunc func([]*Message)

func (f sinkFunc) Deliver(ms []*Message) { f(ms) }
func (f sinkFunc) Gap(*Gap)              {}
