package edge

import (
	"bytes"
	"strings"
	"testing"
)

// A frame whose header arrives one byte at a time is still decoded.
func TestFrameSplitMidHeader(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := open(t, srv)

	f := clientFrame(true, 0, opText, []byte(`{"event":"ping","data":"split"}`), true)
	rc.writePaced(f[:2], 1) // the 2-byte header, byte by byte
	rc.writePaced(f[2:6], 1)
	rc.write(f[6:])
	expectPong(t, rc.nextJSON(), "split")

	// A 16-bit extended length split inside the length field.
	long := `{"event":"ping","data":"` + strings.Repeat("x", 300) + `"}`
	f = clientFrame(true, 0, opText, []byte(long), true)
	rc.writePaced(f[:8], 1)
	rc.writePaced(f[8:], 100)
	expectPong(t, rc.nextJSON(), strings.Repeat("x", 128))

	// Two frames and a half in one write, the rest later.
	a := clientFrame(true, 0, opText, []byte(`{"event":"ping","data":"a"}`), true)
	b := clientFrame(true, 0, opText, []byte(`{"event":"ping","data":"b"}`), true)
	c := clientFrame(true, 0, opText, []byte(`{"event":"ping","data":"c"}`), true)
	all := append(append(append([]byte{}, a...), b...), c...)
	cut := len(a) + len(b) + 1
	rc.write(all[:cut])
	expectPong(t, rc.nextJSON(), "a")
	expectPong(t, rc.nextJSON(), "b")
	rc.write(all[cut:])
	expectPong(t, rc.nextJSON(), "c")
}

// A ping frame gets a pong frame with the same payload.
func TestPingFrame(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := open(t, srv)
	for _, p := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0xff, 0x00}, 62)} {
		rc.write(clientFrame(true, 0, opPing, p, true))
		f := rc.next()
		if f.op != opPong || !bytes.Equal(f.payload, p) {
			t.Fatalf("ping %q: got %v, want a pong with the same payload", p, f)
		}
	}
	// An unsolicited pong is ignored.
	rc.write(clientFrame(true, 0, opPong, []byte("unsolicited"), true))
	rc.ping("still")
}

// Control frames may be interleaved with the fragments of a message: the
// pong goes out at once, and the reassembled message is handled after.
func TestPingBetweenFragments(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := open(t, srv)
	msg := []byte(`{"event":"ping","data":"reassembled"}`)

	var b []byte
	b = append(b, clientFrame(false, 0, opText, msg[:10], true)...)
	b = append(b, clientFrame(false, 0, opCont, msg[10:20], true)...)
	b = append(b, clientFrame(true, 0, opPing, []byte("mid"), true)...)
	rc.write(b)
	// The pong must come while the message is still incomplete.
	if f := rc.next(); f.op != opPong || string(f.payload) != "mid" {
		t.Fatalf("want pong \"mid\" first, got %v", f)
	}
	rc.write(clientFrame(true, 0, opCont, msg[20:], true))
	expectPong(t, rc.nextJSON(), "reassembled")

	// In one write: fragment, ping, fragment → pong frame, then the reply.
	b = b[:0]
	b = append(b, clientFrame(false, 0, opText, msg[:5], true)...)
	b = append(b, clientFrame(true, 0, opPing, []byte("p2"), true)...)
	b = append(b, clientFrame(true, 0, opCont, msg[5:], true)...)
	rc.write(b)
	if f := rc.next(); f.op != opPong || string(f.payload) != "p2" {
		t.Fatalf("want pong \"p2\" first, got %v", f)
	}
	expectPong(t, rc.nextJSON(), "reassembled")

	// A rune split across fragments is valid UTF-8 once reassembled.
	euro := []byte(`{"event":"ping","data":"€"}`)
	i := bytes.IndexByte(euro, 0xe2) + 1
	rc.write(append(clientFrame(false, 0, opText, euro[:i], true), clientFrame(true, 0, opCont, euro[i:], true)...))
	expectPong(t, rc.nextJSON(), "€")
}

// A message over ws.max_message_size closes the connection with 1009; one
// at the limit is accepted.
func TestMaxMessageSize(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *cfgT) { c.WS.MaxMessageSize = 1024 })
	pad := func(n int) []byte {
		head, tail := `{"event":"ping","data":"`, `"}`
		return []byte(head + strings.Repeat("y", n-len(head)-len(tail)) + tail)
	}

	t.Run("at the limit", func(t *testing.T) {
		rc := open(t, srv)
		rc.send(string(pad(1024)))
		expectPong(t, rc.nextJSON(), strings.Repeat("y", 128))
		m := pad(1024)
		rc.write(append(clientFrame(false, 0, opText, m[:600], true), clientFrame(true, 0, opCont, m[600:], true)...))
		expectPong(t, rc.nextJSON(), strings.Repeat("y", 128))
	})
	t.Run("one frame", func(t *testing.T) {
		rc := open(t, srv)
		rc.ping("ok")
		rc.write(clientFrame(true, 0, opText, pad(2000), true))
		rc.expectClose(1009)
	})
	t.Run("one byte over", func(t *testing.T) {
		rc := open(t, srv)
		rc.write(clientFrame(true, 0, opBinary, pad(1025), true))
		rc.expectClose(1009)
	})
	t.Run("fragments", func(t *testing.T) {
		rc := open(t, srv)
		m := pad(2000)
		rc.write(append(clientFrame(false, 0, opText, m[:700], true), clientFrame(false, 0, opCont, m[700:1400], true)...))
		rc.expectClose(1009)
	})
	t.Run("many small fragments", func(t *testing.T) {
		rc := open(t, srv)
		m := pad(2000)
		var b []byte
		b = append(b, clientFrame(false, 0, opText, m[:100], true)...)
		for i := 100; i < 1100; i += 100 {
			b = append(b, clientFrame(false, 0, opCont, m[i:i+100], true)...)
		}
		rc.write(b)
		rc.expectClose(1009)
	})
}

// Protocol violations close the connection with the RFC's code.
func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	ping := []byte(`{"event":"ping"}`)
	cases := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"unmasked", clientFrame(true, 0, opText, ping, false), 1002},
		{"RSV1 without extension", clientFrame(true, 4, opText, ping, true), 1002},
		{"RSV2", clientFrame(true, 2, opText, ping, true), 1002},
		{"RSV3 on ping", clientFrame(true, 1, opPing, nil, true), 1002},
		{"reserved opcode", clientFrame(true, 0, 0x3, ping, true), 1002},
		{"continuation without start", clientFrame(true, 0, opCont, ping, true), 1002},
		{"fragmented ping", clientFrame(false, 0, opPing, nil, true), 1002},
		{"ping over 125 bytes", clientFrame(true, 0, opPing, make([]byte, 126), true), 1002},
		{"new message inside a fragmented one", append(clientFrame(false, 0, opText, ping[:4], true), clientFrame(true, 0, opText, ping, true)...), 1002},
		{"invalid UTF-8 text", clientFrame(true, 0, opText, []byte("{\"event\":\"ping\",\"data\":\"\xff\xfe\"}"), true), 1007},
		{"invalid UTF-8 across fragments", append(clientFrame(false, 0, opText, []byte("{\"a\":\"\xe2\x82"), true), clientFrame(true, 0, opCont, []byte("\"}"), true)...), 1007},
		{"close with invalid code", clientFrame(true, 0, opClose, closePayload(999, ""), true), 1002},
		{"close with 1-byte payload", clientFrame(true, 0, opClose, []byte{3}, true), 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := open(t, srv)
			rc.ping("before")
			rc.write(tc.frame)
			rc.expectClose(tc.code)
		})
	}
}

// SocketShark parses binary frames as JSON too.
func TestBinaryFrameCarryingJSON(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := open(t, srv)
	rc.write(clientFrame(true, 0, opBinary, []byte(`{"event":"ping","data":"bin"}`), true))
	expectPong(t, rc.nextJSON(), "bin")
	// Fragmented binary, too; binary is not UTF-8 checked at frame level.
	m := []byte(`{"event":"ping","data":"frag"}`)
	rc.write(append(clientFrame(false, 0, opBinary, m[:7], true), clientFrame(true, 0, opCont, m[7:], true)...))
	expectPong(t, rc.nextJSON(), "frag")
	// Binary that is not JSON is an invalid event, not a protocol error.
	rc.write(clientFrame(true, 0, opBinary, []byte{0xff, 0x00, 0x01}, true))
	if r := rc.nextJSON(); r["status"] != "error" || r["error"] != "Messages must be JSON and contain an event field." {
		t.Fatalf("binary garbage: %v", r)
	}
	rc.ping("alive")
}

// The close handshake: the server echoes the client's close frame and closes
// the TCP connection.
func TestCloseHandshake(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	for _, tc := range []struct {
		name    string
		payload []byte
		code    int
	}{
		{"1000", closePayload(1000, "bye"), 1000},
		{"4000 application code", closePayload(4000, ""), 4000},
		{"1001 going away", closePayload(1001, "tab closed"), 1001},
		{"no status", nil, 1005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := open(t, srv)
			rc.ping("hi")
			rc.write(clientFrame(true, 0, opClose, tc.payload, true))
			rc.expectClose(tc.code)
		})
	}
	t.Run("frames after close are ignored", func(t *testing.T) {
		rc := open(t, srv)
		b := clientFrame(true, 0, opClose, closePayload(1000, ""), true)
		b = append(b, clientFrame(true, 0, opText, []byte(`{"event":"ping"}`), true)...)
		rc.write(b)
		rc.expectClose(1000)
	})
}

// One bad connection never affects another connection on the same loop.
func TestBadConnectionIsolated(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *cfgT) { c.WS.MaxMessageSize = 1024 }, oneLoop)
	good := open(t, srv)
	good.ping("0")

	// Half a fragmented message in progress on the good connection: the
	// decoder state of one connection must not leak into another.
	msg := []byte(`{"event":"ping","data":"whole"}`)
	good.write(clientFrame(false, 0, opText, msg[:9], true))

	bad := []func(*rawConn){
		func(rc *rawConn) { rc.write(clientFrame(true, 0, opText, []byte("{}"), false)); rc.expectClose(1002) },
		func(rc *rawConn) { rc.write(clientFrame(true, 4, opText, []byte("{}"), true)); rc.expectClose(1002) },
		func(rc *rawConn) { rc.write(clientFrame(true, 0, opText, []byte("\xc0"), true)); rc.expectClose(1007) },
		func(rc *rawConn) {
			rc.write(clientFrame(true, 0, opText, make([]byte, 2000), true))
			rc.expectClose(1009)
		},
		func(rc *rawConn) {
			rc.write(clientFrame(false, 0, opText, []byte(`{"event":`), true))
			rc.write(clientFrame(true, 0, opText, []byte(`{}`), true))
			rc.expectClose(1002)
		},
	}
	for i, f := range bad {
		rc := open(t, srv)
		f(rc)
		// A bad handshake on the same loop, too.
		hc := dialRaw(t, srv)
		hc.write([]byte("GET / HTTP/1.0\r\n\r\n"))
		if resp, _ := hc.response(); resp.StatusCode != 400 {
			t.Fatalf("HTTP/1.0 upgrade: %s", resp.Status)
		}
		hc.expectEOF()
		if i == 0 {
			good.write(clientFrame(true, 0, opCont, msg[9:], true))
			expectPong(t, good.nextJSON(), "whole")
		}
		good.ping("still fine")
	}
}
