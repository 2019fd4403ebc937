package protocol

import (
	"strconv"
	"time"

	json "github.com/goccy/go-json"
)

// Timing holds the timing fields of a pushed message.
type Timing struct {
	ReceivedAt  time.Time // zero omits received_at and queue_size
	QueueSize   int       // written iff ReceivedAt is set
	SentAt      time.Time // always written
	PublishedAt time.Time // zero omits published_at
}

// AppendMessage appends a pushed message:
// {"event":"message","subscription":sub,"data":data, extra..., timing...}.
// data must be valid JSON (nil is written as null). As in SocketShark's
// send_message, extra fields override event/subscription/data and the
// optional timing keys of the same name, while sent_at always wins.
// It does not allocate when dst has room.
func AppendMessage(dst []byte, sub string, data json.RawMessage, extra []Field, t Timing) []byte {
	dst = append(dst, '{')
	n := 0
	if !hasField(extra, "event") {
		dst = appendKey(dst, &n, `"event":"message"`)
	}
	if !hasField(extra, "subscription") {
		dst = appendKey(dst, &n, `"subscription":`)
		dst = AppendJSONString(dst, sub)
	}
	if !hasField(extra, "data") {
		dst = appendKey(dst, &n, `"data":`)
		if len(data) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, data...)
		}
	}
	for i := range extra {
		f := &extra[i]
		if f.Name == "sent_at" || hasField(extra[i+1:], f.Name) {
			continue
		}
		dst = appendField(dst, &n, f)
	}
	if !t.ReceivedAt.IsZero() {
		if !hasField(extra, "received_at") {
			dst = appendKey(dst, &n, `"received_at":"`)
			dst = AppendTime(dst, t.ReceivedAt)
			dst = append(dst, '"')
		}
		if !hasField(extra, "queue_size") {
			dst = appendKey(dst, &n, `"queue_size":`)
			dst = strconv.AppendInt(dst, int64(t.QueueSize), 10)
		}
	}
	dst = appendKey(dst, &n, `"sent_at":"`)
	dst = AppendTime(dst, t.SentAt)
	dst = append(dst, '"')
	if !t.PublishedAt.IsZero() && !hasField(extra, "published_at") {
		dst = appendKey(dst, &n, `"published_at":"`)
		dst = AppendTime(dst, t.PublishedAt)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}
