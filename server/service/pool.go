package service

import (
	"context"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
)

// Pool runs service calls for the event loops. Submit never blocks, so a
// loop hands a call over and moves on; the pool bounds the calls in flight
// overall (workers) and per service (perService), so a reconnect storm
// queues here instead of flattening a backend.
//
// Each service's wait queue is bounded (maxQueued): past it Submit refuses
// at once, so a service that stops answering costs a bounded amount of
// memory and its callers a quick "Service unavailable." instead of an
// ever-growing backlog.
//
// Goroutines exist only while there is work: one per running fn, started on
// demand up to the limits and gone when nothing is queued, so an idle server
// holds none. Services waiting for a free worker take turns (round robin),
// so one busy service cannot starve the others.
//
// Close does not stop Submit: shutdown submits the close callbacks of every
// session after deciding to stop, and those must still run. Close only
// waits for the queue to drain.
type Pool struct {
	workers, perService, maxQueued int

	mu       sync.Mutex
	running  int
	queued   int
	services map[string]*serviceQueue // kept when empty: names come from the config
	runnable fifo[*serviceQueue]      // services with queued fns and room under perService
	idle     chan struct{}            // closed when running and queued reach 0; nil unless Close waits
}

type serviceQueue struct {
	name     string
	fns      fifo[func()]
	running  int
	runnable bool   // in Pool.runnable
	refused  uint64 // Submits refused because fns was full
}

// NewPool returns a pool running at most workers fns at once and at most
// perService of one service, with at most maxQueued fns of one service
// waiting for a worker. workers < 1 counts as 1; perService < 1 or above
// workers counts as workers; maxQueued < 0 counts as 0 (a fn that cannot
// start at once is refused).
func NewPool(workers, perService, maxQueued int) *Pool {
	workers = max(workers, 1)
	if perService < 1 || perService > workers {
		perService = workers
	}
	return &Pool{workers: workers, perService: perService, maxQueued: max(maxQueued, 0), services: make(map[string]*serviceQueue)}
}

// Submit queues fn for service and returns true at once, or returns false
// without queuing when maxQueued fns of service are already waiting (fn
// will never run; the caller answers for it). fns of one service start in
// submit order. It still queues after Close has begun (see Pool).
func (p *Pool) Submit(service string, fn func()) bool {
	return p.submit(service, fn, false)
}

// SubmitOwed queues fn like Submit but is never refused: it is for calls
// owed to a service after the client was answered (on_subscribe after the
// ok, the unsubscribe callbacks of a closing session), which have no one to
// tell about a refusal. They are bounded by the subscriptions that exist,
// each having at most one such call at a time.
func (p *Pool) SubmitOwed(service string, fn func()) {
	p.submit(service, fn, true)
}

func (p *Pool) submit(service string, fn func(), owed bool) bool {
	p.mu.Lock()
	s := p.services[service]
	if s == nil {
		s = &serviceQueue{name: service}
		p.services[service] = s
	}
	// A fn that would start at once never waits, so it is not counted
	// against the queue: with maxQueued 0 the pool still runs calls.
	startsNow := s.running < p.perService && p.running < p.workers && s.fns.len() == 0 && p.runnable.len() == 0
	if !owed && !startsNow && s.fns.len() >= p.maxQueued {
		s.refused++
		p.mu.Unlock()
		return false
	}
	s.fns.push(fn)
	p.queued++
	p.markRunnable(s)
	s, fn = p.nextLocked()
	p.mu.Unlock()
	if fn != nil {
		go p.run(s, fn)
	}
	return true
}

// markRunnable queues s for a worker when it has work and room.
func (p *Pool) markRunnable(s *serviceQueue) {
	if !s.runnable && s.fns.len() > 0 && s.running < p.perService {
		s.runnable = true
		p.runnable.push(s)
	}
}

// nextLocked takes the next fn to start when a worker slot is free, or
// returns nil fn.
func (p *Pool) nextLocked() (*serviceQueue, func()) {
	if p.running >= p.workers || p.runnable.len() == 0 {
		return nil, nil
	}
	s := p.runnable.pop()
	s.runnable = false
	fn := s.fns.pop()
	s.running++
	p.running++
	p.queued--
	p.markRunnable(s) // to the back: services take turns
	return s, fn
}

// run executes fn and then whatever is next, so a burst reuses goroutines
// instead of spawning one per fn.
func (p *Pool) run(s *serviceQueue, fn func()) {
	for fn != nil {
		p.call(s.name, fn)
		p.mu.Lock()
		s.running--
		p.running--
		p.markRunnable(s)
		s, fn = p.nextLocked()
		if fn == nil && p.running == 0 && p.queued == 0 && p.idle != nil {
			close(p.idle)
			p.idle = nil
		}
		p.mu.Unlock()
	}
}

// call runs fn so that a panic cannot leak a worker slot: the pool's counts
// must stay right or every later call of the service would queue forever.
func (p *Pool) call(service string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			slog.Error("service pool: task panicked", "service", service, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// Close waits until every queued and running fn has finished, or ctx is
// done (then it returns ctx's error; the remaining fns still run).
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.running == 0 && p.queued == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats reports the fns running and those waiting.
func (p *Pool) Stats() (running, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, p.queued
}

// ServiceStats is one service's share of the pool.
type ServiceStats struct {
	Name    string
	Running int    // fns running now
	Queued  int    // fns waiting for a worker, at most the pool's maxQueued
	Refused uint64 // Submits refused because the queue was full, since start
}

// ServiceStats reports every service that has submitted a fn, by name.
func (p *Pool) ServiceStats() []ServiceStats {
	p.mu.Lock()
	out := make([]ServiceStats, 0, len(p.services))
	for _, s := range p.services {
		out = append(out, ServiceStats{Name: s.name, Running: s.running, Queued: s.fns.len(), Refused: s.refused})
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b ServiceStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// fifo is a slice-backed queue whose consumed head is reclaimed once it is
// half the slice, so a long-lived queue does not grow without bound.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }

func (q *fifo[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head >= 32 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return v
}
