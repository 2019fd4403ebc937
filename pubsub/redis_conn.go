package pubsub

// The pub/sub connections' life: dialling, the rueidis hooks that report
// Redis' confirmations, liveness pings, and the loss/recovery state machine.
// rueidis does not resubscribe a dedicated connection after a reconnect, so
// everything that decides when Redis is "lost" or "back" lives here, and is
// run on the broker's goroutine except the hooks.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/rueidis"
)

// rconn is one pub/sub connection. dead marks it abandoned, so a hook call
// or a second broken report arriving late cannot touch channel state.
type rconn struct {
	addr   string
	dc     rueidis.DedicatedClient
	cancel func()
	dead   bool // guarded by Redis.mu
}

type brokenConn struct {
	c   *rconn
	err error
}

// retryLater schedules the next connection attempt with exponential backoff
// and full jitter, so a fleet of mako nodes does not reconnect in lockstep.
func (b *Redis) retryLater() {
	d := b.backoff/2 + rand.N(b.backoff/2+1)
	b.retryAt = time.Now().Add(d)
	b.retryTimer.Reset(d)
	b.backoff = min(b.backoff*2, b.opts.ReconnectMax)
}

// connectSingle opens the one pub/sub connection of standalone and classic
// cluster mode. In classic cluster mode any node will do (PUBLISH is
// broadcast to every node); successive attempts rotate through the nodes.
func (b *Redis) connectSingle() error {
	client := b.cmd
	addr := b.opts.Addr
	if b.opts.Cluster {
		addrs := b.clusterNodeAddrs()
		if len(addrs) == 0 {
			return errors.New("no cluster node known")
		}
		addr = addrs[b.dialSeq%len(addrs)]
		b.dialSeq++
		var err error
		if client, err = b.nodeClient(addr); err != nil {
			return err
		}
	}
	c, err := b.dial(addr, client)
	if err != nil {
		return err
	}
	c.addr = ""
	b.conns[""] = c
	return nil
}

// dial takes a dedicated connection from client, installs the hooks and
// proves the connection with a PING.
func (b *Redis) dial(addr string, client rueidis.Client) (*rconn, error) {
	dc, cancel := client.Dedicate()
	c := &rconn{addr: addr, dc: dc, cancel: cancel}
	h := b.handler
	prefix := b.prefix
	errs := dc.SetPubSubHooks(rueidis.PubSubHooks{
		// Runs on rueidis' reader goroutine: no locks, no allocation
		// beyond what the Handler does.
		OnMessage: func(m rueidis.PubSubMessage) {
			ch := m.Channel
			if len(ch) < len(prefix) || ch[:len(prefix)] != prefix {
				return
			}
			h(ch[len(prefix):], unsafe.Slice(unsafe.StringData(m.Message), len(m.Message)), time.Now())
		},
		OnSubscription: func(s rueidis.PubSubSubscription) { b.onSubscription(c, s) },
	})
	ctx, cf := context.WithTimeout(context.Background(), b.opts.PingTimeout)
	err := dc.Do(ctx, dc.B().Ping().Build()).Error()
	cf()
	if err != nil {
		dc.Close()
		cancel()
		return nil, err
	}
	go func() {
		var err error
		for e := range errs {
			err = e
		}
		if err == nil {
			err = errors.New("pub/sub connection closed")
		}
		select {
		case b.broken <- brokenConn{c, err}:
		case <-b.closing:
		}
	}()
	return c, nil
}

// onSubscription records Redis' confirmations; it runs on the reader
// goroutine in stream order, so the last confirmation seen for a channel is
// the server's state for it on this connection.
func (b *Redis) onSubscription(c *rconn, s rueidis.PubSubSubscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rc := b.chans[s.Channel]
	if rc == nil || c.dead {
		return
	}
	switch s.Kind {
	case "subscribe", "ssubscribe":
		rc.on = c
	case "unsubscribe", "sunsubscribe":
		if rc.on != c {
			return
		}
		rc.on = nil
		if rc.want && !rc.inflight {
			// Redis dropped it on its own: the slot moved (sharded).
			if b.opts.Sharded {
				b.topoFrom = c.addr
				b.topoStale.Store(true)
			}
			b.enqueueLocked(rc)
		}
	}
}

func (b *Redis) closeConn(c *rconn) {
	b.mu.Lock()
	c.dead = true
	b.mu.Unlock()
	c.dc.Close()
	c.cancel()
}

// connBroken forgets everything Redis held for us on c and declares the
// loss; the next step reconnects (with backoff) and resubscribes.
func (b *Redis) connBroken(c *rconn, err error) {
	b.mu.Lock()
	if c.dead {
		b.mu.Unlock()
		return
	}
	c.dead = true
	held := 0
	for _, rc := range b.chans {
		if rc.on == c {
			rc.on = nil
			held++
			b.enqueueLocked(rc)
		}
	}
	b.mu.Unlock()
	c.dc.Close()
	c.cancel()
	for k, v := range b.conns {
		if v == c {
			delete(b.conns, k)
		}
	}
	if b.opts.Sharded && held == 0 {
		// A node that no longer serves any of our channels (a demoted
		// master, say) going away loses nothing.
		b.log.Debug("idle redis cluster connection closed", "addr", c.addr, "err", err)
		return
	}
	b.log.Warn("redis pub/sub connection lost", "addr", c.addr, "err", err, "channels", held)
	b.declareLoss(err)
	if b.opts.Sharded {
		b.topoStale.Store(true)
	}
	if b.retryAt.Before(time.Now()) {
		// Reconnect at once the first time; back off only on failures.
		b.retryAt = time.Time{}
	}
}

// declareLoss flips to the lost state once per outage, fails pending done
// callbacks and runs the OnLoss callbacks.
func (b *Redis) declareLoss(err error) {
	b.mu.Lock()
	if b.lost {
		b.mu.Unlock()
		return
	}
	b.lost = true
	b.lostAt = time.Now()
	b.ready.Store(false)
	b.outages.Add(1)
	var waiters []func(error)
	for _, rc := range b.chans {
		waiters = append(waiters, rc.waiters...)
		rc.waiters = nil
	}
	cbs := slices.Clone(b.onLoss)
	b.mu.Unlock()
	b.log.Error("redis lost", "err", err)
	for _, w := range waiters {
		w(ErrRedisUnavailable)
	}
	for _, f := range cbs {
		f()
	}
}

// checkRecovered ends an outage once connections are up and every desired
// channel is confirmed again.
func (b *Redis) checkRecovered() {
	b.mu.Lock()
	if !b.lost || (!b.opts.Sharded && b.conns[""] == nil) || (b.opts.Sharded && b.topoStale.Load()) {
		b.mu.Unlock()
		return
	}
	n := 0
	for _, rc := range b.chans {
		if rc.want && rc.on == nil {
			b.mu.Unlock()
			return
		}
		if rc.want {
			n++
		}
	}
	b.lost = false
	b.backoff = b.opts.ReconnectMin
	outage := time.Since(b.lostAt)
	b.ready.Store(true)
	cbs := slices.Clone(b.onRecover)
	b.mu.Unlock()
	b.log.Info("redis recovered", "outage", outage, "resubscribed", n)
	for _, f := range cbs {
		f()
	}
}

func (b *Redis) ping() {
	var cs []*rconn
	for _, c := range b.conns {
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		if b.opts.Sharded {
			ctx, cf := context.WithTimeout(context.Background(), b.opts.PingTimeout)
			err := b.cmd.Do(ctx, b.cmd.B().Ping().Build()).Error()
			cf()
			if err != nil {
				b.declareLoss(err)
				b.topoStale.Store(true)
			}
		}
		return
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			ctx, cf := context.WithTimeout(context.Background(), b.opts.PingTimeout)
			errs[i] = c.dc.Do(ctx, c.dc.B().Ping().Build()).Error()
			cf()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.connBroken(cs[i], fmt.Errorf("ping: %w", err))
		}
	}
}
