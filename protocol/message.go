package protocol

import (
	"time"

	json "github.com/goccy/go-json"
)

// Timing holds the timing fields of a pushed message. Which ones a message
// carries depends on its path (SocketShark's receiver.py and
// subscription.py): a live message has all four (published_at when the
// publisher sent a parseable one); a message held in the provisional window
// and replayed after the ok has published_at and sent_at; the trailing
// message of a throttle window has sent_at only.
type Timing struct {
	ReceivedAt  time.Time // zero omits received_at and queue_size
	QueueSize   int       // written iff ReceivedAt is set
	SentAt      time.Time // always written
	PublishedAt time.Time // zero omits published_at
	// PublishedAtJSON is the publisher's published_at value as sent (a
	// JSON string). When set, published_at is written as SocketShark
	// writes it, Python's isoformat() of the parsed value (the publisher's
	// own offset, none for a naive time, no fraction when it is zero);
	// otherwise PublishedAt is written in UTC.
	PublishedAtJSON json.RawMessage
}

// AppendMessage appends a pushed message, composed as SocketShark's
// Session.send_message composes it:
// {"event":"message","subscription":sub,"data":data,"published_at":…,
// "received_at":…,"queue_size":…, extra..., "sent_at":…}.
// data must be valid JSON (nil is written as null). Extra fields update the
// object (a field named like a base key takes its place and value), then
// sent_at is assigned, so it always carries the send time. It does not
// allocate when dst has room.
func AppendMessage(dst []byte, sub string, data json.RawMessage, extra []Field, t Timing) []byte {
	var base [6]slot
	base[0] = strSlot("event", "message")
	base[1] = strSlot("subscription", sub)
	base[2] = rawSlot("data", data)
	nb := 3
	if !t.PublishedAt.IsZero() {
		base[nb] = slot{name: "published_at", key: `"published_at":`, kind: vPublished, t: t.PublishedAt, raw: t.PublishedAtJSON}
		nb++
	}
	if !t.ReceivedAt.IsZero() {
		base[nb] = slot{name: "received_at", key: `"received_at":`, kind: vTime, t: t.ReceivedAt}
		base[nb+1] = slot{name: "queue_size", key: `"queue_size":`, kind: vInt, n: t.QueueSize}
		nb += 2
	}
	tail := [1]slot{{name: "sent_at", key: `"sent_at":`, kind: vTime, t: t.SentAt}}
	return compose(dst, base[:nb], extra, tail[:])
}
