package protocol

import (
	stdjson "encoding/json"
	"runtime"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// A small value a session keeps (an extra field, an auth field) must not
// pin the rest of a large frame or reply: each value is its own copy.
func TestDecodedValuesDoNotPinTheDocument(t *testing.T) {
	const n, size = 8, 1 << 20
	frame := []byte(`{"event":"subscribe","subscription":"a.b","pad":"` + strings.Repeat("p", size) + `","org":"o1"}`)
	reply := []byte(`{"status":"ok","pad":"` + strings.Repeat("p", size) + `","user_id":7}`)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	kept := make([]json.RawMessage, 0, 2*n)
	for range n {
		ev, ok := DecodeClientEvent(frame)
		m, ok2 := DecodeObject(reply)
		if !ok || !ok2 {
			t.Fatal("not decoded")
		}
		kept = append(kept, ev.Fields["org"], m["user_id"])
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapAlloc) - int64(before); grown > size {
		t.Errorf("keeping %d small values holds %d bytes: they pin the documents", len(kept), grown)
	}
	runtime.KeepAlive(kept)
}

// FuzzDecodeClientEventBinary: any bytes decode without a panic, and an
// accepted frame's echoes are valid JSON.
func FuzzDecodeClientEventBinary(f *testing.F) {
	for _, s := range []string{
		`{"event":"ping","data":"x"}`, "\xef\xbb\xbf{\"event\":\"ping\"}", "{\x00}\x00", "\x00{\x00}",
		"\xff\xfe{\x00}\x00", "\x00\x00\x00{\x00\x00\x00}", "{\"event\":\"\xed\xa0\x80\"}", "{\x00", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok := DecodeClientEventBinary(b)
		if !ok {
			return
		}
		out := AppendReply(nil, &Reply{Event: ev.Event, Status: "error", Error: ErrEventNotFound})
		if !stdjson.Valid(out) {
			t.Fatalf("invalid reply %q for %q", out, b)
		}
		if raw, ok := ev.Raw("data"); ok {
			if out := AppendPong(nil, raw, true); !stdjson.Valid(out) {
				t.Fatalf("invalid pong %q for %q", out, b)
			}
		}
	})
}
