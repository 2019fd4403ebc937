package server

// The service → clients hot path on a loop: a batch of messages from a
// fan-out worker → per subscription checks → one encoding per extra-fields
// variant → frames queued per session → one write per session per flush.

import (
	"time"

	"mako/protocol"
	"mako/pubsub"
	"mako/server/ws"
)

// deliverBatch delivers the batch at the head of the inbox, within budget
// (one unit per message and per subscriber visited); false means it paused
// and resumes from its cursor on the next drain. Writes are coalesced per
// session. The flush is a separate task queued behind whatever the loop
// already has to do, so consecutive batches (one per fan-out worker
// wake-up) share it: a subscriber receiving a burst gets one write syscall,
// not one per message.
func (l *loop) deliverBatch(ms []*pubsub.Message, budget *int) bool {
	h := &l.in.head
	l.delivering = true
	for h.mi < len(ms) {
		if !l.deliver(ms[h.mi], budget) {
			break
		}
		h.mi++
		l.in.backlog.Add(-1)
	}
	l.delivering = false
	done := h.mi == len(ms)
	if done {
		h.mi = 0
	}
	// A failed write closes its socket synchronously inside gnet; the
	// close steps change the index, so they wait until the chunk is done.
	for i, sess := range l.closedLater {
		l.closedLater[i] = nil
		if !sess.busy {
			sess.runCloseSteps()
		}
	}
	l.closedLater = l.closedLater[:0]
	if len(l.dirty) > 0 && !l.flushPosted {
		l.flushPosted = true
		l.post(item{flush: true})
	}
	if !l.flushPosted {
		l.fanoutLat.drop() // frames encoded, but no session took one
	}
	return done
}

// writeCost is the budget units of one session's flush write (a syscall),
// next to one unit per subscriber visited by a delivery.
const writeCost = 8

// flushSome is the flush task, within budget: it writes pending output from
// the dirty cursor on; false means it paused and resumes there. Sessions
// dirtied meanwhile (a timer's write behind queued frames) are appended and
// written by the same pass.
func (l *loop) flushSome(budget *int) bool {
	for l.flushAt < len(l.dirty) {
		if *budget <= 0 {
			return false
		}
		*budget -= writeCost
		sess := l.dirty[l.flushAt]
		l.dirty[l.flushAt] = nil
		l.flushAt++
		l.flushSession(sess)
	}
	l.dirty, l.flushAt = l.dirty[:0], 0
	l.outBytes = 0 // exact now; closes that wrote early left it high
	l.flushPosted = false
	l.fanoutLat.observe(l.s.metrics.fanout)
	return true
}

// Coalescing bounds: one session's buffer is written once it reaches
// maxSessionOut, and everything is written once the loop's sessions own
// maxLoopOut bytes, so a burst to many subscribers never holds much memory.
const (
	maxSessionOut = 64 << 10
	maxLoopOut    = 4 << 20
	maxFreeOut    = 256
)

// queueOut appends a frame to the session's pending output. A session's
// first frame is held by reference when shared (a fan-out frame, immutable
// until the flush), so the common case — one message per subscriber per
// flush — copies nothing and allocates nothing per subscriber; a buffer is
// made only when a second frame arrives.
func (l *loop) queueOut(sess *session, frame []byte, shared bool) {
	switch {
	case sess.out == nil && shared:
		sess.out, sess.outOwned = frame, false
		l.dirty = append(l.dirty, sess)
		return
	case sess.out == nil:
		sess.out, sess.outOwned = l.outBuf(len(frame)), true
		l.dirty = append(l.dirty, sess)
	case !sess.outOwned:
		buf := l.outBuf(len(sess.out) + len(frame))
		l.outBytes += len(sess.out)
		sess.out, sess.outOwned = append(buf, sess.out...), true
	}
	sess.out = append(sess.out, frame...)
	l.outBytes += len(frame)
	switch {
	case l.outBytes >= maxLoopOut:
		l.flushOut()
	case len(sess.out) >= maxSessionOut:
		out := sess.out
		sess.out = out[:0] // gnet copies what the socket does not take
		l.outBytes -= len(out)
		sess.send(out)
	}
}

// outBuf returns an empty buffer for at least n bytes.
func (l *loop) outBuf(n int) []byte {
	if k := len(l.outFree); k > 0 && cap(l.outFree[k-1]) >= n {
		b := l.outFree[k-1]
		l.outFree = l.outFree[:k-1]
		return b
	}
	return make([]byte, 0, 2*n)
}

// flushOut writes every session's pending output at once (the loop's
// pending bytes reached maxLoopOut). A paused flush task then finds nothing
// left and completes.
func (l *loop) flushOut() {
	for i := l.flushAt; i < len(l.dirty); i++ {
		sess := l.dirty[i]
		l.dirty[i] = nil
		l.flushSession(sess)
	}
	l.dirty, l.flushAt = l.dirty[:0], 0
	l.outBytes = 0
}

func (l *loop) flushSession(sess *session) {
	out, owned := sess.out, sess.outOwned
	if out == nil {
		return // closed, or flushed early by closeWith
	}
	sess.out, sess.outOwned = nil, false
	if owned {
		l.outBytes -= len(out)
	}
	sess.send(out)
	if owned && cap(out) <= maxSessionOut*2 && len(l.outFree) < maxFreeOut {
		l.outFree = append(l.outFree, out[:0])
	}
}

// variant is one encoding of the message being delivered, in the loop's
// table indexed by the subscriptions' interned variant ids (chanEntry.vids).
// An entry is valid for the message and entry stamped on it.
type variant struct {
	gen    uint64
	entry  *chanEntry
	frame  []byte
	zframe []byte // the permessage-deflate frame, made on first need
}

// deliver visits the subscribers of m's channel from the entry's cursor;
// false means budget ran out first (the cursor stays in the entry).
//
// Subscriptions added while a message is part-delivered are appended behind
// the cursor and get it; released ones are swapped out of the unvisited part
// (see loop.release). So a subscriber that held the channel throughout gets
// every message exactly once, and one that subscribed while a message was
// in flight may get it.
func (l *loop) deliver(m *pubsub.Message, budget *int) bool {
	h := &l.in.head
	e := l.index[m.Channel]
	if !h.active {
		if e == nil {
			*budget--
			return true
		}
		if *budget <= 0 {
			return false
		}
		*budget--
		l.gen++
		h.active, h.entry, h.gen, h.now = true, e, l.gen, l.s.clock.Now()
		e.cur = 0
	} else if e != h.entry {
		// Every holder left while the message was part-delivered; holders
		// since then subscribed after it was published.
		h.active, h.entry = false, nil
		return true
	}
	now := h.now
	for e.cur < len(e.subs) {
		if *budget <= 0 {
			return false
		}
		*budget--
		sub := e.subs[e.cur]
		e.cur++
		target := sub
		if m.Pub.Subscription != m.Channel {
			// The channel only selects candidates; delivery is under the
			// payload's subscription.
			if target = sub.sess.subs[m.Pub.Subscription]; target == nil {
				if p := sub.sess.pendingSub; p != nil && p.name == m.Pub.Subscription {
					target = p
				} else {
					continue
				}
			}
		}
		switch {
		case target.ended || target.sess.gone:
		case target.pending:
			target.hold(m)
		default:
			target.offer(m, now, true)
		}
	}
	e.cur = 0
	h.active, h.entry = false, nil
	return true
}

// liveFrame returns the encoded frame of m for sub's extra-fields variant
// (compressed for a permessage-deflate session), encoding it the first time
// the variant is needed for this message. The lookup is a slice index by
// the variant id interned in sub's entry, so it costs the same with one
// variant or 10,000.
func (l *loop) liveFrame(sub *subscription, m *pubsub.Message, now time.Time) []byte {
	var v *variant
	if sub.entry != nil && sub.vid >= 0 {
		id := int(sub.vid)
		if id >= len(l.variants) {
			l.variants = append(l.variants, make([]variant, id+1-len(l.variants))...)
		}
		v = &l.variants[id]
	} else {
		v = &variant{} // not in the index: encoded for itself alone
	}
	if v.gen != l.gen || v.entry != sub.entry || v.frame == nil {
		t := protocol.Timing{ReceivedAt: m.ReceivedAt, QueueSize: m.QueueSize, SentAt: now,
			PublishedAt: m.Pub.PublishedAt, PublishedAtJSON: m.Pub.Fields["published_at"]}
		// A fresh buffer per message: sessions hold the frame by reference
		// until the loop flushes (see queueOut), so it is never reused.
		_, frame := encodeTextFrame(nil, func(b []byte) []byte {
			return protocol.AppendMessage(b, sub.name, m.Pub.Data, sub.extra, t)
		})
		*v = variant{gen: l.gen, entry: sub.entry, frame: frame}
		l.fanoutLat.mark(l.s.metrics.fanout, l.gen, m.ReceivedAt)
	}
	if !sub.sess.dec.Deflate {
		return v.frame
	}
	if v.zframe == nil {
		payload := v.frame[len(v.frame)-textPayloadLen(v.frame):]
		v.zframe = ws.AppendDeflateFrame(nil, ws.OpText, payload)
	}
	return v.zframe
}
