package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

var (
	// ErrRedisUnavailable is reported to done callbacks while Redis is lost.
	// The channel stays desired: it is subscribed once Redis is back, unless
	// the Hub calls Unsubscribe first.
	ErrRedisUnavailable = errors.New("pubsub: redis unavailable")
	// ErrBrokerClosed is reported to done callbacks after Close.
	ErrBrokerClosed = errors.New("pubsub: broker closed")
	// errUnsubscribed resolves a Subscribe that an Unsubscribe overtook
	// before it reached Redis.
	errUnsubscribed = errors.New("pubsub: unsubscribed before acknowledged")
)

// Redis is the Broker backed by Redis pub/sub (standalone, or Redis Cluster
// in classic or sharded mode), wire-compatible with SocketShark: services
// PUBLISH on ChannelPrefix + subscription name.
//
// Design: Subscribe/Unsubscribe only record the desired state of a channel
// and queue it; one goroutine (run) owns the pub/sub connections and
// reconciles the queue in batches — one SUBSCRIBE/UNSUBSCRIBE for many
// channels, followed by a PING. Which channels Redis actually holds is
// learnt from Redis itself: the subscribe/unsubscribe confirmations, read by
// the rueidis pub/sub hooks in stream order. Because the batch's PING reply
// comes after every confirmation the batch caused, when the round trip
// returns the loop sees the server's truth and can fire done(nil) for a
// real acknowledgement, or retry what is still missing. A subscribe racing
// an unsubscribe therefore converges to the last call's intent.
//
// Connections are rueidis dedicated connections with pub/sub hooks, not
// Client.Receive: Receive fixes the channel set per call, while the hooks
// let one connection add and drop channels at will. rueidis does not
// resubscribe a dedicated connection after a reconnect, so this type owns
// reconnection: it notices a broken connection through the hooks' error
// channel (or a missed PING), declares the loss, redials with jittered
// backoff and resubscribes every desired channel.
//
// Payloads passed to the Handler alias rueidis' immutable message string
// (no copy per message): the Handler must not modify them.
type Redis struct {
	opts   RedisOptions
	log    *slog.Logger
	prefix string
	cmd    rueidis.Client // publishes, CLUSTER SLOTS, standalone pub/sub
	// handler is set by Start before any connection exists.
	handler Handler

	kick    chan struct{}
	full    chan struct{}
	broken  chan brokenConn
	closing chan struct{}
	stopped chan struct{}
	started atomic.Bool
	closed  atomic.Bool

	ready   atomic.Bool
	outages atomic.Uint64

	mu        sync.Mutex
	chans     map[string]*rchan // by prefixed channel
	queue     []*rchan
	lost      bool
	lostAt    time.Time
	onLoss    []func()
	onRecover []func()

	// Owned by the run goroutine.
	conns     map[string]*rconn // by node address; "" in standalone/classic mode
	nodes     map[string]rueidis.Client
	slots     []string    // sharded: master address per slot
	topoStale atomic.Bool // set by hooks too
	// topoFrom (guarded by mu) is the node that last dropped one of our
	// shard subscriptions: it has the freshest view of where the slot went
	// (it ran SETSLOT NODE or was demoted), while other nodes may lag
	// until gossip reaches them.
	topoFrom   string
	backoff    time.Duration
	retryAt    time.Time
	retryTimer *time.Timer
	dialSeq    int
}

var _ Broker = (*Redis)(nil)

// NewRedis connects the command client (publishes, topology) and returns a
// broker that starts reading on Start. It fails when Redis cannot be reached
// at all, so a misconfiguration stops start-up instead of looking like an
// outage.
func NewRedis(opts RedisOptions, log *slog.Logger) (*Redis, error) {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	b := &Redis{
		opts:    opts,
		log:     log.With("broker", opts.Name),
		prefix:  opts.ChannelPrefix,
		kick:    make(chan struct{}, 1),
		full:    make(chan struct{}, 1),
		broken:  make(chan brokenConn, 8),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
		chans:   make(map[string]*rchan),
		conns:   make(map[string]*rconn),
		nodes:   make(map[string]rueidis.Client),
		backoff: opts.ReconnectMin,
	}
	co := b.clientOption(opts.Addr)
	if opts.Cluster {
		co.InitAddress = opts.Addrs
		co.ShuffleInit = true
	}
	c, err := rueidis.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.Name, err)
	}
	b.cmd = c
	if opts.Cluster && c.Mode() != rueidis.ClientModeCluster {
		c.Close()
		return nil, fmt.Errorf("%s: cluster: true but %v is not a Redis Cluster", opts.Name, opts.Addrs)
	}
	return b, nil
}

func (b *Redis) clientOption(addr string) rueidis.ClientOption {
	return rueidis.ClientOption{
		InitAddress:  []string{addr},
		Username:     b.opts.Username,
		Password:     b.opts.Password,
		SelectDB:     b.opts.DB,
		TLSConfig:    b.opts.TLS,
		DisableCache: true,
		ClientName:   "mako",
		Dialer:       net.Dialer{Timeout: b.opts.PingTimeout, KeepAlive: 30 * time.Second},
	}
}

// Start begins delivering messages to h. It makes the first pub/sub
// connection before returning so that Ready is meaningful at once; if that
// fails the broker starts in the lost state and keeps trying.
func (b *Redis) Start(h Handler) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("pubsub: Start called twice")
	}
	b.handler = h
	b.retryTimer = time.AfterFunc(time.Hour, b.poke)
	b.retryTimer.Stop()
	if b.opts.Sharded {
		if err := b.refreshTopology(); err != nil {
			// Without a slot map every channel parks and, with nothing
			// wanted yet, checkRecovered would end the outage at once:
			// stale makes step keep asking and holds recovery back.
			b.topoStale.Store(true)
			b.declareLoss(err)
		} else {
			b.ready.Store(true)
		}
	} else if err := b.connectSingle(); err != nil {
		b.declareLoss(err)
	} else {
		b.ready.Store(true)
	}
	go b.run()
	return nil
}

// Ready reports whether every desired channel can currently be delivered.
func (b *Redis) Ready() bool { return b.ready.Load() }

// Outages counts declared losses of Redis since start.
func (b *Redis) Outages() uint64 { return b.outages.Load() }

// OnLoss registers f to run when Redis is lost (broken connection or no
// pong within PingTimeout). OnRecover registers f to run once Redis is back
// and every desired channel is subscribed again. Both run on the broker's
// goroutine: they must not block (the server applies redis.on_loss from
// them). Register before Start.
func (b *Redis) OnLoss(f func()) {
	b.mu.Lock()
	b.onLoss = append(b.onLoss, f)
	b.mu.Unlock()
}

// OnRecover: see OnLoss.
func (b *Redis) OnRecover(f func()) {
	b.mu.Lock()
	b.onRecover = append(b.onRecover, f)
	b.mu.Unlock()
}

// Subscribe asks for channel (without prefix) and reports through done once
// Redis has confirmed the subscription. done(err) does not drop the wish:
// the broker keeps the channel desired (and subscribes it when it can) until
// Unsubscribe.
func (b *Redis) Subscribe(channel string, done func(error)) {
	key := b.prefix + channel
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		done(ErrBrokerClosed)
		return
	}
	rc := b.chans[key]
	if rc == nil {
		rc = &rchan{key: key, name: channel}
		b.chans[key] = rc
	}
	rc.want = true
	switch {
	case b.lost:
		b.enqueueLocked(rc)
		b.mu.Unlock()
		done(ErrRedisUnavailable)
		return
	case rc.on != nil && !rc.inflight && !rc.queued:
		// Still subscribed (an Unsubscribe was not yet acted on).
		b.mu.Unlock()
		done(nil)
		return
	}
	rc.waiters = append(rc.waiters, done)
	b.enqueueLocked(rc)
	b.mu.Unlock()
}

// Unsubscribe drops the wish for channel; the UNSUBSCRIBE goes out with the
// next batch.
func (b *Redis) Unsubscribe(channel string) {
	key := b.prefix + channel
	b.mu.Lock()
	if rc := b.chans[key]; rc != nil && rc.want {
		rc.want = false
		b.enqueueLocked(rc)
	}
	b.mu.Unlock()
}

// Publish sends payload on ChannelPrefix+channel with PUBLISH, or SPUBLISH
// in sharded mode, on the shared (pipelined) command client.
func (b *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	key := b.prefix + channel
	msg := rueidis.BinaryString(payload)
	var cmd rueidis.Completed
	if b.opts.Sharded {
		cmd = b.cmd.B().Spublish().Channel(key).Message(msg).Build()
	} else {
		cmd = b.cmd.B().Publish().Channel(key).Message(msg).Build()
	}
	return b.cmd.Do(ctx, cmd).Error()
}

// Close stops the broker, fails pending done callbacks with ErrBrokerClosed
// and closes every connection.
func (b *Redis) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(b.closing)
	if b.started.Load() {
		<-b.stopped
	}
	b.mu.Lock()
	var waiters []func(error)
	for _, rc := range b.chans {
		waiters = append(waiters, rc.waiters...)
		rc.waiters = nil
	}
	b.mu.Unlock()
	for _, w := range waiters {
		w(ErrBrokerClosed)
	}
	for _, c := range b.conns {
		b.closeConn(c)
	}
	for _, n := range b.nodes {
		n.Close()
	}
	b.cmd.Close()
	b.ready.Store(false)
	return nil
}

// run is the only goroutine that sends on pub/sub connections.
func (b *Redis) run() {
	defer close(b.stopped)
	defer b.retryTimer.Stop()
	var pingC <-chan time.Time
	if b.opts.PingInterval > 0 {
		t := time.NewTicker(b.opts.PingInterval)
		defer t.Stop()
		pingC = t.C
	}
	window := time.NewTimer(time.Hour)
	window.Stop()
	for {
		b.step()
		b.mu.Lock()
		pending := len(b.queue)
		b.mu.Unlock()
		if pending == 0 {
			select {
			case <-b.closing:
				return
			case <-b.kick:
			case bc := <-b.broken:
				b.connBroken(bc.c, bc.err)
				continue
			case <-pingC:
				b.ping()
				continue
			}
		}
		// Let more changes join this batch unless it is already full.
		b.mu.Lock()
		pending = len(b.queue)
		b.mu.Unlock()
		if pending > 0 && pending < b.opts.BatchMax {
			window.Reset(b.opts.BatchWindow)
			select {
			case <-b.closing:
				return
			case <-window.C:
			case <-b.full:
				window.Stop()
			}
		}
	}
}

// step brings connections up if it is time, then reconciles the queue.
func (b *Redis) step() {
	if b.closed.Load() {
		return
	}
	now := time.Now()
	if now.Before(b.retryAt) {
		// Reconnect/refresh back-off running; queued channels wait parked.
	} else if b.opts.Sharded {
		if b.topoStale.Load() {
			if err := b.refreshTopology(); err != nil {
				b.log.Warn("redis cluster topology refresh failed", "err", err)
				b.retryLater()
			} else {
				b.requeueMissing()
			}
		}
	} else if b.conns[""] == nil {
		if err := b.connectSingle(); err != nil {
			b.declareLoss(err)
			b.log.Warn("redis reconnect failed", "err", err, "retry_in", b.backoff)
			b.retryLater()
		} else {
			b.backoff = b.opts.ReconnectMin
			b.requeueMissing()
		}
	}
	b.reconcile()
	b.checkRecovered()
}
