package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

func (b *Redis) clusterNodeAddrs() []string {
	var addrs []string
	for a := range b.cmd.Nodes() {
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		addrs = append(addrs, b.opts.Addrs...)
	}
	slices.Sort(addrs)
	return addrs
}

// nodeClient returns a client bound to one cluster node (for SSUBSCRIBE on
// the slot owner, which the cluster client's dedicated connections cannot
// do for channels of many slots).
func (b *Redis) nodeClient(addr string) (rueidis.Client, error) {
	if c := b.nodes[addr]; c != nil {
		return c, nil
	}
	co := b.clientOption(addr)
	co.ForceSingleClient = true
	c, err := rueidis.NewClient(co)
	if err != nil {
		return nil, err
	}
	b.nodes[addr] = c
	return c, nil
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

// refreshTopology reads CLUSTER SLOTS into the slot → master map.
func (b *Redis) refreshTopology() error {
	ctx, cf := context.WithTimeout(context.Background(), b.opts.CommandTimeout)
	defer cf()
	b.mu.Lock()
	from := b.topoFrom
	b.topoFrom = ""
	b.mu.Unlock()
	// Ask that node first, then every other known node: the cluster
	// client alone may route to the very node that just died.
	var ranges []rueidis.RedisMessage
	err := errors.New("no cluster node known")
	clients := []rueidis.Client{b.nodes[from]}
	for _, n := range b.cmd.Nodes() {
		clients = append(clients, n)
	}
	for _, n := range clients {
		if n == nil {
			continue
		}
		if ranges, err = n.Do(ctx, n.B().ClusterSlots().Build()).ToArray(); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	slots := make([]string, 16384)
	for _, r := range ranges {
		v, err := r.ToArray()
		if err != nil || len(v) < 3 {
			continue
		}
		lo, _ := v[0].AsInt64()
		hi, _ := v[1].AsInt64()
		node, _ := v[2].ToArray()
		if len(node) < 2 || lo < 0 || hi >= 16384 {
			continue
		}
		host, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		if host == "" {
			host, _, _ = net.SplitHostPort(b.opts.Addrs[0])
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		for s := lo; s <= hi; s++ {
			slots[s] = addr
		}
	}
	b.slots = slots
	b.topoStale.Store(false)
	b.log.Debug("redis cluster topology refreshed", "asked", from)
	return nil
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
