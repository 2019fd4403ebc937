package protocol

import (
	"bytes"
	stdjson "encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

func FuzzDecodeClientEvent(f *testing.F) {
	for _, s := range []string{
		`{"event":"auth","ticket":"t"}`,
		`{"event":"subscribe","subscription":"books.b1","org":"o1"}`,
		`{"event":"ping","data":"\ud83d\ude00"}`,
		`{"event":5}`, `{"event":null}`, `[]`, `null`, `x`, ``,
		`{"event":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"}`,
		"{\"event\":\"\xff\"}", `{"event":"a","event":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok := DecodeClientEvent(b)
		if !ok {
			return
		}
		// Anything accepted must be an object; beyond RFC 8259 only Python's
		// NaN/Infinity literals are (pyjson_test.go checks against Python).
		var m map[string]stdjson.RawMessage
		if err := stdjson.Unmarshal(b, &m); (err != nil || m == nil) && !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
			t.Fatalf("accepted non-object %q: %v", b, err)
		}
		if RuneCount(ev.Event) > MaxEventLength {
			t.Fatalf("event too long: %q", ev.Event)
		}
		s, present, isString := ev.String("event")
		if !present || !isString || s != ev.Event {
			t.Fatalf("String(event) = (%q, %v, %v), want %q", s, present, isString, ev.Event)
		}
		// Echoing the event back must give valid JSON carrying the same name.
		out := AppendReply(nil, &Reply{Event: ev.Event, Status: "error", Error: ErrEventNotFound})
		var back struct{ Event string }
		if err := stdjson.Unmarshal(out, &back); err != nil {
			t.Fatalf("reply %s: %v", out, err)
		}
		if utf8.ValidString(ev.Event) && back.Event != ev.Event {
			t.Fatalf("echoed event %q, want %q", back.Event, ev.Event)
		}
		if raw, ok := ev.Raw("data"); ok {
			if out := AppendPong(nil, raw, true); !stdjson.Valid(out) {
				t.Fatalf("invalid pong %s", out)
			}
		}
	})
}

func FuzzDecodePublished(f *testing.F) {
	for _, s := range []string{
		`{"subscription":"books.b1","data":{"t":"New"},"user_id":"u1"}`,
		`{"subscription":"a.b","data":null,"options":{"order":"1e1","order_key":"k","throttle":0.1,"throttle_key":1}}`,
		`{"subscription":"a.b","data":1,"options":{"order":true,"throttle":"abc"},"published_at":"2026-11-25T08:24:12.5+02:00"}`,
		`{"subscription":"a.b","data":1,"published_at":"20261125T0824"}`,
		`{"subscription":5,"data":1}`, `{"data":1}`, `[1]`, `nope`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePublished(b)
		if err != nil {
			return
		}
		if p.Subscription == "" || p.Data == nil || p.Fields == nil {
			t.Fatalf("incomplete result %+v", p)
		}
		if p.Options.HasThrottle && !(p.Options.Throttle > 0) {
			t.Fatalf("bad throttle %v", p.Options.Throttle)
		}
		if d := p.Options.ThrottleDuration(); p.Options.HasThrottle && d < 0 {
			t.Fatalf("negative throttle duration %v", d)
		}
		var pa time.Time
		if !p.PublishedAt.IsZero() {
			pa = p.PublishedAt
			if pa.Year() < 1 || pa.Year() > 9999 {
				t.Fatalf("published_at out of range: %v", pa)
			}
		}
		now := time.Date(2026, 11, 25, 8, 24, 12, 0, time.UTC)
		out := AppendMessage(nil, p.Subscription, p.Data, []Field{{"x", p.Fields["subscription"]}},
			Timing{ReceivedAt: now, QueueSize: 1, SentAt: now, PublishedAt: pa})
		// Python's NaN and Infinity literals pass through as SocketShark
		// passes them (docs/json.md); the rest must be RFC 8259 JSON.
		var back map[string]any
		python := bytes.Contains(b, []byte("NaN")) || bytes.Contains(b, []byte("Infinity"))
		if err := stdjson.Unmarshal(out, &back); err != nil && !python {
			t.Fatalf("pushed message %s: %v", out, err)
		}
		if ev, ok := DecodeClientEvent(out); !ok || ev.Event != "message" {
			t.Fatalf("pushed message %s does not read back", out)
		}
		if back != nil && utf8.ValidString(p.Subscription) && back["subscription"] != p.Subscription {
			t.Fatalf("subscription %v, want %q", back["subscription"], p.Subscription)
		}
		// NaN equals nothing, itself included, in Python as in IEEE 754.
		if !python && !JSONEqual(p.Data, p.Data) {
			t.Fatalf("data %s not equal to itself", p.Data)
		}
		var o OrderState
		if p.Options.HasOrder && !o.Accept(&p.Options) {
			t.Fatal("first ordered message refused")
		}
	})
}

func FuzzAppendReply(f *testing.F) {
	f.Add("subscribe", "ok", "", false, "books.b1", []byte(`{"a":1}`), "org", []byte(`"o"`))
	f.Add("", "error", ErrInvalidEvent, false, "", []byte(nil), "", []byte(nil))
	f.Add("a\"\\\x00", "", "", true, "\xff\xfe", []byte(`null`), "data", []byte(`[1,2]`))
	f.Add("e", "ok", "x", false, "s", []byte(`not json`), "event", []byte(`{`))
	f.Fuzz(func(t *testing.T, event, status, errStr string, hasErr bool, sub string, data []byte, extraName string, extraVal []byte) {
		r := Reply{Event: event, Status: status, Error: errStr, HasError: hasErr, Subscription: sub}
		// Data and extra values are documented as valid JSON; feed only that.
		if json.Valid(data) && stdjson.Valid(data) {
			r.Data = data
		}
		if extraName != "" {
			v := json.RawMessage(nil)
			if json.Valid(extraVal) && stdjson.Valid(extraVal) {
				v = extraVal
			}
			r.Extra = []Field{{extraName, v}, {"k", json.RawMessage(`1`)}}
		}
		out := AppendReply(nil, &r)
		if !stdjson.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		var m map[string]stdjson.RawMessage
		if err := stdjson.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(event) && event != "" && extraName != "event" {
			var got string
			if err := stdjson.Unmarshal(m["event"], &got); err != nil || got != event {
				t.Fatalf("event %q, want %q", got, event)
			}
		}
	})
}
