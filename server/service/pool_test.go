package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gauge tracks how many fns run at once and the highest count seen.
type gauge struct{ cur, peak atomic.Int32 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

func closePool(t *testing.T, p *Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPoolPerServiceLimit(t *testing.T) {
	p := NewPool(100, 3, 1<<20)
	var a, b gauge
	var done atomic.Int32
	for i := range 200 {
		g, name := &a, "a"
		if i%2 == 1 {
			g, name = &b, "b"
		}
		p.Submit(name, func() {
			g.enter()
			time.Sleep(200 * time.Microsecond)
			g.leave()
			done.Add(1)
		})
	}
	closePool(t, p)
	if done.Load() != 200 {
		t.Fatalf("%d ran", done.Load())
	}
	if a.peak.Load() > 3 || b.peak.Load() > 3 {
		t.Errorf("peaks %d %d, limit 3", a.peak.Load(), b.peak.Load())
	}
	if a.peak.Load() < 2 {
		t.Errorf("peak %d: the limit was never used", a.peak.Load())
	}
}

func TestPoolGlobalLimit(t *testing.T) {
	p := NewPool(4, 3, 1<<20)
	var all gauge
	per := make([]gauge, 10)
	for i := range 200 {
		s := i % 10
		p.Submit(fmt.Sprint("svc", s), func() {
			all.enter()
			per[s].enter()
			time.Sleep(100 * time.Microsecond)
			per[s].leave()
			all.leave()
		})
	}
	closePool(t, p)
	if all.peak.Load() > 4 {
		t.Errorf("global peak %d, limit 4", all.peak.Load())
	}
	for i := range per {
		if per[i].peak.Load() > 3 {
			t.Errorf("svc%d peak %d", i, per[i].peak.Load())
		}
	}
	if r, q := p.Stats(); r != 0 || q != 0 {
		t.Errorf("stats after close: %d running %d queued", r, q)
	}
}

func TestPoolFIFO(t *testing.T) {
	p := NewPool(8, 1, 1<<20)
	var mu sync.Mutex
	got := map[string][]int{}
	for i := range 1000 {
		name := fmt.Sprint("s", i%3)
		p.Submit(name, func() {
			mu.Lock()
			got[name] = append(got[name], i)
			mu.Unlock()
		})
	}
	closePool(t, p)
	for name, seq := range got {
		for j := 1; j < len(seq); j++ {
			if seq[j] < seq[j-1] {
				t.Fatalf("%s ran %d after %d", name, seq[j], seq[j-1])
			}
		}
	}
}

func TestPoolSubmitNeverBlocks(t *testing.T) {
	p := NewPool(1, 1, 1<<20)
	release := make(chan struct{})
	var ran atomic.Int32
	p.Submit("a", func() { <-release; ran.Add(1) })

	start := time.Now()
	for i := range 10000 {
		p.Submit(fmt.Sprint("s", i%4), func() { ran.Add(1) })
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("10000 submits took %v", el)
	}
	if r, q := p.Stats(); r != 1 || q != 10000 {
		t.Errorf("stats %d running %d queued", r, q)
	}

	// Close waits for queued work, and an expired ctx says so.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close with blocked work: %v", err)
	}
	close(release)
	closePool(t, p)
	if ran.Load() != 10001 {
		t.Errorf("%d ran", ran.Load())
	}
}

func TestPoolCloseWaitsAndStillAccepts(t *testing.T) {
	p := NewPool(2, 2, 1<<20)
	var ran atomic.Int32
	for range 50 {
		p.Submit("a", func() {
			time.Sleep(time.Millisecond)
			ran.Add(1)
		})
	}
	closed := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	// Shutdown's close callbacks arrive after Close has begun.
	p.Submit("b", func() { ran.Add(1) })
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 51 {
		t.Errorf("%d ran after Close, want 51", ran.Load())
	}
	closePool(t, p) // idle: returns at once
}

func TestPoolPanic(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	p := NewPool(1, 1, 1<<20)
	var ran atomic.Int32
	p.Submit("a", func() { panic("boom") })
	p.Submit("a", func() { ran.Add(1) })
	closePool(t, p)
	if ran.Load() != 1 {
		t.Error("the pool stopped after a panic")
	}
}

func TestPoolGoroutinesExit(t *testing.T) {
	p := NewPool(4, 4, 1<<20)
	for range 100 {
		p.Submit("a", func() {})
	}
	closePool(t, p)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running != 0 || p.runnable.len() != 0 {
		t.Errorf("running %d runnable %d", p.running, p.runnable.len())
	}
}

func TestFIFOCompacts(t *testing.T) {
	var q fifo[int]
	want := 0
	for i := range 1000 {
		q.push(i)
		if i%3 == 0 {
			if v := q.pop(); v != want {
				t.Fatalf("pop %d, want %d", v, want)
			}
			want++
		}
	}
	for q.len() > 0 {
		if v := q.pop(); v != want {
			t.Fatalf("pop %d, want %d", v, want)
		}
		want++
	}
	if want != 1000 || cap(q.items) > 2048 {
		t.Errorf("ended at %d, cap %d", want, cap(q.items))
	}
}

// Each service's wait queue holds at most maxQueued fns; past it Submit
// refuses at once and the refused fn never runs. Other services keep their
// own room, and a fn that can start at once is never refused.
func TestPoolQueueBound(t *testing.T) {
	p := NewPool(4, 2, 3)
	release := make(chan struct{})
	var ran atomic.Int32
	fn := func() { <-release; ran.Add(1) }
	accepted := 0
	for range 10 {
		if p.Submit("slow", fn) {
			accepted++
		}
	}
	// 2 running (perService) + 3 waiting.
	if accepted != 5 {
		t.Errorf("accepted %d of 10, want 5", accepted)
	}
	if !p.Submit("other", fn) {
		t.Error("another service refused")
	}
	st := p.ServiceStats()
	if len(st) != 2 || st[0] != (ServiceStats{Name: "other", Running: 1}) || st[1] != (ServiceStats{Name: "slow", Running: 2, Queued: 3, Refused: 5}) {
		t.Errorf("service stats %+v", st)
	}
	close(release)
	closePool(t, p)
	if ran.Load() != 6 {
		t.Errorf("%d ran, want 6", ran.Load())
	}
	// The queue drained: there is room again.
	if !p.Submit("slow", func() {}) {
		t.Error("refused after draining")
	}
	closePool(t, p)

	zero := NewPool(1, 1, 0)
	block := make(chan struct{})
	if !zero.Submit("a", func() { <-block }) {
		t.Error("maxQueued 0 refused a fn that could start at once")
	}
	if zero.Submit("a", func() {}) {
		t.Error("maxQueued 0 queued a fn")
	}
	close(block)
	closePool(t, zero)
}
