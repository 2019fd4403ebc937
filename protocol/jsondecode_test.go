package protocol

import (
	"strings"
	"testing"
)

// A small value a session keeps (an extra field, an auth field) must not
// pin the rest of a large frame or reply: each value is its own copy.
func TestDecodedValuesDoNotPinTheDocument(t *testing.T) {
	frame := []byte(`{"event":"subscribe","subscription":"a.b","pad":"` + strings.Repeat("p", 1<<20) + `","org":"o1"}`)
	ev, ok := DecodeClientEvent(frame)
	if !ok {
		t.Fatal("not decoded")
	}
	reply := []byte(`{"status":"ok","pad":"` + strings.Repeat("p", 1<<20) + `","user_id":7}`)
	m, ok := DecodeObject(reply)
	if !ok {
		t.Fatal("reply not decoded")
	}
	for name, v := range map[string][]byte{"org": ev.Fields["org"], "user_id": m["user_id"]} {
		if cap(v) > 64 {
			t.Errorf("%s = %s has capacity %d: it pins the document", name, v, cap(v))
		}
	}
}
