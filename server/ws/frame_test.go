package ws

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	gws "github.com/gobwas/ws"
)

// maskedFrame builds a client frame by hand, so that tests can also build
// the malformed ones a real client library refuses to write.
func maskedFrame(fin bool, rsv byte, op Op, payload []byte, mask [4]byte) []byte {
	b0 := byte(op) | rsv<<4
	if fin {
		b0 |= 0x80
	}
	var out []byte
	switch n := len(payload); {
	case n <= 125:
		out = append(out, b0, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, b0, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, mask[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= mask[i%4]
	}
	return out
}

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func text(fin bool, s string) []byte { return maskedFrame(fin, 0, OpText, []byte(s), testMask) }
func cont(fin bool, s string) []byte {
	return maskedFrame(fin, 0, OpContinuation, []byte(s), testMask)
}
func ctrl(op Op, s string) []byte { return maskedFrame(true, 0, op, []byte(s), testMask) }

func closePayload(code int, reason string) string {
	return string([]byte{byte(code >> 8), byte(code)}) + reason
}

func concat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// event is a decoded Frame reduced to what tests compare.
type event struct {
	kind   Kind
	op     Op
	data   string
	code   int
	reason string
}

// decodeAll runs Next over buf until it stops, as the event loop does.
func decodeAll(t *testing.T, buf []byte, max int) ([]event, *CloseError, int) {
	t.Helper()
	return decodeAllWith(t, &Decoder{}, buf, max)
}

func decodeAllWith(t *testing.T, d *Decoder, buf []byte, max int) ([]event, *CloseError, int) {
	t.Helper()
	var evs []event
	off := 0
	for {
		f, n, ok, err := d.Next(buf[off:], max)
		if n > len(buf)-off {
			t.Fatalf("n=%d beyond buffer %d", n, len(buf)-off)
		}
		if err != nil {
			if n != 0 || ok {
				t.Fatalf("error with n=%d ok=%v", n, ok)
			}
			return evs, err, off
		}
		if n == 0 {
			if ok {
				t.Fatal("ok with n=0")
			}
			return evs, nil, off
		}
		off += n
		if ok {
			evs = append(evs, event{f.Kind, f.Op, string(f.Payload), f.CloseCode, f.CloseReason})
		}
	}
}

func TestDecoderSequences(t *testing.T) {
	big := strings.Repeat("x", 70000)
	mid := strings.Repeat("y", 300)
	tests := []struct {
		name string
		in   []byte
		max  int
		want []event
		err  *CloseError
	}{
		{"text", text(true, "hello"), 100, []event{{KindMessage, OpText, "hello", 0, ""}}, nil},
		{"empty text", text(true, ""), 100, []event{{KindMessage, OpText, "", 0, ""}}, nil},
		{"binary not utf8-checked", maskedFrame(true, 0, OpBinary, []byte{0xff, 0xfe}, testMask), 100,
			[]event{{KindMessage, OpBinary, "\xff\xfe", 0, ""}}, nil},
		{"16-bit length", text(true, mid), 1000, []event{{KindMessage, OpText, mid, 0, ""}}, nil},
		{"64-bit length", text(true, big), 1 << 20, []event{{KindMessage, OpText, big, 0, ""}}, nil},
		{"exactly max", text(true, mid), len(mid), []event{{KindMessage, OpText, mid, 0, ""}}, nil},
		{"no limit", text(true, big), 0, []event{{KindMessage, OpText, big, 0, ""}}, nil},
		{"two frames", concat(text(true, "a"), ctrl(OpPing, "p")), 100,
			[]event{{KindMessage, OpText, "a", 0, ""}, {KindPing, OpPing, "p", 0, ""}}, nil},
		{"fragmented", concat(text(false, "he"), cont(false, ""), cont(false, "ll"), cont(true, "o")), 100,
			[]event{{KindMessage, OpText, "hello", 0, ""}}, nil},
		{"fragmented binary", concat(maskedFrame(false, 0, OpBinary, []byte{0xff}, testMask), cont(true, "\xfe")), 100,
			[]event{{KindMessage, OpBinary, "\xff\xfe", 0, ""}}, nil},
		{"control between fragments", concat(text(false, "he"), ctrl(OpPing, "p1"), cont(false, "ll"),
			ctrl(OpPong, "p2"), cont(true, "o"), text(true, "next")), 100,
			[]event{{KindPing, OpPing, "p1", 0, ""}, {KindPong, OpPong, "p2", 0, ""},
				{KindMessage, OpText, "hello", 0, ""}, {KindMessage, OpText, "next", 0, ""}}, nil},
		{"close between fragments", concat(text(false, "he"), ctrl(OpClose, closePayload(1000, "bye"))), 100,
			[]event{{KindClose, OpClose, closePayload(1000, "bye"), 1000, "bye"}}, nil},
		{"rune split across fragments", concat(text(false, "caf\xc3"), cont(true, "\xa9")), 100,
			[]event{{KindMessage, OpText, "café", 0, ""}}, nil},
		{"fragments exactly max", concat(text(false, "12345"), cont(true, "67890")), 10,
			[]event{{KindMessage, OpText, "1234567890", 0, ""}}, nil},

		{"unmasked", []byte{0x81, 0x01, 'a'}, 100, nil, errUnmasked},
		{"rsv1", maskedFrame(true, 4, OpText, []byte("a"), testMask), 100, nil, errRSV},
		{"rsv2", maskedFrame(true, 2, OpText, []byte("a"), testMask), 100, nil, errRSV},
		{"rsv3", maskedFrame(true, 1, OpText, []byte("a"), testMask), 100, nil, errRSV},
		{"opcode 3", maskedFrame(true, 0, 3, nil, testMask), 100, nil, errOpcode},
		{"opcode 0xb", maskedFrame(true, 0, 0xb, nil, testMask), 100, nil, errOpcode},
		{"fragmented ping", maskedFrame(false, 0, OpPing, nil, testMask), 100, nil, errFragControl},
		{"ping 126", ctrl(OpPing, strings.Repeat("p", 126)), 1000, nil, errControlLen},
		{"close 126", ctrl(OpClose, closePayload(1000, strings.Repeat("r", 124))), 1000, nil, errControlLen},
		{"ping 125", ctrl(OpPing, strings.Repeat("p", 125)), 10,
			[]event{{KindPing, OpPing, strings.Repeat("p", 125), 0, ""}}, nil},
		{"stray continuation", cont(true, "a"), 100, nil, errContinuation},
		{"continuation after message", concat(text(true, "a"), cont(true, "b")), 100,
			[]event{{KindMessage, OpText, "a", 0, ""}}, errContinuation},
		{"text during fragments", concat(text(false, "a"), text(true, "b")), 100, nil, errExpectContinue},
		{"binary during fragments", concat(text(false, "a"), maskedFrame(true, 0, OpBinary, nil, testMask)), 100, nil, errExpectContinue},
		{"64-bit msb", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, 0, nil, errLength},
		{"too big", text(true, mid), len(mid) - 1, nil, errTooBig},
		{"too big by fragments", concat(text(false, "12345"), cont(false, "678"), cont(true, "901")), 10, nil, errTooBig},
		{"invalid utf8", text(true, "a\xffb"), 100, nil, errUTF8},
		{"truncated rune", text(true, "caf\xc3"), 100, nil, errUTF8},
		{"surrogate", text(true, "\xed\xa0\x80"), 100, nil, errUTF8},
		{"invalid utf8 across fragments", concat(text(false, "caf\xc3"), cont(true, "x")), 100, nil, errUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err, _ := decodeAll(t, bytes.Clone(tt.in), tt.max)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(evs) != len(tt.want) {
				t.Fatalf("events = %d %+v, want %d", len(evs), evs, len(tt.want))
			}
			for i := range evs {
				if evs[i] != tt.want[i] {
					t.Fatalf("event %d = %+v, want %+v", i, evs[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecoderClose(t *testing.T) {
	tests := []struct {
		payload string
		code    int
		reason  string
		err     *CloseError
	}{
		{"", CloseNoStatus, "", nil},
		{"\x03", 0, "", errClosePayload},
		{closePayload(1000, ""), 1000, "", nil},
		{closePayload(1001, "going"), 1001, "going", nil},
		{closePayload(1003, ""), 1003, "", nil},
		{closePayload(1007, ""), 1007, "", nil},
		{closePayload(1011, ""), 1011, "", nil},
		{closePayload(1012, ""), 1012, "", nil},
		{closePayload(1014, ""), 1014, "", nil},
		{closePayload(3000, ""), 3000, "", nil},
		{closePayload(4999, "app"), 4999, "app", nil},
		{closePayload(1000, "héllo"), 1000, "héllo", nil},
		{closePayload(0, ""), 0, "", errCloseCode},
		{closePayload(999, ""), 0, "", errCloseCode},
		{closePayload(1004, ""), 0, "", errCloseCode},
		{closePayload(1005, ""), 0, "", errCloseCode},
		{closePayload(1006, ""), 0, "", errCloseCode},
		{closePayload(1015, ""), 0, "", errCloseCode},
		{closePayload(1016, ""), 0, "", errCloseCode},
		{closePayload(2000, ""), 0, "", errCloseCode},
		{closePayload(2999, ""), 0, "", errCloseCode},
		{closePayload(5000, ""), 0, "", errCloseCode},
		{closePayload(65535, ""), 0, "", errCloseCode},
		{closePayload(1000, "\xff"), 0, "", errCloseUTF8},
	}
	for _, tt := range tests {
		var d Decoder
		f, n, ok, err := d.Next(ctrl(OpClose, tt.payload), 0)
		if err != tt.err {
			t.Errorf("%q: err = %v, want %v", tt.payload, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if !ok || n != 6+len(tt.payload) || f.Kind != KindClose || f.CloseCode != tt.code ||
			f.CloseReason != tt.reason || string(f.Payload) != tt.payload {
			t.Errorf("%q: got %+v n=%d ok=%v", tt.payload, f, n, ok)
		}
	}
}

// TestDecoderSplit feeds every prefix of a stream: a prefix that ends
// inside a frame must give n == 0 and leave the bytes untouched (the loop
// calls again with the same bytes plus more), or, for text, be taken as
// far as it goes (streamed).
func TestDecoderSplit(t *testing.T) {
	streams := map[string][]byte{
		"small":      text(true, "hello world"),
		"16-bit":     text(true, strings.Repeat("ab", 200)),
		"64-bit":     maskedFrame(true, 0, OpBinary, bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6}, 10000), testMask),
		"fragmented": concat(text(false, "caf\xc3"), ctrl(OpPing, "x"), cont(false, strings.Repeat("\xa9", 1)), cont(true, strings.Repeat("z", 130))),
		"close":      ctrl(OpClose, closePayload(1000, "bye")),
		"empty":      text(true, ""),
	}
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			want, werr, _ := decodeAll(t, bytes.Clone(stream), 1<<20)
			if werr != nil || len(want) == 0 {
				t.Fatalf("whole stream: %v %v", want, werr)
			}
			// The event loop's view: the inbound buffer grows a byte at a
			// time and is discarded by n after each decoded frame.
			var d Decoder
			var got []event
			buf := bytes.Clone(stream)
			start := 0
			for end := 0; end <= len(buf); end++ {
				for {
					before := bytes.Clone(buf[start:end])
					f, n, ok, err := d.Next(buf[start:end], 1<<20)
					if err != nil {
						t.Fatalf("at %d..%d: %v", start, end, err)
					}
					if n == 0 {
						if !bytes.Equal(before, buf[start:end]) {
							t.Fatalf("at %d..%d: incomplete frame modified the buffer", start, end)
						}
						break
					}
					if ok {
						got = append(got, event{f.Kind, f.Op, string(f.Payload), f.CloseCode, f.CloseReason})
					}
					start += n
				}
			}
			if start != len(buf) || len(got) != len(want) {
				t.Fatalf("consumed %d of %d, events %+v want %+v", start, len(buf), got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestDecoderTooBigEarly: the 1009 comes from the header alone, before a
// byte of the payload arrived, so a client cannot make the server buffer it.
func TestDecoderTooBigEarly(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"16-bit header", text(true, strings.Repeat("a", 2000))[:8]},
		{"64-bit header", maskedFrame(true, 0, OpBinary, make([]byte, 70000), testMask)[:14]},
		{"64-bit header without mask", maskedFrame(true, 0, OpBinary, make([]byte, 70000), testMask)[:10]},
		{"huge 64-bit", []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			_, n, ok, err := d.Next(tt.in, 1000)
			if err != errTooBig || n != 0 || ok {
				t.Fatalf("n=%d ok=%v err=%v, want 1009", n, ok, err)
			}
		})
	}
	// By fragments: the running total counts, not only the frame.
	var d Decoder
	first := text(false, strings.Repeat("a", 600))
	if _, n, ok, err := d.Next(first, 1000); err != nil || ok || n != len(first) {
		t.Fatalf("first fragment: n=%d ok=%v err=%v", n, ok, err)
	}
	if _, _, _, err := d.Next(cont(true, strings.Repeat("b", 401))[:4], 1000); err != errTooBig {
		t.Fatalf("second fragment header: err=%v, want 1009", err)
	}
	if d.InProgress() || d.msg != nil {
		t.Fatal("state kept after an error")
	}
	// A huge "no limit" frame must not overflow the size arithmetic.
	if _, _, _, err := d.Next([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0); err != errTooBig {
		t.Fatalf("unlimited huge: err=%v, want 1009", err)
	}
}

// TestDecoderEarlyErrors: violations visible in the first two bytes are
// reported without waiting for the rest of the frame.
func TestDecoderEarlyErrors(t *testing.T) {
	tests := []struct {
		in  []byte
		err *CloseError
	}{
		{[]byte{0x81, 0x7e}, errUnmasked},
		{[]byte{0xc1, 0xfe}, errRSV},
		{[]byte{0x83, 0xfe}, errOpcode},
		{[]byte{0x09, 0x80}, errFragControl},
		{[]byte{0x89, 0xfe}, errControlLen},
		{[]byte{0x80, 0xfe}, errContinuation},
	}
	for _, tt := range tests {
		var d Decoder
		if _, _, _, err := d.Next(tt.in, 100); err != tt.err {
			t.Errorf("% x: err = %v, want %v", tt.in, err, tt.err)
		}
	}
}

func TestDecoderBufferLifetime(t *testing.T) {
	var d Decoder
	if _, _, _, err := d.Next(text(false, "ab"), 100); err != nil || !d.InProgress() || d.msg == nil {
		t.Fatalf("first fragment: err=%v", err)
	}
	f, _, ok, err := d.Next(cont(true, "cd"), 100)
	if err != nil || !ok || string(f.Payload) != "abcd" {
		t.Fatalf("final fragment: %+v %v", f, err)
	}
	if d.InProgress() {
		t.Fatal("still in progress")
	}
	// The payload stays readable until the next call, which gives the
	// buffer back even when it decodes nothing.
	if d.msg == nil {
		t.Fatal("buffer released before the next call")
	}
	if _, n, _, _ := d.Next(nil, 100); n != 0 || d.msg != nil {
		t.Fatal("buffer kept after the next call")
	}
	d.Next(text(false, "x"), 100)
	d.Reset()
	if d.InProgress() || d.msg != nil {
		t.Fatal("Reset kept state")
	}
	if _, _, _, err := d.Next(cont(true, "y"), 100); err != errContinuation {
		t.Fatalf("after Reset: %v", err)
	}
}

// TestDecoderGobwas cross-checks against frames written by gobwas/ws with
// random masks.
func TestDecoderGobwas(t *testing.T) {
	for _, size := range []int{0, 1, 7, 8, 15, 16, 17, 100, 125, 126, 127, 1000, 65535, 65536, 100000} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte('a' + i%26)
		}
		var buf bytes.Buffer
		if err := gws.WriteFrame(&buf, gws.MaskFrame(gws.NewTextFrame(payload))); err != nil {
			t.Fatal(err)
		}
		var d Decoder
		f, n, ok, err := d.Next(buf.Bytes(), 1<<20)
		if err != nil || !ok || n != buf.Len() || !bytes.Equal(f.Payload, payload) || f.Op != OpText {
			t.Fatalf("size %d: n=%d ok=%v err=%v", size, n, ok, err)
		}
	}
}

func TestDecoderZeroAlloc(t *testing.T) {
	frame := text(true, strings.Repeat("a", 100))
	buf := make([]byte, len(frame))
	var d Decoder
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		if _, _, ok, err := d.Next(buf, 1<<20); !ok || err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("allocs = %v", allocs)
	}
}

func TestDecoderSize(t *testing.T) {
	// Documented in Decoder's comment; one lives in every session.
	if s := unsafe.Sizeof(Decoder{}); s > 16 {
		t.Fatalf("Decoder is %d bytes", s)
	}
}

// readServerFrame reads what AppendFrame wrote with gobwas's header parser,
// an independent implementation.
func readServerFrame(b []byte) (gws.Frame, error) {
	r := bytes.NewReader(b)
	h, err := gws.ReadHeader(r)
	if err != nil {
		return gws.Frame{}, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return gws.Frame{}, err
	}
	if r.Len() != 0 {
		return gws.Frame{}, fmt.Errorf("%d bytes after the frame", r.Len())
	}
	return gws.Frame{Header: h, Payload: p}, nil
}

func TestAppendFrame(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'z'}, size)
		for _, op := range []Op{OpText, OpBinary, OpPing, OpPong} {
			if op&8 != 0 && size > 125 {
				continue
			}
			out := AppendFrame([]byte("pre"), op, payload)
			if string(out[:3]) != "pre" {
				t.Fatal("dst not kept")
			}
			out = out[3:]
			if hl := HeaderLen(size); len(out) != hl+size || len(AppendFrameHeader(nil, op, size)) != hl {
				t.Fatalf("size %d: frame %d bytes, HeaderLen %d", size, len(out), hl)
			}
			f, err := readServerFrame(out)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if !f.Header.Fin || f.Header.Masked || f.Header.Rsv != 0 || byte(f.Header.OpCode) != byte(op) ||
				!bytes.Equal(f.Payload, payload) {
				t.Fatalf("size %d op %d: header %+v", size, op, f.Header)
			}
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes, 2-byte runes
	tests := []struct {
		code    int
		reason  string
		payload string
	}{
		{CloseNormal, "", closePayload(1000, "")},
		{CloseTooBig, "message too big", closePayload(1009, "message too big")},
		{CloseNoStatus, "ignored", ""},
		{0, "", ""},
		{ClosePolicyViolation, strings.Repeat("a", 200), closePayload(1008, strings.Repeat("a", 123))},
		{CloseGoingAway, long, closePayload(1001, strings.Repeat("é", 61))},
		{CloseGoingAway, "a" + long, closePayload(1001, "a"+strings.Repeat("é", 61))},
	}
	for _, tt := range tests {
		out := AppendClose(nil, tt.code, tt.reason)
		f, err := readServerFrame(out)
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.OpCode != gws.OpClose || !f.Header.Fin || f.Header.Masked || string(f.Payload) != tt.payload {
			t.Fatalf("code %d: %+v %q", tt.code, f.Header, f.Payload)
		}
		if len(f.Payload) > 125 || !utf8.Valid(f.Payload[min(2, len(f.Payload)):]) {
			t.Fatalf("code %d: bad payload %q", tt.code, f.Payload)
		}
		// What the server sends must be what its own decoder accepts.
		masked := maskedFrame(true, 0, OpClose, f.Payload, testMask)
		var d Decoder
		if _, _, ok, err := d.Next(masked, 0); !ok || err != nil {
			t.Fatalf("code %d: own decoder: %v", tt.code, err)
		}
	}
}

func BenchmarkDecodeSmallText(b *testing.B) {
	frame := text(true, strings.Repeat(`{"a":1}`, 15)[:100])
	buf := make([]byte, len(frame))
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		// Unmasking is in place: restore the wire bytes, as a read would.
		copy(buf, frame)
		if _, _, ok, err := d.Next(buf, 1<<20); !ok || err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinary64K(b *testing.B) {
	frame := maskedFrame(true, 0, OpBinary, make([]byte, 64<<10), testMask)
	buf := make([]byte, len(frame))
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		copy(buf, frame)
		if _, _, ok, err := d.Next(buf, 1<<20); !ok || err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFragmented(b *testing.B) {
	stream := concat(text(false, strings.Repeat("a", 50)), cont(false, strings.Repeat("b", 50)), cont(true, strings.Repeat("c", 50)))
	buf := make([]byte, len(stream))
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		copy(buf, stream)
		for off := 0; off < len(buf); {
			_, n, _, err := d.Next(buf[off:], 1<<20)
			if err != nil || n == 0 {
				b.Fatal(err)
			}
			off += n
		}
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 100)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		dst = AppendFrame(dst[:0], OpText, payload)
	}
}

func TestFrameLen(t *testing.T) {
	for _, size := range []int{0, 5, 125, 126, 1000, 65535, 65536, 200000} {
		f := clientFrameForLen(size)
		for cut := 0; cut < len(f) && cut < 16; cut++ {
			got := FrameLen(f[:cut])
			hdr := HeaderLen(size) + 4
			if cut < hdr-4 && got != 0 {
				t.Fatalf("size %d, %d bytes: FrameLen %d before the header is complete", size, cut, got)
			}
			if cut >= hdr-4 && got != len(f) {
				t.Fatalf("size %d, %d bytes: FrameLen %d, want %d", size, cut, got, len(f))
			}
		}
	}
}

// clientFrameForLen is a masked text frame with an n-byte payload.
func clientFrameForLen(n int) []byte {
	b := AppendFrameHeader(nil, OpText, n)
	b[1] |= 0x80
	b = append(b, 1, 2, 3, 4)
	return append(b, make([]byte, n)...)
}
