package protocol

import (
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

var (
	benchClientFrame = []byte(`{"event":"subscribe","subscription":"books.book_1","org_id":"org_1","data":{"x":1}}`)
	benchPublished   = []byte(`{"subscription":"books.book_1","data":{"title":"New","tags":["a","b"],"n":3},` +
		`"options":{"order":3,"order_key":"k","throttle":0.1,"throttle_key":"t"},"user_id":"user_1",` +
		`"published_at":"2026-11-25T08:24:12.123456+00:00"}`)
)

func BenchmarkDecodeClientEvent(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchClientFrame)))
	for b.Loop() {
		if _, ok := DecodeClientEvent(benchClientFrame); !ok {
			b.Fatal("decode failed")
		}
	}
}

func BenchmarkDecodePublished(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublished)))
	for b.Loop() {
		if _, err := DecodePublished(benchPublished); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublishedShared(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPublished)))
	for b.Loop() {
		if _, err := DecodePublishedShared(benchPublished); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	buf := make([]byte, 0, 1024)
	data := json.RawMessage(`{"title":"New","tags":["a","b"],"n":3}`)
	extra := []Field{{"org_id", json.RawMessage(`"org_1"`)}}
	now := time.Date(2026, 11, 25, 8, 24, 12, 123456000, time.UTC)
	t := Timing{ReceivedAt: now, QueueSize: 2, SentAt: now, PublishedAt: now,
		PublishedAtJSON: json.RawMessage(`"2026-11-25T08:24:12.123456+00:00"`)}
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], "books.book_1", data, extra, t)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendReply(b *testing.B) {
	buf := make([]byte, 0, 256)
	r := Reply{Event: "subscribe", Status: "ok", Subscription: "books.book_1",
		Extra: []Field{{"org_id", json.RawMessage(`"org_1"`)}}}
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReply(buf[:0], &r)
	}
}

func BenchmarkJSONEqual(b *testing.B) {
	x, y := json.RawMessage(`"user_1"`), json.RawMessage(`"user_1"`)
	b.ReportAllocs()
	for b.Loop() {
		if !JSONEqual(x, y) {
			b.Fatal("not equal")
		}
	}
}
