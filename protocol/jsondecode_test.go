package protocol

import (
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
