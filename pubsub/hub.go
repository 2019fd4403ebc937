package pubsub

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mako/protocol"
)

// Message is one inbound message, decoded once by its fan-out worker and
// shared read-only by every event loop that has subscribers on Channel.
type Message struct {
	Channel    string
	Pub        *protocol.Published
	ReceivedAt time.Time
	// QueueSize is how many messages were waiting on the fan-out worker
	// when this one arrived (SocketShark's queue_size).
	QueueSize int
}

// Sink is one event loop's receiving end. Its methods are called from a
// fan-out worker and must not block: they post to the loop, which owns the
// arguments from then on. Messages of one channel appear in publish order,
// and a Gap comes after every message accepted before the loss it reports.
type Sink interface {
	Deliver(ms []*Message)
	// Gap reports that messages of some channels this loop holds were
	// dropped because a fan-out queue was full: every session holding
	// one of them (g.Covers) must be closed, because it would otherwise
	// stay open having silently missed messages.
	Gap(g *Gap)
}

// Gap is a loss of messages on one fan-out worker, reported to each loop
// holding an affected channel once the messages queued before the loss
// have been delivered.
type Gap struct {
	// Channels that lost messages (those this loop held when the gap was
	// reported). Empty when All.
	Channels []string
	// All: the worker's set of gapped channels outgrew
	// limits.max_gapped_channels, so the loss is not known per channel:
	// every channel the worker carries is affected.
	All    bool
	Worker int

	hub *Hub
}

// Covers reports whether channel lost messages in this gap.
func (g *Gap) Covers(channel string) bool {
	if g.All {
		return g.hub.Worker(channel) == g.Worker
	}
	for _, c := range g.Channels {
		if c == channel {
			return true
		}
	}
	return false
}

// ErrFanoutFull is Publish's error when the channel's fan-out queue is
// over limits.max_fanout_queue_bytes: the message was not accepted, and the
// publisher may retry.
var ErrFanoutFull = errors.New("fan-out queue full")

const hubShards = 64

// Hub counts which event loops hold each channel and fans messages out.
//
// Loops report only their own transitions (first local subscriber of a
// channel on that loop, last one gone), so the Hub's state is small: per
// channel, the set of loop ids. The broker is told about a channel's first
// and last loop under the shard lock, which keeps a subscribe and a racing
// unsubscribe of one channel in order at the broker.
type Hub struct {
	broker  Broker
	log     *slog.Logger
	seed    maphash.Seed
	shards  [hubShards]hubShard
	workers []*fanout

	sinkMu sync.RWMutex
	sinks  []Sink
}

type hubShard struct {
	mu       sync.RWMutex
	channels map[string]*channelState
}

type channelState struct {
	loops []int // ids of loops holding the channel; tiny (≤ cores)

	// mu guards the ack state only; the broker may call done from any
	// goroutine, including synchronously inside Subscribe (shard lock held),
	// so ack handling never takes the shard lock.
	mu      sync.Mutex
	acked   bool
	err     error
	waiters []func(error)
}

// NewHub wires a broker to fan-out workers. workers ≤ 0 means 4.
func NewHub(b Broker, workers int, log *slog.Logger) *Hub {
	if workers <= 0 {
		workers = 4
	}
	h := &Hub{broker: b, log: log, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*channelState)
	}
	h.workers = make([]*fanout, workers)
	for i := range h.workers {
		h.workers[i] = newFanout(h, i)
	}
	h.SetLimits(0, 0)
	return h
}

// Defaults of SetLimits (those of limits.max_fanout_queue_bytes and
// limits.max_gapped_channels).
const (
	DefaultMaxQueueBytes     = 16 << 20
	DefaultMaxGappedChannels = 1024
)

// SetLimits bounds each fan-out worker: maxBytes of queued messages
// (payload and channel lengths plus msgOverhead each) and maxGapped
// channels remembered as having lost messages; a value ≤ 0 keeps the
// default. Call it before Start.
func (h *Hub) SetLimits(maxBytes, maxGapped int) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxQueueBytes
	}
	if maxGapped <= 0 {
		maxGapped = DefaultMaxGappedChannels
	}
	for _, w := range h.workers {
		w.maxBytes, w.maxGapped = maxBytes, maxGapped
	}
}

// Start starts the fan-out workers and the broker.
func (h *Hub) Start() error {
	for _, w := range h.workers {
		go w.run()
	}
	if e, ok := h.broker.(*Embedded); ok {
		// The embedded broker's only source is Publish, whose caller can
		// be told to retry: it never drops.
		e.offer.Store(&offerFunc{h.offer})
	}
	return h.broker.Start(h.dispatch)
}

// Close stops the broker and the workers; queued messages are dropped.
func (h *Hub) Close() error {
	err := h.broker.Close()
	for _, w := range h.workers {
		w.stop()
	}
	return err
}

// Broker returns the underlying broker.
func (h *Hub) Broker() Broker { return h.broker }

// AddSink registers an event loop and returns its id.
func (h *Hub) AddSink(s Sink) int {
	h.sinkMu.Lock()
	defer h.sinkMu.Unlock()
	h.sinks = append(h.sinks, s)
	return len(h.sinks) - 1
}

func (h *Hub) shard(channel string) *hubShard {
	return &h.shards[maphash.String(h.seed, channel)%hubShards]
}

// Subscribe records that loop holds channel. done reports the broker's
// acknowledgement (at once when the channel is already acknowledged); it
// may run on any goroutine.
func (h *Hub) Subscribe(channel string, loop int, done func(error)) {
	sh := h.shard(channel)
	sh.mu.Lock()
	st := sh.channels[channel]
	if st == nil {
		st = &channelState{loops: []int{loop}, waiters: []func(error){done}}
		sh.channels[channel] = st
		h.broker.Subscribe(channel, func(err error) { st.ack(err) })
		sh.mu.Unlock()
		return
	}
	if !containsInt(st.loops, loop) {
		st.loops = append(st.loops, loop)
	}
	st.mu.Lock()
	acked, failed := st.acked, st.err != nil
	if !acked {
		st.waiters = append(st.waiters, done)
		if failed {
			// A failed subscribe left the channel unheld at the broker: ask
			// again on the next interest instead of failing forever.
			st.err = nil
			st.mu.Unlock()
			h.broker.Subscribe(channel, func(err error) { st.ack(err) })
			sh.mu.Unlock()
			return
		}
	}
	st.mu.Unlock()
	sh.mu.Unlock()
	if acked {
		done(nil)
	}
}

func (st *channelState) ack(err error) {
	st.mu.Lock()
	st.acked = err == nil
	st.err = err
	w := st.waiters
	st.waiters = nil
	st.mu.Unlock()
	for _, f := range w {
		f(err)
	}
}

// Unsubscribe records that loop no longer holds channel; the broker is told
// when no loop holds it.
func (h *Hub) Unsubscribe(channel string, loop int) {
	sh := h.shard(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.channels[channel]
	if st == nil {
		return
	}
	for i, l := range st.loops {
		if l == loop {
			st.loops = append(st.loops[:i], st.loops[i+1:]...)
			break
		}
	}
	if len(st.loops) == 0 {
		delete(sh.channels, channel)
		h.broker.Unsubscribe(channel)
	}
}

// Channels returns how many channels are held (for metrics and tests).
func (h *Hub) Channels() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.channels)
		sh.mu.RUnlock()
	}
	return n
}

// Publish hands payload to the broker. It returns ErrFanoutFull, without
// publishing, while the channel's fan-out worker on this node is shedding
// load: exactly for the embedded broker (the message is queued or
// refused); for Redis it is a hint, since the message comes back through
// the broker's reader, where it may still find the queue full (and be
// dropped with a Gap), but it makes publishers back off while this node
// cannot keep up.
func (h *Hub) Publish(ctx context.Context, channel string, payload []byte) error {
	if w := h.workers[h.Worker(channel)]; w.shedding.Load() {
		w.refused.Add(1)
		return ErrFanoutFull
	}
	return h.broker.Publish(ctx, channel, payload)
}

// Worker returns the index of the fan-out worker that carries channel.
func (h *Hub) Worker(channel string) int {
	return int(maphash.String(h.seed, channel) % uint64(len(h.workers)))
}

// dispatch is the broker's Handler: it only enqueues, so it never blocks the
// broker's reader. A message that does not fit is dropped and its channel
// remembered as gapped (see fanout.enqueue).
func (h *Hub) dispatch(channel string, payload []byte, receivedAt time.Time) {
	_ = h.workers[h.Worker(channel)].enqueue(inbound{channel: channel, payload: payload, receivedAt: receivedAt}, false)
}

// offer is dispatch for a publisher that can be told: a message that does
// not fit is refused with ErrFanoutFull instead of dropped.
func (h *Hub) offer(channel string, payload []byte, receivedAt time.Time) error {
	return h.workers[h.Worker(channel)].enqueue(inbound{channel: channel, payload: payload, receivedAt: receivedAt}, true)
}

type offerFunc struct {
	f func(channel string, payload []byte, receivedAt time.Time) error
}

// holds reports whether any loop holds channel.
func (h *Hub) holds(channel string) bool {
	sh := h.shard(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	st := sh.channels[channel]
	return st != nil && len(st.loops) > 0
}

// reportGap tells each loop holding one of the gap's channels (every loop
// when all were affected) to cut their subscribers. It runs on the
// worker, after the messages accepted before the gap were flushed, and the
// sinks post to their loops in order, so the cut follows those messages.
func (h *Hub) reportGap(worker int, m *gapMark) {
	h.sinkMu.RLock()
	sinks := h.sinks
	h.sinkMu.RUnlock()
	if m.all {
		for _, s := range sinks {
			s.Gap(&Gap{All: true, Worker: worker, hub: h})
		}
		return
	}
	per := make([][]string, len(sinks))
	for ch := range m.channels {
		sh := h.shard(ch)
		sh.mu.RLock()
		if st := sh.channels[ch]; st != nil {
			for _, l := range st.loops {
				if l < len(per) {
					per[l] = append(per[l], ch)
				}
			}
		}
		sh.mu.RUnlock()
	}
	for l, chs := range per {
		if len(chs) > 0 {
			sinks[l].Gap(&Gap{Channels: chs, Worker: worker, hub: h})
		}
	}
}

// FanoutStats describes one fan-out worker's queue.
type FanoutStats struct {
	Messages  int // waiting, or taken by the worker and not yet routed
	Bytes     int // their cost: payload + channel + msgOverhead each
	PeakBytes int // highest Bytes so far
	MaxBytes  int // the bound (limits.max_fanout_queue_bytes)
	Shedding  bool
	Dropped   uint64 // messages from the broker's reader not queued
	Refused   uint64 // publishes answered ErrFanoutFull
	Gaps      uint64 // gapped channels reported to loops (an All gap counts 1)
	GapAll    uint64 // gaps reported as All (the gapped set overflowed)
}

// FanoutStats returns each worker's queue figures (metrics and tests).
func (h *Hub) FanoutStats() []FanoutStats {
	out := make([]FanoutStats, len(h.workers))
	for i, w := range h.workers {
		w.mu.Lock()
		out[i] = FanoutStats{
			Messages: w.q.len() + w.taken, Bytes: w.bytes, PeakBytes: w.peak, MaxBytes: w.maxBytes,
			Shedding: w.shedding.Load(), Dropped: w.dropped, Refused: w.refused.Load(), Gaps: w.gaps, GapAll: w.gapAll,
		}
		w.mu.Unlock()
	}
	return out
}

// maxBatch bounds how many messages a worker hands a loop at once, so one
// busy channel cannot hold back the first message of a batch for long.
const maxBatch = 256

// route decodes one message and appends it to the batch of every loop that
// holds its channel. It runs on the channel's fan-out worker.
func (h *Hub) route(in inbound, queued int, out [][]*Message) [][]*Message {
	pub, err := protocol.DecodePublishedShared(in.payload) // payloads are immutable (see Handler)
	if err != nil {
		h.log.Warn("dropping published message", "channel", in.channel, "cause", err.Error())
		return out
	}
	sh := h.shard(in.channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	st := sh.channels[in.channel]
	if st == nil || len(st.loops) == 0 {
		return out
	}
	m := &Message{Channel: in.channel, Pub: pub, ReceivedAt: in.receivedAt, QueueSize: queued}
	for _, l := range st.loops {
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], m)
	}
	return out
}

// flush hands each loop its batch: one loop task per batch instead of one
// per message, so a loop writes a burst to a socket with one syscall.
func (h *Hub) flush(out [][]*Message) {
	h.sinkMu.RLock()
	defer h.sinkMu.RUnlock()
	for l, ms := range out {
		if len(ms) > 0 && l < len(h.sinks) {
			h.sinks[l].Deliver(ms)
		}
		out[l] = nil
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

type inbound struct {
	channel    string
	payload    []byte
	receivedAt time.Time
}

// msgOverhead is what a queued message costs beyond its payload and channel
// bytes (the queue slot, the string and slice headers, the allocation
// rounding), so that a flood of tiny messages is bounded too.
const msgOverhead = 64

func (in *inbound) cost() int { return len(in.payload) + len(in.channel) + msgOverhead }

// fanout is one worker: a FIFO bounded in bytes, fed by the broker's reader
// (which must never block: rueidis's pub/sub hooks run on its connection's
// reader) and by the publish API.
//
// Overflow policy. Once a message does not fit, the worker sheds load until
// its queue is back under half the bound (hysteresis, so the set of gaps
// stays small and a publisher is not admitted one message at a time). A
// refused publish (the API, the embedded broker) gets ErrFanoutFull: nothing
// is lost silently. A message from the broker's reader cannot be refused, so
// it is dropped, and its channel (when any loop holds it) is recorded in a
// gap mark at the current end of the queue. When the worker reaches that
// position — every message accepted before the drop delivered — it reports
// the mark to the loops holding its channels, which close the sessions
// holding them: no session stays open having silently missed a message.
// The marks hold at most maxGapped channels in all; a mark that would need
// more becomes "all", covering every channel of this worker. The number of
// marks is bounded too: two marks are separated by at least one queued
// message, so there are at most maxBytes/msgOverhead + 1 of them.
type fanout struct {
	hub *Hub
	id  int

	maxBytes, maxGapped int

	mu    sync.Mutex
	q     ring
	taken int    // messages taken off q, being routed
	bytes int    // cost of q and taken: freed once routed and flushed
	peak  int    // highest bytes
	seq   uint64 // messages accepted so far
	done  uint64 // messages routed so far
	marks []*gapMark
	// gapped is the number of channels in marks.
	gapped int

	shedding              atomic.Bool // written under mu
	refused               atomic.Uint64
	dropped, gaps, gapAll uint64

	wake   chan struct{}
	quit   chan struct{}
	closed bool

	idleHook func() // tests: called each time the worker runs out of work
}

// gapMark is a loss of messages after the first at messages accepted by
// the worker.
type gapMark struct {
	at       uint64
	channels map[string]struct{}
	all      bool
}

func newFanout(h *Hub, id int) *fanout {
	return &fanout{hub: h, id: id, maxBytes: DefaultMaxQueueBytes, maxGapped: DefaultMaxGappedChannels,
		wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

// enqueue queues in, or, when it does not fit: refuses it (refuse) or drops
// it and records the gap. A message larger than the whole bound is queued
// when the queue is empty, so that it can be delivered at all.
func (f *fanout) enqueue(in inbound, refuse bool) error {
	cost := in.cost()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errClosed
	}
	if !f.shedding.Load() && (f.bytes+cost <= f.maxBytes || f.bytes == 0) {
		f.q.push(in)
		f.bytes += cost
		f.peak = max(f.peak, f.bytes)
		f.seq++
		f.mu.Unlock()
		f.signal()
		return nil
	}
	f.shedding.Store(true)
	if refuse {
		f.refused.Add(1)
		f.mu.Unlock()
		return ErrFanoutFull
	}
	f.dropped++
	gapped := f.hub.holds(in.channel) && f.markGap(in.channel)
	f.mu.Unlock()
	if gapped {
		f.signal() // the mark may already be due
	}
	return nil
}

// markGap records channel in the mark at the current end of the queue and
// reports whether the mark is new or grew (f.mu held).
func (f *fanout) markGap(channel string) bool {
	var m *gapMark
	if n := len(f.marks); n > 0 && f.marks[n-1].at == f.seq {
		m = f.marks[n-1]
	} else {
		m = &gapMark{at: f.seq, channels: make(map[string]struct{})}
		f.marks = append(f.marks, m)
	}
	if m.all {
		return false
	}
	if _, ok := m.channels[channel]; ok {
		return false
	}
	if f.gapped >= f.maxGapped {
		f.gapped -= len(m.channels)
		m.channels, m.all = nil, true
		f.hub.log.Warn("fan-out gap set full: cutting every subscriber of the worker's channels", "worker", f.id, "limit", f.maxGapped)
		return true
	}
	m.channels[channel] = struct{}{}
	f.gapped++
	return true
}

func (f *fanout) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fanout) stop() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.q = ring{}
	f.marks = nil
	f.mu.Unlock()
	close(f.quit)
}

func (f *fanout) run() {
	batch := make([]inbound, 0, maxBatch)
	var out [][]*Message
	for {
		select {
		case <-f.wake:
		case <-f.quit:
			return
		}
		for {
			f.mu.Lock()
			if len(f.marks) > 0 && f.marks[0].at == f.done {
				m := f.marks[0]
				f.marks[0] = nil
				f.marks = f.marks[1:]
				if m.all {
					f.gapAll++
					f.gaps++
				} else {
					f.gapped -= len(m.channels)
					f.gaps += uint64(len(m.channels))
				}
				f.mu.Unlock()
				f.hub.reportGap(f.id, m)
				continue
			}
			n := min(f.q.len(), maxBatch)
			if len(f.marks) > 0 {
				n = min(n, int(f.marks[0].at-f.done))
			}
			if n == 0 || f.closed {
				f.mu.Unlock()
				if f.idleHook != nil {
					f.idleHook()
				}
				break
			}
			batch = f.q.popInto(batch[:0], n)
			f.taken = n
			left := f.q.len()
			f.mu.Unlock()
			cost := 0
			for i := range batch {
				cost += batch[i].cost()
				// Messages still waiting behind this one, as SocketShark
				// reports its reader queue.
				out = f.hub.route(batch[i], left+len(batch)-i-1, out)
				batch[i] = inbound{}
			}
			f.hub.flush(out)
			f.mu.Lock()
			f.taken = 0
			f.bytes -= cost
			f.done += uint64(n)
			if f.shedding.Load() && f.bytes <= f.maxBytes/2 {
				f.shedding.Store(false)
			}
			f.mu.Unlock()
		}
	}
}

// ring is a FIFO of inbound messages that reuses its array.
type ring struct {
	buf        []inbound
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) push(in inbound) {
	if r.size == len(r.buf) {
		nb := make([]inbound, max(16, 2*len(r.buf)))
		for i := 0; i < r.size; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = in
	r.size++
}

// popInto moves the first n messages to dst.
func (r *ring) popInto(dst []inbound, n int) []inbound {
	for i := 0; i < n; i++ {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = inbound{}
		r.head = (r.head + 1) % len(r.buf)
	}
	r.size -= n
	if r.size == 0 && len(r.buf) > 4096 {
		// A burst grew the array: give it back once drained.
		r.buf, r.head = nil, 0
	}
	return dst
}
