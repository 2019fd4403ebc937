package pubsub

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
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

// Sink is one event loop's receiving end. Deliver is called from a fan-out
// worker and must not block: it posts the messages to its loop, which owns
// the slice from then on. Messages of one channel appear in publish order.
type Sink interface {
	Deliver(ms []*Message)
}

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
		h.workers[i] = newFanout(h)
	}
	return h
}

// Start starts the fan-out workers and the broker.
func (h *Hub) Start() error {
	for _, w := range h.workers {
		go w.run()
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

// Publish hands payload to the broker.
func (h *Hub) Publish(ctx context.Context, channel string, payload []byte) error {
	return h.broker.Publish(ctx, channel, payload)
}

// dispatch is the broker's Handler: it only enqueues, so it never blocks the
// broker's reader.
func (h *Hub) dispatch(channel string, payload []byte, receivedAt time.Time) {
	w := h.workers[maphash.String(h.seed, channel)%uint64(len(h.workers))]
	w.enqueue(inbound{channel: channel, payload: payload, receivedAt: receivedAt})
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

// fanout is one worker: an unbounded FIFO, because the broker's reader must
// never block and an accepted message must never be dropped.
type fanout struct {
	hub    *Hub
	mu     sync.Mutex
	queue  []inbound
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newFanout(h *Hub) *fanout {
	return &fanout{hub: h, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (f *fanout) enqueue(in inbound) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.queue = append(f.queue, in)
	f.mu.Unlock()
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
	f.mu.Unlock()
	close(f.done)
}

func (f *fanout) run() {
	var batch []inbound
	var out [][]*Message
	for {
		select {
		case <-f.wake:
		case <-f.done:
			return
		}
		for {
			f.mu.Lock()
			batch, f.queue = f.queue, batch[:0]
			f.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := range batch {
				// Messages still waiting behind this one, as SocketShark
				// reports its reader queue.
				out = f.hub.route(batch[i], len(batch)-i-1, out)
				batch[i] = inbound{}
				if (i+1)%maxBatch == 0 {
					f.hub.flush(out)
				}
			}
			f.hub.flush(out)
		}
	}
}
