package server

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	json "github.com/goccy/go-json"

	"mako/config"
	"mako/protocol"
	"mako/pubsub"
)

// Loop-level benchmarks of the per-subscriber costs, on a loop without
// sockets (frames stay queued by reference and are dropped after each
// message), so ns/op is the loop's work alone. Each should stay flat as N
// grows from 1k to 100k.

var benchSizes = []int{1_000, 10_000, 100_000}

// benchChannel builds a loop whose channel demo.c has n open subscribers
// with `variants` distinct extra_fields values.
func benchChannel(n, variants int) (*loop, *chanEntry, []*subscription, *pubsub.Message) {
	s := &Server{cfg: config.Default(), clock: realClock{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l := newLoop(s, nil)
	l.flushPosted = true // no gnet loop here: never post the flush
	svc := newServiceInfo("demo", &config.Service{ExtraFields: []string{"k"}})
	e := newChanEntry()
	e.acked = true
	l.index["demo.c"] = e
	subs := make([]*subscription, n)
	for i := range subs {
		sess := &session{l: l, state: stOpen, subs: map[string]*subscription{}}
		extra := []protocol.Field{{Name: "k", Value: json.RawMessage(fmt.Sprintf(`"v%d"`, i%variants))}}
		sub := newSubscription(sess, svc, "demo.c", extra)
		sess.subs["demo.c"] = sub
		e.add(sub)
		subs[i] = sub
	}
	m := &pubsub.Message{Channel: "demo.c", Pub: &protocol.Published{Subscription: "demo.c", Data: json.RawMessage(`{"n":1}`)}}
	return l, e, subs, m
}

// deliverAll delivers m to every subscriber in chunks of chunkBudget, as
// drains do, then drops the queued frames.
func deliverAll(l *loop, m *pubsub.Message) {
	ms := []*pubsub.Message{m}
	for {
		budget := chunkBudget
		if l.deliverBatch(ms, &budget) {
			break
		}
	}
	for i, sess := range l.dirty {
		sess.out, l.dirty[i] = nil, nil
	}
	l.dirty = l.dirty[:0]
}

// BenchmarkLoopRelease: one op releases one subscriber of a channel with N
// and holds it again (a subscription change on a big channel).
func BenchmarkLoopRelease(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			l, _, subs, _ := benchChannel(n, 1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sub := subs[(i*7919)%n]
				l.release(sub)
				l.hold(sub, func(error) {})
			}
		})
	}
}

// BenchmarkLoopReleaseAll: one op releases every one of the 50,000
// subscribers of a channel, in random order (a drain or a shutdown), then
// holds them again.
func BenchmarkLoopReleaseAll(b *testing.B) {
	const n = 50_000
	l, _, subs, _ := benchChannel(n, 1)
	order := rand.Perm(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, k := range order[:n-1] { // the last would unsubscribe at the Hub
			l.release(subs[k])
		}
		for _, k := range order[:n-1] {
			l.hold(subs[k], func(error) {})
		}
	}
}

// BenchmarkLoopVariants: one op delivers a message to one subscriber of a
// channel whose N subscribers all chose a different extra_fields value, so
// each needs its own encoding, found by key.
func BenchmarkLoopVariants(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			l, _, _, m := benchChannel(n, n)
			b.ResetTimer()
			for done := 0; done < b.N; done += n {
				deliverAll(l, m)
			}
		})
	}
}

// BenchmarkLoopDeliver: one op delivers a message to one subscriber of a
// channel with N subscribers sharing one encoding, chunked as on a loop.
func BenchmarkLoopDeliver(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			l, _, _, m := benchChannel(n, 1)
			b.ResetTimer()
			for done := 0; done < b.N; done += n {
				deliverAll(l, m)
			}
		})
	}
}

// BenchmarkInboxPost: one op is one task posted to a loop's inbox by one of
// GOMAXPROCS posters while the loop takes the queue as it drains.
func BenchmarkInboxPost(b *testing.B) {
	l := &loop{}
	l.in.armed = true // no gnet loop here: the consumer below drains
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.in.mu.Lock()
			l.in.run, l.in.q = l.in.q, l.in.run[:0]
			l.in.mu.Unlock()
			for i := range l.in.run {
				l.in.run[i].fn()
			}
		}
	}()
	fn := func() {}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.post(item{fn: fn})
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
}

// BenchmarkInboxPostLockFree is the alternative weighed for the inbox: a
// Vyukov intrusive MPSC list (one allocation and one atomic swap per post),
// under the same load as BenchmarkInboxPost.
func BenchmarkInboxPostLockFree(b *testing.B) {
	type node struct {
		next atomic.Pointer[node]
		fn   func()
	}
	stub := &node{}
	var head atomic.Pointer[node] // producers swap here
	head.Store(stub)
	tail := stub // consumer only
	push := func(n *node) {
		prev := head.Swap(n)
		prev.next.Store(n)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for next := tail.next.Load(); next != nil; next = tail.next.Load() {
				tail = next
				tail.fn()
			}
		}
	}()
	fn := func() {}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			push(&node{fn: fn})
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
}
