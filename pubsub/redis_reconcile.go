package pubsub

// Desired state and its reconciliation: Subscribe/Unsubscribe only queue a
// channel; the broker's goroutine turns the queue into batched
// (S)SUBSCRIBE/(S)UNSUBSCRIBE round trips and settles them against what Redis
// confirmed, which is where done callbacks fire and retries are scheduled.

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// rchan is one channel's desired and actual state. want is what the Hub
// asked for; on is the connection Redis confirmed the subscription on
// (maintained by the hooks from Redis' own confirmations).
type rchan struct {
	key      string // prefixed, as Redis names it
	name     string // as the Hub names it
	want     bool
	queued   bool
	inflight bool
	on       *rconn
	waiters  []func(error)
	failures int
}

func (b *Redis) enqueueLocked(rc *rchan) {
	if rc.queued {
		return
	}
	rc.queued = true
	b.queue = append(b.queue, rc)
	switch len(b.queue) {
	case 1:
		b.poke()
	case b.opts.BatchMax:
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

func (b *Redis) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// requeueMissing queues every desired channel Redis does not hold, after a
// (re)connect or topology change.
func (b *Redis) requeueMissing() {
	b.mu.Lock()
	for _, rc := range b.chans {
		if rc.want && rc.on == nil {
			b.enqueueLocked(rc)
		}
	}
	b.mu.Unlock()
}

// batch is what one round trip sends on one connection.
type batch struct {
	c     *rconn
	sub   [][]*rchan // one command each
	unsub [][]*rchan
	res   []rueidis.RedisResult
}

func (b *Redis) reconcile() {
	b.mu.Lock()
	q := b.queue
	b.queue = nil
	for _, rc := range q {
		rc.queued = false
	}
	b.mu.Unlock()
	if len(q) == 0 {
		return
	}

	// Sharded: make sure the owners of wanted channels are connected,
	// without holding the lock while dialling.
	if b.opts.Sharded && b.slots != nil {
		for _, rc := range q {
			addr := b.slots[redisSlot(rc.key)]
			if addr == "" || b.conns[addr] != nil || b.topoStale.Load() {
				continue
			}
			if time.Now().Before(b.retryAt) {
				break
			}
			nc, err := b.nodeClient(addr)
			var c *rconn
			if err == nil {
				c, err = b.dial(addr, nc)
			}
			if err != nil {
				b.log.Warn("redis cluster node unreachable", "addr", addr, "err", err)
				b.declareLoss(err)
				b.topoStale.Store(true)
				b.retryLater()
				break
			}
			b.conns[addr] = c
		}
	}

	var fire []func()
	batches := map[*rconn]*batch{}
	get := func(c *rconn) *batch {
		bt := batches[c]
		if bt == nil {
			bt = &batch{c: c}
			batches[c] = bt
		}
		return bt
	}
	subs := map[*rconn]map[uint16][]*rchan{}
	unsubs := map[*rconn]map[uint16][]*rchan{}
	add := func(m map[*rconn]map[uint16][]*rchan, c *rconn, rc *rchan) {
		var slot uint16
		if b.opts.Sharded {
			slot = redisSlot(rc.key)
		}
		if m[c] == nil {
			m[c] = map[uint16][]*rchan{}
		}
		m[c][slot] = append(m[c][slot], rc)
		rc.inflight = true
	}

	b.mu.Lock()
	for _, rc := range q {
		if rc.queued || rc.inflight || b.chans[rc.key] != rc {
			continue // requeued meanwhile, or a forgotten entry
		}
		switch {
		case rc.want && rc.on != nil:
			fire = appendWaiters(fire, rc, nil)
		case rc.want:
			if c := b.targetLocked(rc); c != nil {
				add(subs, c, rc)
			} else if b.opts.Sharded && b.slots != nil && !b.topoStale.Load() && b.slots[redisSlot(rc.key)] == "" {
				// No master owns the slot (mid-reshard, or part of the
				// cluster down): re-read the topology and retry, as
				// CLUSTERDOWN is retried, instead of parking forever.
				b.topoStale.Store(true)
				b.retryChanLocked(rc)
			} // else parked until a connection comes up (requeueMissing)
		case rc.on != nil:
			add(unsubs, rc.on, rc)
		default:
			fire = appendWaiters(fire, rc, errUnsubscribed)
			delete(b.chans, rc.key)
		}
	}
	b.mu.Unlock()
	for _, f := range fire {
		f()
	}

	for c, bySlot := range subs {
		for _, rcs := range bySlot {
			for chunk := range slices.Chunk(rcs, b.opts.BatchMax) {
				get(c).sub = append(get(c).sub, chunk)
			}
		}
	}
	for c, bySlot := range unsubs {
		for _, rcs := range bySlot {
			for chunk := range slices.Chunk(rcs, b.opts.BatchMax) {
				get(c).unsub = append(get(c).unsub, chunk)
			}
		}
	}
	if len(batches) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, bt := range batches {
		wg.Go(func() { b.send(bt) })
	}
	wg.Wait()
	for _, bt := range batches {
		b.settle(bt)
	}
}

func appendWaiters(fire []func(), rc *rchan, err error) []func() {
	for _, w := range rc.waiters {
		fire = append(fire, func() { w(err) })
	}
	rc.waiters = nil
	return fire
}

// targetLocked is the live connection a wanted channel belongs on, or nil.
func (b *Redis) targetLocked(rc *rchan) *rconn {
	addr := ""
	if b.opts.Sharded {
		if b.slots == nil || b.topoStale.Load() {
			return nil
		}
		addr = b.slots[redisSlot(rc.key)]
	}
	c := b.conns[addr]
	if c == nil || c.dead {
		return nil
	}
	return c
}

// send runs one batch as a single round trip. The trailing PING's reply
// arrives after every confirmation the batch caused, so once DoMulti
// returns the hooks have recorded all of them.
func (b *Redis) send(bt *batch) {
	dc := bt.c.dc
	cmds := make(rueidis.Commands, 0, len(bt.sub)+len(bt.unsub)+1)
	names := func(rcs []*rchan) []string {
		out := make([]string, len(rcs))
		for i, rc := range rcs {
			out[i] = rc.key
		}
		return out
	}
	for _, rcs := range bt.sub {
		if b.opts.Sharded {
			cmds = append(cmds, dc.B().Ssubscribe().Channel(names(rcs)...).Build())
		} else {
			cmds = append(cmds, dc.B().Subscribe().Channel(names(rcs)...).Build())
		}
	}
	for _, rcs := range bt.unsub {
		if b.opts.Sharded {
			cmds = append(cmds, dc.B().Sunsubscribe().Channel(names(rcs)...).Build())
		} else {
			cmds = append(cmds, dc.B().Unsubscribe().Channel(names(rcs)...).Build())
		}
	}
	cmds = append(cmds, dc.B().Ping().Build())
	ctx, cf := context.WithTimeout(context.Background(), b.opts.CommandTimeout)
	bt.res = dc.DoMulti(ctx, cmds...)
	cf()
}

// settle compares what Redis confirmed with what is wanted, fires done
// callbacks and schedules retries.
func (b *Redis) settle(bt *batch) {
	var fire []func()
	var broken error
	b.mu.Lock()
	for i, rcs := range bt.sub {
		err := bt.res[i].Error()
		if err != nil && !isRedisErr(err) {
			broken = err
		}
		for _, rc := range rcs {
			rc.inflight = false
			switch {
			case !rc.want:
				// Overtaken by Unsubscribe: reconcile again to release it.
				fire = appendWaiters(fire, rc, nil)
				b.enqueueLocked(rc)
			case rc.on != nil:
				rc.failures = 0
				fire = appendWaiters(fire, rc, nil)
			case err == nil:
				// Confirmed then dropped by Redis (slot moved).
				if b.opts.Sharded {
					b.topoStale.Store(true)
				}
				b.retryChanLocked(rc)
			case broken != nil:
				b.enqueueLocked(rc) // parks until reconnect
			default:
				b.subscribeFailedLocked(rc, err, &fire)
			}
		}
	}
	for j, rcs := range bt.unsub {
		err := bt.res[len(bt.sub)+j].Error()
		if err != nil && !isRedisErr(err) {
			broken = err
		}
		for _, rc := range rcs {
			rc.inflight = false
			switch {
			case rc.want || rc.on != nil:
				b.enqueueLocked(rc)
			case !rc.queued:
				// A Subscribe that came and went while the channel
				// was still held has nothing left to wait for.
				fire = appendWaiters(fire, rc, errUnsubscribed)
				delete(b.chans, rc.key)
			}
		}
	}
	if err := bt.res[len(bt.res)-1].Error(); err != nil && broken == nil {
		broken = err
	}
	b.mu.Unlock()
	for _, f := range fire {
		f()
	}
	if broken != nil {
		b.connBroken(bt.c, broken)
	}
}

// subscribeFailedLocked handles a Redis error reply to (S)SUBSCRIBE.
// Redirections and cluster hiccups are retried quietly; anything else
// (e.g. NOPERM) fails the waiting callbacks and is retried with backoff.
func (b *Redis) subscribeFailedLocked(rc *rchan, err error, fire *[]func()) {
	if re, ok := rueidis.IsRedisErr(err); ok {
		b.log.Debug("redis subscribe redirected", "channel", rc.key, "err", err)
		if addr, moved := re.IsMoved(); moved && b.opts.Sharded && b.slots != nil {
			b.slots[redisSlot(rc.key)] = addr
			b.retryChanLocked(rc)
			return
		}
		if _, ask := re.IsAsk(); ask || re.IsTryAgain() || re.IsClusterDown() || re.IsLoading() {
			if b.opts.Sharded {
				b.topoStale.Store(true)
			}
			b.retryChanLocked(rc)
			return
		}
	}
	if rc.failures == 0 {
		b.log.Warn("redis subscribe refused", "channel", rc.key, "err", err)
	}
	*fire = appendWaiters(*fire, rc, err)
	b.retryChanLocked(rc)
}

// retryChanLocked requeues rc after a per-channel backoff, so a channel
// that keeps failing does not spin the loop.
func (b *Redis) retryChanLocked(rc *rchan) {
	rc.failures++
	if rc.failures == 1 {
		b.enqueueLocked(rc)
		return
	}
	d := min(b.opts.ReconnectMin<<min(rc.failures-2, 16), b.opts.ReconnectMax)
	d = d/2 + rand.N(d/2+1)
	time.AfterFunc(d, func() {
		b.mu.Lock()
		if !b.closed.Load() && b.chans[rc.key] == rc {
			b.enqueueLocked(rc)
		}
		b.mu.Unlock()
	})
}

func isRedisErr(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok
}
