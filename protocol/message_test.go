package protocol

import (
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

func TestAppendMessage(t *testing.T) {
	recv := time.Date(2026, 11, 25, 8, 24, 12, 100000000, time.UTC)
	sent := recv.Add(1500 * time.Microsecond)
	pub := time.Date(2026, 11, 25, 8, 24, 11, 0, time.UTC)
	extra := []Field{{"org", json.RawMessage(`"o1"`)}}
	tests := []struct {
		name  string
		sub   string
		data  json.RawMessage
		extra []Field
		t     Timing
		want  string
	}{
		{"throttled trailing message: sent_at only", "a.b", json.RawMessage(`{"x":1}`), extra, Timing{SentAt: sent},
			`{"event":"message","subscription":"a.b","data":{"x":1},"org":"o1","sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"held message: published_at and sent_at", "a.b", json.RawMessage(`1`), extra, Timing{SentAt: sent, PublishedAt: pub},
			`{"event":"message","subscription":"a.b","data":1,"published_at":"2026-11-25T08:24:11+00:00","org":"o1",` +
				`"sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"live message", "a.b", json.RawMessage(`[1,"2"]`), extra, Timing{ReceivedAt: recv, QueueSize: 3, SentAt: sent},
			`{"event":"message","subscription":"a.b","data":[1,"2"],"received_at":"2026-11-25T08:24:12.100000+00:00",` +
				`"queue_size":3,"org":"o1","sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"live message queue 0 and published_at", "a.b", json.RawMessage(`null`), nil,
			Timing{ReceivedAt: recv, SentAt: sent, PublishedAt: pub},
			`{"event":"message","subscription":"a.b","data":null,"published_at":"2026-11-25T08:24:11+00:00",` +
				`"received_at":"2026-11-25T08:24:12.100000+00:00","queue_size":0,"sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"published_at as the publisher wrote it, through isoformat", "a.b", json.RawMessage(`1`), nil,
			Timing{SentAt: sent, PublishedAt: pub, PublishedAtJSON: json.RawMessage(`"2026-11-25T10:24:11+02:00"`)},
			`{"event":"message","subscription":"a.b","data":1,"published_at":"2026-11-25T10:24:11+02:00",` +
				`"sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"naive published_at stays naive", "a.b", json.RawMessage(`1`), nil,
			Timing{SentAt: sent, PublishedAt: pub, PublishedAtJSON: json.RawMessage(`"2026-11-25T08:24:11.5"`)},
			`{"event":"message","subscription":"a.b","data":1,"published_at":"2026-11-25T08:24:11.500000",` +
				`"sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"escaped published_at", "a.b", json.RawMessage(`1`), nil,
			Timing{SentAt: sent, PublishedAt: pub, PublishedAtJSON: json.RawMessage(`"2026-11-25T08:24:11\u002B01:00"`)},
			`{"event":"message","subscription":"a.b","data":1,"published_at":"2026-11-25T08:24:11+01:00",` +
				`"sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"nil data is null", "a.\"b", nil, nil, Timing{SentAt: sent},
			`{"event":"message","subscription":"a.\"b","data":null,"sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
		{"extra overrides in place, sent_at keeps the send time", "a.b", json.RawMessage(`1`),
			[]Field{{"data", json.RawMessage(`2`)}, {"sent_at", json.RawMessage(`0`)}, {"queue_size", json.RawMessage(`"q"`)}},
			Timing{ReceivedAt: recv, QueueSize: 3, SentAt: sent},
			`{"event":"message","subscription":"a.b","data":2,"received_at":"2026-11-25T08:24:12.100000+00:00",` +
				`"queue_size":"q","sent_at":"2026-11-25T08:24:12.101500+00:00"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := AppendMessage(nil, tt.sub, tt.data, tt.extra, tt.t)
			if string(out) != tt.want {
				t.Fatalf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}

func TestAppendMessageNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 512)
	extra := []Field{{"org", json.RawMessage(`"o1"`)}}
	data := json.RawMessage(`{"title":"New"}`)
	now := time.Date(2026, 11, 25, 8, 24, 12, 0, time.UTC)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendMessage(buf[:0], "books.b1", data, extra, Timing{ReceivedAt: now, QueueSize: 1, SentAt: now, PublishedAt: now,
			PublishedAtJSON: json.RawMessage(`"2026-11-25T08:24:12.123456+00:00"`)})
	})
	if allocs != 0 {
		t.Fatalf("AppendMessage allocates %v times per call", allocs)
	}
}
