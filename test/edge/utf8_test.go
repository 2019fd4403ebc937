package edge

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"strings"
	"testing"
)

// maskedHeader is the header of a final or non-final masked client frame
// announcing n payload bytes, with its key: the payload that follows must
// be masked with maskPayload.
func maskedHeader(fin bool, op byte, n int) []byte {
	f := clientFrame(fin, 0, op, nil, true) // fixes a key
	key := f[len(f)-4:]
	b0 := f[0]
	out := []byte{b0, 0x80 | 127}
	out = binary.BigEndian.AppendUint64(out, uint64(n))
	return append(out, key...)
}

// maskPayload masks p, which starts off bytes into the payload of the frame
// whose header is hdr.
func maskPayload(hdr []byte, off int, p []byte) []byte {
	key := hdr[len(hdr)-4:]
	out := bytes.Clone(p)
	for i := range out {
		out[i] ^= key[(off+i)%4]
	}
	return out
}

// A text frame whose first bytes are not UTF-8 is failed with 1007 as soon
// as they arrive (RFC 6455 8.1): the server does not wait for the other
// megabyte, which is never sent.
func TestUTF8FailFastInFrame(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *cfgT) { c.WS.MaxMessageSize = 2 << 20 })

	t.Run("first bytes", func(t *testing.T) {
		rc := open(t, srv)
		hdr := maskedHeader(true, opText, 1<<20)
		// The header itself in two pieces, the second with the masking
		// key: the length alone must not make the server wait for the
		// whole frame.
		rc.write(hdr[:10])
		rc.write(hdr[10:])
		rc.write(maskPayload(hdr, 0, []byte("\xff\xfe{\"event\":\"ping\"}")))
		rc.expectClose(1007)
	})

	t.Run("after valid pieces", func(t *testing.T) {
		rc := open(t, srv)
		hdr := maskedHeader(true, opText, 1<<20)
		rc.write(hdr)
		// 64 KiB of valid text with runes cut at piece boundaries, then a
		// piece that ends inside a rune, then one whose first byte cannot
		// continue it.
		valid := []byte(`{"event":"ping","data":"` + strings.Repeat("é€x", 64<<10/6))
		rc.writePaced(maskPayload(hdr, 0, valid), 4093)
		off := len(valid)
		rc.write(maskPayload(hdr, off, []byte("ab\xe2\x82")))
		rc.write(maskPayload(hdr, off+4, []byte("(rest")))
		rc.expectClose(1007)
	})
}

// The same across fragments: the first is valid, the second begins with a
// byte that is not UTF-8, the third never comes.
func TestUTF8FailFastAcrossFragments(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)

	rc := open(t, srv)
	rc.write(clientFrame(false, 0, opText, []byte(`{"event":"ping","data":"`), true))
	rc.write(clientFrame(false, 0, opCont, []byte("\xc0\xafbad"), true))
	rc.expectClose(1007)

	// A rune begun at the end of one fragment and broken at the start of
	// the next, which is itself still arriving.
	rc = open(t, srv)
	rc.write(clientFrame(false, 0, opText, []byte("{\"event\":\"ping\",\"data\":\"caf\xc3"), true))
	hdr := maskedHeader(false, opCont, 100000)
	rc.write(hdr)
	rc.write(maskPayload(hdr, 0, []byte("\xc3\xa9")))
	rc.expectClose(1007)
}

// Text read as it arrives still reaches the session whole and intact,
// with runes cut across reads and fragments: the ping's data comes last,
// after a large padding of multi-byte runes, so the pong shows the end of
// the message arrived as sent (and the JSON around it parsed).
func TestUTF8StreamedTextIntact(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := open(t, srv)

	pad := strings.Repeat("é€😀ascii ", 40000) // ~680 KB
	data := "the end: ünïcödé 😀"
	msg := []byte(`{"event":"ping","pad":"` + pad + `","data":"` + data + `"}`)
	pong := func(how string) {
		t.Helper()
		if m := rc.nextJSON(); m["event"] != "pong" || m["data"] != data {
			t.Fatalf("%s: want the pong %q, got %.200v", how, data, m)
		}
	}
	rc.writePaced(clientFrame(true, 0, opText, msg, true), 4093)
	pong("one frame")

	// Fragmented, each fragment arriving in pieces.
	var b []byte
	cut := []int{0, 7, 30001, 30002, 400000, len(msg)}
	for i := 0; i+1 < len(cut); i++ {
		op := opCont
		if i == 0 {
			op = opText
		}
		b = append(b, clientFrame(i+2 == len(cut), 0, op, msg[cut[i]:cut[i+1]], true)...)
	}
	rc.writePaced(b, 7001)
	pong("fragments")

	// Binary frames are not streamed (nor checked: JSON is decoded from
	// their bytes).
	rc.writePaced(clientFrame(true, 0, opBinary, msg, true), 4093)
	pong("binary")
}

// A compressed text message is checked as it is inflated.
func TestUTF8Compressed(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := dialRaw(t, srv)
	key := newKey()
	rc.write([]byte(upgradeRequest(key, "Sec-WebSocket-Extensions: permessage-deflate")))
	rc.expect101(key)

	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	_, _ = w.Write([]byte(`{"event":"ping","data":"` + strings.Repeat("ok ", 1000) + "\xff\"}"))
	_ = w.Flush()
	payload := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	rc.write(clientFrame(true, 4, opText, payload, true))
	rc.expectClose(1007)
}
