package ws

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseUpgrade(f *testing.F) {
	f.Add([]byte(goodRequest), 4096)
	f.Add([]byte(reqWith("GET / HTTP/1.1", nil)), 64)
	f.Add([]byte(reqWith("GET http://h?q HTTP/1.1", map[string]string{"version": "Sec-WebSocket-Version: 8"})), 4096)
	f.Add([]byte(reqWith("GET / HTTP/1.1", nil)+"\x81\x80abcd"), 4096)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\n\n"), 4096)
	f.Add([]byte("\r\n\r\n"), 10)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int) {
		if maxSize > 1<<16 || maxSize < -1 {
			maxSize = 4096
		}
		limit := maxSize
		if limit <= 0 {
			limit = DefaultMaxHeadSize
		}
		orig := bytes.Clone(data)
		req, n, err := ParseUpgrade(data, maxSize)
		if !bytes.Equal(orig, data) {
			t.Fatal("buffer modified")
		}
		switch {
		case err != nil:
			if req != nil || n != 0 {
				t.Fatalf("error with req=%v n=%d", req, n)
			}
		case req == nil:
			if n != 0 || len(data) > limit {
				t.Fatalf("incomplete with n=%d len=%d limit=%d", n, len(data), limit)
			}
		default:
			if n <= 0 || n > len(data) || n > limit || string(data[n-4:n]) != "\r\n\r\n" {
				t.Fatalf("n=%d len=%d", n, len(data))
			}
			if !validKey([]byte(req.Key)) || req.Host == "" || !strings.HasPrefix(req.Path, "/") {
				t.Fatalf("accepted %+v", req)
			}
			// The head alone parses the same: nothing after it was read.
			if r2, n2, err2 := ParseUpgrade(data[:n], maxSize); err2 != nil || n2 != n || r2.Key != req.Key {
				t.Fatalf("head alone: n=%d err=%v", n2, err2)
			}
			// Every strict prefix of an accepted head is incomplete.
			if _, n3, err3 := ParseUpgrade(data[:n-1], maxSize); n3 != 0 || err3 != nil {
				t.Fatalf("prefix: n=%d err=%v", n3, err3)
			}
		}
	})
}

func FuzzDecoder(f *testing.F) {
	f.Add(text(true, "hello"), 100)
	f.Add(concat(text(false, "caf\xc3"), ctrl(OpPing, "x"), cont(true, "\xa9")), 100)
	f.Add(concat(text(false, "12345"), cont(true, "67890")), 8)
	f.Add(text(true, strings.Repeat("a", 300)), 1000)
	f.Add(maskedFrame(true, 0, OpBinary, make([]byte, 70000)[:66000], testMask)[:30], 1<<20)
	f.Add(ctrl(OpClose, closePayload(1000, "bye")), 0)
	f.Add(ctrl(OpClose, "\x03"), 0)
	f.Add([]byte{0x81, 0x01, 'a'}, 100)
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, 0)
	f.Add(concat(text(false, "a"), text(true, "b")), 100)
	f.Fuzz(func(t *testing.T, data []byte, maxMessage int) {
		checkDecoder(t, data, maxMessage, false)
	})
}

// FuzzDecoderDeflate is FuzzDecoder with permessage-deflate negotiated:
// compressed messages, bombs and corrupt data must give a message within
// the limit or a clean close code, never a panic.
func FuzzDecoderDeflate(f *testing.F) {
	z := func(s string) []byte { return deflateRaw(f, []byte(s)) }
	zl := z(strings.Repeat("abcdef", 200))
	f.Add(maskedFrame(true, 4, OpText, z("hello hello"), testMask), 100)
	f.Add(maskedFrame(true, 4, OpBinary, deflateRaw(f, make([]byte, 100000)), testMask), 1000)
	f.Add(concat(maskedFrame(false, 4, OpText, zl[:7], testMask), ctrl(OpPing, "x"),
		maskedFrame(true, 0, OpContinuation, zl[7:], testMask)), 2000)
	f.Add(concat(maskedFrame(false, 4, OpText, zl[:7], testMask), maskedFrame(true, 4, OpContinuation, zl[7:], testMask)), 2000)
	f.Add(maskedFrame(true, 4, OpText, []byte{0xff, 0xfe, 0x00}, testMask), 100)
	f.Add(maskedFrame(true, 4, OpText, nil, testMask), 0)
	f.Add(concat(text(true, "plain"), maskedFrame(true, 4, OpText, z("caf\xc3\xa9"), testMask)), 100)
	f.Fuzz(func(t *testing.T, data []byte, maxMessage int) {
		if maxMessage <= 0 || maxMessage > 1<<20 {
			maxMessage = 1 << 20 // no bound would let a bomb run the fuzzer out of memory
		}
		checkDecoder(t, data, maxMessage, true)
	})
}

// FuzzDeflateRoundTrip: whatever AppendCompressedFrame writes, the
// decoder (as the peer's would, after masking) gives back unchanged.
func FuzzDeflateRoundTrip(f *testing.F) {
	f.Add([]byte(""), true)
	f.Add([]byte(sampleMessage), false)
	f.Add(bytes.Repeat([]byte("ab"), 5000), false)
	f.Fuzz(func(t *testing.T, payload []byte, text bool) {
		op := OpBinary
		if text {
			if !utf8.Valid(payload) {
				return
			}
			op = OpText
		}
		frame := AppendCompressedFrame(nil, op, payload)
		h, err := readServerFrame(frame)
		if err != nil || h.Header.Rsv != 4 || byte(h.Header.OpCode) != byte(op) {
			t.Fatalf("header %+v %v", h.Header, err)
		}
		if got, err := stdInflate(h.Payload); err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("stdlib inflate: %v", err)
		}
		d := Decoder{Deflate: true}
		fr, n, ok, cerr := d.Next(maskedFrame(true, 4, op, h.Payload, testMask), len(payload))
		if cerr != nil || !ok || n == 0 || !fr.Compressed || !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("decoder: %v", cerr)
		}
	})
}

// FuzzNegotiateDeflate: any extension header parses without panic, and an
// accepted offer is one that the response can honour.
func FuzzNegotiateDeflate(f *testing.F) {
	f.Add("permessage-deflate; client_max_window_bits")
	f.Add(`permessage-deflate; server_max_window_bits="15", x; y="a\"b"`)
	f.Add("permessage-deflate; server_max_window_bits=10, permessage-deflate")
	f.Fuzz(func(t *testing.T, v string) {
		offered, ok, window := negotiateDeflate([]byte(v))
		if ok && !offered || window && !ok {
			t.Fatalf("offered=%v ok=%v window=%v", offered, ok, window)
		}
		if ok && !strings.Contains(strings.ToLower(v), "permessage-deflate") {
			t.Fatal("accepted without an offer")
		}
		if window && !strings.Contains(strings.ToLower(v), "server_max_window_bits") {
			t.Fatal("window without server_max_window_bits")
		}
	})
}

func checkDecoder(t *testing.T, data []byte, maxMessage int, deflate bool) {
	{
		d := Decoder{Deflate: deflate}
		buf := data
		for len(buf) > 0 {
			// A copy of the state lets each frame also be tried one byte
			// short, which must be "incomplete" whenever the whole decodes.
			shadow := Decoder{op: d.op, compressed: d.compressed, Deflate: d.Deflate}
			if d.msg != nil {
				m := *d.msg
				m.b = bytes.Clone(m.b)
				shadow.msg = &m
			}
			short := bytes.Clone(buf)

			f, n, ok, err := d.Next(buf, maxMessage)
			if n < 0 || n > len(buf) {
				t.Fatalf("n=%d len=%d", n, len(buf))
			}
			if err != nil {
				if n != 0 || ok {
					t.Fatalf("error with n=%d ok=%v", n, ok)
				}
				if err.Code < 1000 || err.Reason == "" {
					t.Fatalf("bad error %+v", err)
				}
				return
			}
			if n == 0 {
				if ok {
					t.Fatal("ok without bytes")
				}
				return
			}
			// One byte short, a frame is either left alone or, streamed
			// (text), taken as far as it goes, with no event.
			if _, n2, ok2, err2 := shadow.Next(short[:n-1], maxMessage); err2 != nil || ok2 || n2 != 0 && n2 != n-1 {
				t.Fatalf("prefix of a %d-byte frame: n=%d ok=%v err=%v", n, n2, ok2, err2)
			}
			if ok {
				switch f.Kind {
				case KindMessage:
					if f.Op != OpText && f.Op != OpBinary {
						t.Fatalf("message op %d", f.Op)
					}
					if f.Op == OpText && !utf8.Valid(f.Payload) {
						t.Fatal("invalid UTF-8 text delivered")
					}
					if maxMessage > 0 && len(f.Payload) > maxMessage {
						t.Fatalf("message of %d over %d", len(f.Payload), maxMessage)
					}
					if f.Compressed && !deflate {
						t.Fatal("compressed without deflate")
					}
				case KindPing, KindPong:
					if len(f.Payload) > MaxControlPayload {
						t.Fatal("long control frame")
					}
				case KindClose:
					if f.CloseCode != CloseNoStatus && !ValidCloseCode(f.CloseCode) || !utf8.ValidString(f.CloseReason) {
						t.Fatalf("close %d %q", f.CloseCode, f.CloseReason)
					}
				default:
					t.Fatalf("kind %d", f.Kind)
				}
			}
			buf = buf[n:]
		}
	}
}

// FuzzDecoderChunked: the same bytes given to Next whole, or arriving in
// any split (as reads deliver them, the event loop calling Next again with
// what it has not consumed plus what came since), give the same events and
// the same error. splits gives the sizes of the arrivals (each byte one
// arrival of 1..256 bytes; what remains arrives last). It also holds Need
// to its word: below min bytes Next makes no progress, from min on it does.
func FuzzDecoderChunked(f *testing.F) {
	// Small seeds: the fuzzer minimizes every input that finds new
	// coverage, and a large one would take the whole run.
	big := strings.Repeat("é€😀a", 30)
	zl := deflateRaw(f, []byte(strings.Repeat("abcdef", 200)))
	long := maskedFrame(true, 0, OpText, []byte(strings.Repeat("é€😀a", 7000)), testMask)[:300]
	f.Add(text(true, "hello"), 100, false, []byte{0, 1, 2})
	f.Add(text(true, big), 1<<20, false, []byte{13, 200, 7, 255, 1})
	f.Add(concat(text(false, "caf\xc3"), ctrl(OpPing, "x"), cont(false, "\xa9"+big), cont(true, "end")), 1<<20, false, []byte{5, 5, 5, 90})
	f.Add(concat(text(false, "ok"), cont(false, "\xff"+big), cont(true, "never")), 1<<20, false, []byte{9, 0, 0, 0})
	f.Add(concat(text(true, big[:50]+"\xe2\x82("), text(true, "next")), 1<<20, false, []byte{10, 10, 10})
	f.Add(maskedFrame(true, 0, OpBinary, []byte(big), testMask), 1<<20, false, []byte{30, 30})
	f.Add(concat(maskedFrame(false, 4, OpText, zl[:7], testMask), ctrl(OpPing, "x"), maskedFrame(true, 0, OpContinuation, zl[7:], testMask)), 2000, true, []byte{3, 3})
	f.Add(concat(text(true, "plain"), maskedFrame(true, 4, OpText, deflateRaw(f, []byte(big)), testMask)), 1<<20, true, []byte{1, 2, 3, 4})
	f.Add(ctrl(OpClose, closePayload(1000, "bye")), 0, false, []byte{0})
	f.Add(text(true, big), 100, false, []byte{2, 3})
	f.Add(long, 1<<20, false, []byte{5, 9, 40})
	f.Add(append(bytes.Clone(long[:200]), 0xff), 1<<20, false, []byte{20, 0})
	f.Fuzz(func(t *testing.T, data []byte, maxMessage int, deflate bool, splits []byte) {
		if deflate && (maxMessage <= 0 || maxMessage > 1<<20) {
			maxMessage = 1 << 20 // no bound would let a bomb run the fuzzer out of memory
		}
		wantEv, wantErr := decodeArrivals(t, bytes.Clone(data), maxMessage, deflate, nil)
		gotEv, gotErr := decodeArrivals(t, bytes.Clone(data), maxMessage, deflate, splits)
		if gotErr != wantErr {
			t.Fatalf("error %v in pieces, %v whole", gotErr, wantErr)
		}
		if len(gotEv) != len(wantEv) {
			t.Fatalf("%d events in pieces, %d whole", len(gotEv), len(wantEv))
		}
		for i := range gotEv {
			if gotEv[i] != wantEv[i] {
				t.Fatalf("event %d in pieces %.80v, whole %.80v", i, gotEv[i], wantEv[i])
			}
		}
	})
}

// decodeArrivals decodes data arriving in pieces (see FuzzDecoderChunked);
// nil splits: all at once.
func decodeArrivals(t *testing.T, data []byte, maxMessage int, deflate bool, splits []byte) ([]event, *CloseError) {
	d := Decoder{Deflate: deflate}
	var evs []event
	start, arrived := 0, 0
	for arrived < len(data) {
		if len(splits) > 0 {
			arrived = min(len(data), arrived+int(splits[0])+1)
			splits = splits[1:]
		} else {
			arrived = len(data)
		}
		for {
			buf := data[start:arrived]
			min, _ := d.Need(buf)
			f, n, ok, err := d.Next(buf, maxMessage)
			if n < 0 || n > len(buf) || err != nil && (n != 0 || ok) || ok && n == 0 {
				t.Fatalf("n=%d ok=%v err=%v with %d bytes", n, ok, err, len(buf))
			}
			if err == nil && n > 0 && len(buf) < min {
				t.Fatalf("progress (n=%d) with %d bytes, Need said %d", n, len(buf), min)
			}
			if err == nil && n == 0 && min > 0 && len(buf) >= min {
				t.Fatalf("no progress with %d bytes, Need said %d", len(buf), min)
			}
			if err != nil {
				return evs, err
			}
			if ok {
				if f.Kind == KindMessage && f.Op == OpText && !utf8.Valid(f.Payload) {
					t.Fatal("invalid UTF-8 text delivered")
				}
				evs = append(evs, event{f.Kind, f.Op, string(f.Payload), f.CloseCode, f.CloseReason})
			}
			if n == 0 {
				break
			}
			start += n
		}
	}
	return evs, nil
}

// FuzzUTF8State: the incremental check, fed a text in any pieces, agrees
// with utf8.Valid on the whole.
func FuzzUTF8State(f *testing.F) {
	f.Add([]byte("café €uro 😀"), []byte{3, 1, 0, 2})
	f.Add([]byte("caf\xc3"), []byte{3})
	f.Add([]byte("\xed\xa0\x80"), []byte{0, 0})
	f.Add([]byte("\xf4\x90\x80\x80"), []byte{1})
	f.Add([]byte("\xe0\x9f\xbf"), []byte{0, 0})
	f.Add([]byte("\xc0\xaf"), []byte{0})
	f.Add([]byte(strings.Repeat("x", 100)+"\xf0\x9f\x98"), []byte{99})
	f.Fuzz(func(t *testing.T, text, splits []byte) {
		var pieces [][]byte
		rest := text
		for _, s := range splits {
			k := min(len(rest), int(s))
			pieces = append(pieces, rest[:k])
			rest = rest[k:]
		}
		pieces = append(pieces, rest)
		if got, want := feedAll(pieces...), utf8.Valid(text); got != want {
			t.Fatalf("%q in pieces %q: %v, utf8.Valid %v", text, pieces, got, want)
		}
	})
}
