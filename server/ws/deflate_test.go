package ws

import (
	"bufio"
	"bytes"
	stdflate "compress/flate"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/httphead"
	gws "github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// deflateRaw compresses p as a permessage-deflate client does, with the
// standard library: raw DEFLATE, sync flush, the 4-byte tail removed.
func deflateRaw(t testing.TB, p []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := stdflate.NewWriter(&buf, stdflate.DefaultCompression)
	w.Write(p)
	w.Flush()
	b := buf.Bytes()
	if !bytes.HasSuffix(b, []byte("\x00\x00\xff\xff")) {
		t.Fatalf("no sync flush tail: % x", b)
	}
	return b[:len(b)-4]
}

// stdInflate decompresses a permessage-deflate payload with the standard
// library, independently of the package's inflater.
func stdInflate(p []byte) ([]byte, error) {
	r := stdflate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
	return io.ReadAll(r)
}

// ztext and zbin build compressed client frames (RSV1 on the first).
func ztext(t testing.TB, s string) []byte {
	return maskedFrame(true, 4, OpText, deflateRaw(t, []byte(s)), testMask)
}

// sampleJSON is deterministic JSON of about n bytes shaped like mako's
// pushed messages, with enough variety not to compress unrealistically.
func sampleJSON(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	words := []string{"alpha", "books", "update", "price", "stock", "order", "user", "status", "active", "pending", "shipped", "north", "south"}
	var b strings.Builder
	b.WriteString(`{"event":"message","subscription":"books.b1","data":{"items":[`)
	for i := 0; b.Len() < n-60; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"%s %s","price":%d.%02d,"qty":%d}`, r.IntN(1e6),
			words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(500), r.IntN(100), r.IntN(50))
	}
	b.WriteString(`]},"sent_at":"2026-11-25T08:24:12.100Z"}`)
	return []byte(b.String())
}

// A typical pushed message with its timing fields.
const sampleMessage = `{"event":"message","subscription":"books.b1","data":{"id":183,"title":"New arrivals","price":12.5,` +
	`"author":"J. Smith","tags":["fiction","new"],"stock":{"north":3,"south":0}},"received_at":"2026-11-25T08:24:12.000Z",` +
	`"queue_size":0,"sent_at":"2026-11-25T08:24:12.100Z","published_at":"2026-11-25T08:24:11.990Z"}`

func TestNegotiateDeflate(t *testing.T) {
	tests := []struct {
		value                   string
		offered, deflate, win15 bool
	}{
		{"permessage-deflate", true, true, false},
		{"Permessage-Deflate", true, true, false},
		{"permessage-deflate; client_max_window_bits", true, true, false},
		{"permessage-deflate; client_max_window_bits=10", true, true, false},
		{`permessage-deflate; client_max_window_bits="12"`, true, true, false},
		{"permessage-deflate;client_max_window_bits=15;server_no_context_takeover", true, true, false},
		{"permessage-deflate ; client_no_context_takeover ; server_no_context_takeover", true, true, false},
		{"permessage-deflate; server_max_window_bits=15", true, true, true},
		{`permessage-deflate; server_max_window_bits="15"`, true, true, true},
		{`permessage-deflate; server_max_window_bits="1\5"`, true, true, true},
		{"permessage-deflate; server_max_window_bits = 15", true, true, true},
		// Parameters mako cannot honour, or invalid ones: declined.
		{"permessage-deflate; server_max_window_bits=10", true, false, false},
		{"permessage-deflate; server_max_window_bits=8", true, false, false},
		{"permessage-deflate; server_max_window_bits", true, false, false},
		{"permessage-deflate; server_max_window_bits=16", true, false, false},
		{"permessage-deflate; server_max_window_bits=015", true, false, false},
		{"permessage-deflate; client_max_window_bits=7", true, false, false},
		{`permessage-deflate; client_max_window_bits=""`, true, false, false},
		{`permessage-deflate; client_max_window_bits="123456789012345678"`, true, false, false},
		{"permessage-deflate; server_no_context_takeover=1", true, false, false},
		{"permessage-deflate; client_no_context_takeover=true", true, false, false},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", true, false, false},
		{"permessage-deflate; client_max_window_bits; client_max_window_bits=10", true, false, false},
		{"permessage-deflate; x-unknown", true, false, false},
		// Several offers: the first acceptable one wins.
		{"permessage-deflate; server_max_window_bits=10, permessage-deflate", true, true, false},
		{"permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate; server_max_window_bits=15", true, true, true},
		{"permessage-deflate; foo=\"a,b\", permessage-deflate", true, true, false},
		{"permessage-deflate; server_max_window_bits=9, permessage-deflate; server_max_window_bits=11", true, false, false},
		{"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", true, true, false},
		{"foo; a=1; b=\"x;y, z\", permessage-deflate", true, true, false},
		{", ,permessage-deflate,", true, true, false},
		// Not permessage-deflate.
		{"", false, false, false},
		{"x-webkit-deflate-frame", false, false, false},
		{"permessage-deflatex", false, false, false},
		{"foo; permessage-deflate", false, false, false},
		{`foo; a="permessage-deflate"`, false, false, false},
		// Malformed: the rest of the value is ignored.
		{"permessage-deflate x", false, false, false},
		{`foo; a="unterminated, permessage-deflate`, false, false, false},
		{"foo; =1, permessage-deflate", false, false, false},
		{"foo;, permessage-deflate", false, false, false},
		{"foo; a=, permessage-deflate", false, false, false},
		{"permessage-deflate; client_max_window_bits=", false, false, false},
		{`foo; a="x\`, false, false, false},
		{"permessage-deflate; server_max_window_bits=10, @", true, false, false},
	}
	for _, tt := range tests {
		offered, ok, win := negotiateDeflate([]byte(tt.value))
		if offered != tt.offered || ok != tt.deflate || win != tt.win15 {
			t.Errorf("%q: offered=%v deflate=%v window=%v, want %v %v %v",
				tt.value, offered, ok, win, tt.offered, tt.deflate, tt.win15)
		}
	}
	if a := testing.AllocsPerRun(100, func() {
		negotiateDeflate([]byte(`permessage-deflate; server_max_window_bits="10", permessage-deflate; client_max_window_bits`))
	}); a != 0 {
		t.Fatalf("negotiateDeflate allocates %v", a)
	}
}

func TestParseUpgradeDeflate(t *testing.T) {
	tests := []struct {
		name                    string
		lines                   []string
		offered, deflate, win15 bool
	}{
		{"none", nil, false, false, false},
		{"browser", []string{"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"}, true, true, false},
		{"declined then accepted on a later line", []string{
			"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10",
			"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15"}, true, true, true},
		{"first line wins", []string{
			"Sec-WebSocket-Extensions: permessage-deflate",
			"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15"}, true, true, false},
		{"declined only", []string{"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12"}, true, false, false},
		{"unknown extension", []string{"Sec-WebSocket-Extensions: x-foo; bar"}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := reqWith("GET / HTTP/1.1", nil, tt.lines...)
			req, _, err := ParseUpgrade([]byte(raw), 4096)
			if err != nil {
				t.Fatal(err)
			}
			if req.DeflateOffered != tt.offered || req.Deflate != tt.deflate || req.deflateWindow != tt.win15 {
				t.Fatalf("offered=%v deflate=%v window=%v", req.DeflateOffered, req.Deflate, req.deflateWindow)
			}
		})
	}
}

func TestAppendAcceptDeflate(t *testing.T) {
	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Key: goodKey}, ""},
		{Request{Key: goodKey, DeflateOffered: true}, ""},
		{Request{Key: goodKey, Deflate: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{Request{Key: goodKey, Deflate: true, deflateWindow: true},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15"},
	} {
		out := AppendAcceptDeflate([]byte("pre"), &tt.req)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out[3:])), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
			resp.Header.Get("Sec-WebSocket-Extensions") != tt.want || !bytes.HasSuffix(out, []byte("\r\n\r\n")) {
			t.Fatalf("%+v: %d %v", tt.req, resp.StatusCode, resp.Header)
		}
		if tt.want == "" && !bytes.Equal(out[3:], AppendAccept(nil, goodKey)) {
			t.Fatal("differs from AppendAccept")
		}
		// gobwas's parser reads back what the server selected.
		if tt.want != "" {
			opts, ok := httpheadOptions(t, tt.want)
			if !ok || len(opts) != 1 {
				t.Fatalf("gobwas parse: %v %v", opts, ok)
			}
		}
	}
	req := Request{Key: goodKey, Deflate: true, deflateWindow: true}
	var out []byte
	if a := testing.AllocsPerRun(100, func() { out = AppendAcceptDeflate(out[:0], &req) }); a != 0 {
		t.Fatalf("allocs = %v", a)
	}
}

// httpheadOptions parses a response's extension list with gobwas's
// httphead and wsflate, as a gobwas client would.
func httpheadOptions(t *testing.T, v string) ([]wsflate.Parameters, bool) {
	t.Helper()
	opts, ok := httphead.ParseOptions([]byte(v), nil)
	if !ok {
		return nil, false
	}
	var ps []wsflate.Parameters
	for _, o := range opts {
		if string(o.Name) != wsflate.ExtensionName {
			continue
		}
		var p wsflate.Parameters
		if err := p.Parse(o); err != nil {
			t.Fatalf("wsflate rejects %q: %v", v, err)
		}
		if !p.ServerNoContextTakeover || !p.ClientNoContextTakeover {
			t.Fatalf("wsflate reads %+v", p)
		}
		ps = append(ps, p)
	}
	return ps, true
}

func TestDecoderDeflate(t *testing.T) {
	long := strings.Repeat("héllo wörld ", 500)
	z := func(s string) []byte { return deflateRaw(t, []byte(s)) }
	zl := z(long)
	third := len(zl) / 3
	emptyZ := z("")
	bfinal := func(s string) []byte { // a client ending the message with a final block
		var buf bytes.Buffer
		w, _ := stdflate.NewWriter(&buf, 5)
		w.Write([]byte(s))
		w.Close()
		return buf.Bytes()
	}
	bomb := deflateRaw(t, make([]byte, 1<<20))
	if len(bomb) > 2048 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	tests := []struct {
		name string
		in   []byte
		max  int
		want []event
		err  *CloseError
	}{
		{"text", ztext(t, "hello hello hello"), 100, []event{{KindMessage, OpText, "hello hello hello", 0, ""}}, nil},
		{"binary", maskedFrame(true, 4, OpBinary, z("\xff\xfe\xff\xfe\xff\xfe"), testMask), 100,
			[]event{{KindMessage, OpBinary, "\xff\xfe\xff\xfe\xff\xfe", 0, ""}}, nil},
		{"empty as 0x00", maskedFrame(true, 4, OpText, emptyZ, testMask), 100, []event{{KindMessage, OpText, "", 0, ""}}, nil},
		{"empty payload", maskedFrame(true, 4, OpText, nil, testMask), 100, []event{{KindMessage, OpText, "", 0, ""}}, nil},
		{"final block", maskedFrame(true, 4, OpText, bfinal("abcabcabc"), testMask), 100,
			[]event{{KindMessage, OpText, "abcabcabc", 0, ""}}, nil},
		{"plain and compressed mixed", concat(text(true, "plain"), ztext(t, "zipped"), text(true, "plain2")), 100,
			[]event{{KindMessage, OpText, "plain", 0, ""}, {KindMessage, OpText, "zipped", 0, ""}, {KindMessage, OpText, "plain2", 0, ""}}, nil},
		{"fragmented", concat(maskedFrame(false, 4, OpText, zl[:third], testMask),
			maskedFrame(false, 0, OpContinuation, zl[third:2*third], testMask),
			maskedFrame(true, 0, OpContinuation, zl[2*third:], testMask)), 1 << 20,
			[]event{{KindMessage, OpText, long, 0, ""}}, nil},
		{"fragmented with empty first", concat(maskedFrame(false, 4, OpText, nil, testMask),
			maskedFrame(true, 0, OpContinuation, zl, testMask)), 1 << 20,
			[]event{{KindMessage, OpText, long, 0, ""}}, nil},
		{"ping between fragments", concat(maskedFrame(false, 4, OpText, zl[:third], testMask), ctrl(OpPing, "p"),
			maskedFrame(true, 0, OpContinuation, zl[third:], testMask), text(true, "after")), 1 << 20,
			[]event{{KindPing, OpPing, "p", 0, ""}, {KindMessage, OpText, long, 0, ""}, {KindMessage, OpText, "after", 0, ""}}, nil},
		{"exactly max inflated", ztext(t, long), len(long), []event{{KindMessage, OpText, long, 0, ""}}, nil},
		{"incompressible at max", maskedFrame(true, 4, OpBinary, deflateRawStored(t, 1000), testMask), 1000,
			[]event{{KindMessage, OpBinary, string(make([]byte, 1000)), 0, ""}}, nil},

		{"rsv1 on continuation", concat(maskedFrame(false, 4, OpText, zl[:third], testMask),
			maskedFrame(true, 4, OpContinuation, zl[third:], testMask)), 1 << 20, nil, errRSV},
		{"rsv1 on continuation of plain", concat(text(false, "a"), maskedFrame(true, 4, OpContinuation, z("b"), testMask)), 100, nil, errRSV},
		{"rsv1 on ping", maskedFrame(true, 4, OpPing, nil, testMask), 100, nil, errRSV},
		{"rsv1 on close", maskedFrame(true, 4, OpClose, nil, testMask), 100, nil, errRSV},
		{"rsv2", maskedFrame(true, 2, OpText, []byte("a"), testMask), 100, nil, errRSV},
		{"rsv3", maskedFrame(true, 1, OpText, []byte("a"), testMask), 100, nil, errRSV},
		{"rsv1+rsv2", maskedFrame(true, 6, OpText, z("a"), testMask), 100, nil, errRSV},
		{"rsv1 on bad opcode", maskedFrame(true, 4, 3, nil, testMask), 100, nil, errRSV},
		{"compressed during fragments", concat(text(false, "a"), ztext(t, "b")), 100, nil, errExpectContinue},
		{"one over max inflated", ztext(t, long), len(long) - 1, nil, errTooBig},
		{"bomb", maskedFrame(true, 4, OpBinary, bomb, testMask), 64 << 10, nil, errTooBig},
		{"fragmented bomb", concat(maskedFrame(false, 4, OpBinary, bomb[:len(bomb)/2], testMask),
			maskedFrame(true, 0, OpContinuation, bomb[len(bomb)/2:], testMask)), 64 << 10, nil, errTooBig},
		{"wire over max", maskedFrame(true, 4, OpBinary, deflateRawStored(t, 2000), testMask), 1000, nil, errTooBig},
		{"corrupt", maskedFrame(true, 4, OpText, []byte{0xff, 0xff, 0xff, 0xff}, testMask), 100, nil, errInflate},
		{"truncated", maskedFrame(true, 4, OpText, zl[:len(zl)/2], testMask), 1 << 20, nil, errInflate},
		{"invalid utf8 inflated", ztext(t, "ok \xff not"), 100, nil, errUTF8},
		{"utf8 split by fragments ok, invalid whole", concat(maskedFrame(false, 4, OpText, z("caf\xc3")[:2], testMask),
			maskedFrame(true, 0, OpContinuation, z("caf\xc3")[2:], testMask)), 100, nil, errUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decoder{Deflate: true}
			evs, err, _ := decodeAllWith(t, &d, bytes.Clone(tt.in), tt.max)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(evs) != len(tt.want) {
				t.Fatalf("events = %d %+v, want %d", len(evs), evs, len(tt.want))
			}
			for i := range evs {
				if evs[i] != tt.want[i] {
					t.Fatalf("event %d = %.80v, want %.80v", i, evs[i], tt.want[i])
				}
			}
			if err != nil && (d.msg != nil || d.InProgress() || !d.Deflate) {
				t.Fatal("state kept after an error, or Deflate lost")
			}
		})
	}
	// Without negotiation RSV1 stays a protocol error.
	if _, err, _ := decodeAll(t, ztext(t, "hello"), 100); err != errRSV {
		t.Fatalf("rsv1 without deflate: %v", err)
	}
}

// deflateRawStored is n zero bytes as stored (uncompressed) deflate
// blocks, longer than n: what a client sends for incompressible data.
func deflateRawStored(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	w, _ := stdflate.NewWriter(&buf, stdflate.NoCompression)
	w.Write(make([]byte, n))
	w.Flush()
	b := buf.Bytes()
	if len(b)-4 <= n {
		t.Fatalf("stored data not longer: %d", len(b))
	}
	return b[:len(b)-4]
}

func TestDecoderDeflateCompressedFlag(t *testing.T) {
	d := Decoder{Deflate: true}
	f, _, ok, err := d.Next(ztext(t, "abc"), 100)
	if err != nil || !ok || !f.Compressed || string(f.Payload) != "abc" {
		t.Fatalf("%+v %v", f, err)
	}
	// The inflated buffer is kept until the next call, then returned.
	if d.msg == nil {
		t.Fatal("buffer released early")
	}
	f, _, ok, err = d.Next(text(true, "plain"), 100)
	if err != nil || !ok || f.Compressed || d.msg != nil {
		t.Fatalf("%+v %v msg=%v", f, err, d.msg)
	}
	d.Next(maskedFrame(false, 4, OpText, []byte{1}, testMask), 100)
	d.Reset()
	if d.InProgress() || d.msg != nil || d.compressed || !d.Deflate {
		t.Fatal("Reset kept the message or dropped Deflate")
	}
}

// TestDecoderDeflateSplit: compressed streams fed a byte at a time decode
// the same, and incomplete frames leave the buffer alone.
func TestDecoderDeflateSplit(t *testing.T) {
	zl := deflateRaw(t, []byte(strings.Repeat("abc", 300)))
	streams := map[string][]byte{
		"single": ztext(t, strings.Repeat("abcd", 100)),
		"fragmented": concat(maskedFrame(false, 4, OpText, zl[:10], testMask), ctrl(OpPing, "x"),
			maskedFrame(true, 0, OpContinuation, zl[10:], testMask)),
	}
	for name, stream := range streams {
		t.Run(name, func(t *testing.T) {
			want, werr, _ := decodeAllWith(t, &Decoder{Deflate: true}, bytes.Clone(stream), 1<<20)
			if werr != nil || len(want) == 0 {
				t.Fatalf("whole stream: %v %v", want, werr)
			}
			d := Decoder{Deflate: true}
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
							t.Fatal("incomplete frame modified the buffer")
						}
						break
					}
					if ok {
						got = append(got, event{f.Kind, f.Op, string(f.Payload), f.CloseCode, f.CloseReason})
					}
					start += n
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %.100v want %.100v", got, want)
			}
		})
	}
}

// TestDecoderDeflateGobwas decodes frames compressed by gobwas/ws/wsflate.
func TestDecoderDeflateGobwas(t *testing.T) {
	for _, size := range []int{1, 100, 1000, 70000} {
		payload := sampleJSON(size)
		frame, err := wsflate.CompressFrame(gws.NewTextFrame(payload))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := gws.WriteFrame(&buf, gws.MaskFrame(frame)); err != nil {
			t.Fatal(err)
		}
		d := Decoder{Deflate: true}
		f, n, ok, cerr := d.Next(buf.Bytes(), 1<<20)
		if cerr != nil || !ok || n != buf.Len() || !f.Compressed || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("size %d: n=%d ok=%v err=%v", size, n, ok, cerr)
		}
	}
}

func TestAppendCompressed(t *testing.T) {
	inputs := [][]byte{nil, []byte("a"), []byte(sampleMessage), sampleJSON(4096), sampleJSON(200000),
		bytes.Repeat([]byte{0}, 100000), randomBytes(70000)}
	for _, level := range []int{1, 3, 9, 0} {
		CompressionLevel = level
		for i, p := range inputs {
			out := AppendCompressed([]byte("pre"), p)
			if string(out[:3]) != "pre" {
				t.Fatal("dst not kept")
			}
			got, err := stdInflate(out[3:])
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("level %d input %d: %v (%d bytes back of %d)", level, i, err, len(got), len(p))
			}
			// The same through the package's own decoder.
			frame := AppendCompressedFrame([]byte("pre"), OpBinary, p)[3:]
			h, err := readServerFrame(frame)
			if err != nil || h.Header.Rsv != 4 || !h.Header.Fin || h.Header.OpCode != gws.OpBinary || h.Header.Masked {
				t.Fatalf("level %d input %d: header %+v %v", level, i, h.Header, err)
			}
			d := Decoder{Deflate: true}
			f, _, ok, cerr := d.Next(maskedFrame(true, 4, OpBinary, h.Payload, testMask), 1<<20)
			if cerr != nil || !ok || !bytes.Equal(f.Payload, p) {
				t.Fatalf("level %d input %d: own decoder %v", level, i, cerr)
			}
			// And gobwas's wsflate, as a client reading the frame.
			if len(p) < 1<<17 {
				df, err := wsflate.DecompressFrame(h)
				if err != nil || !bytes.Equal(df.Payload, p) || df.Header.Rsv != 0 {
					t.Fatalf("level %d input %d: wsflate %v", level, i, err)
				}
			}
		}
	}
	CompressionLevel = 3
	// No context leaks from one call into the next: every output inflates
	// on its own, whatever was compressed before with the pooled writer.
	for i := range 50 {
		p := sampleJSON(100 + i*37)
		if got, err := stdInflate(AppendCompressed(nil, p)); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestAppendDeflateFrame(t *testing.T) {
	for _, p := range [][]byte{[]byte("short"), []byte(sampleMessage), sampleJSON(4096), randomBytes(1000)} {
		out := AppendDeflateFrame([]byte("pre"), OpText, p)[3:]
		f, err := readServerFrame(out)
		if err != nil {
			t.Fatal(err)
		}
		compressed := f.Header.Rsv == 4
		if compressed != (ShouldCompress(len(p)) && len(out) < HeaderLen(len(p))+len(p)) {
			t.Fatalf("%d bytes: compressed=%v, frame %d", len(p), compressed, len(out))
		}
		body := f.Payload
		if compressed {
			if body, err = stdInflate(body); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, p) {
			t.Fatalf("%d bytes: payload differs", len(p))
		}
		if len(p) >= 1000 && bytes.Equal(p, randomBytes(1000)) && compressed {
			t.Fatal("incompressible data sent compressed")
		}
	}
	if ShouldCompress(MinCompressSize-1) || !ShouldCompress(MinCompressSize) {
		t.Fatal("ShouldCompress threshold")
	}
}

// TestCompressThreshold records why MinCompressSize is where it is: no
// sample below 128 bytes gets smaller, and from MinCompressSize up most
// do (the benchmark data for the level is in BenchmarkAppendCompressed).
func TestCompressThreshold(t *testing.T) {
	samples := []string{
		sampleMessage,
		`{"status":"success","event":"auth","data":{"user":{"id":"u-29481","name":"Jane Doe","roles":["reader","editor"],"org":"acme"},"session":"d7f1c0e2-4b1a-4f6e-9b2d-2a7f3e9c1b55","expires_at":"2026-11-25T09:24:12.000Z"}}`,
		string(sampleJSON(600)),
	}
	smaller := 0
	for _, s := range samples {
		for n := 64; n < 128; n += 16 {
			if c := AppendCompressed(nil, []byte(s[:n])); len(c) < n {
				t.Errorf("%d bytes compress to %d: lower MinCompressSize?", n, len(c))
			}
		}
		if len(AppendCompressed(nil, []byte(s[:MinCompressSize]))) < MinCompressSize {
			smaller++
		}
	}
	if smaller*2 < len(samples) {
		t.Errorf("only %d of %d samples smaller at %d bytes", smaller, len(samples), MinCompressSize)
	}
}

func TestDecoderDeflateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	payload := sampleJSON(4096)
	frame := maskedFrame(true, 4, OpText, AppendCompressed(nil, payload), testMask)
	buf := make([]byte, len(frame))
	d := Decoder{Deflate: true}
	allocs := testing.AllocsPerRun(200, func() {
		copy(buf, frame)
		if f, _, ok, err := d.Next(buf, 1<<20); !ok || err != nil || len(f.Payload) != len(payload) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decode compressed: %v allocs", allocs)
	}
	var dst []byte
	allocs = testing.AllocsPerRun(200, func() { dst = AppendCompressedFrame(dst[:0], OpText, payload) })
	if allocs != 0 {
		t.Fatalf("AppendCompressedFrame: %v allocs", allocs)
	}
}

// TestDeflateCoderWebsocket runs the codec behind a real socket against
// github.com/coder/websocket in both of its compression modes: the client
// negotiates from the server's response, compresses what it sends (the
// server inflates) and inflates what the server compressed.
func TestDeflateCoderWebsocket(t *testing.T) {
	for _, mode := range []websocket.CompressionMode{websocket.CompressionNoContextTakeover, websocket.CompressionContextTakeover} {
		t.Run(fmt.Sprint("mode", int(mode)), func(t *testing.T) {
			srv := startEchoServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws://"+srv.addr, &websocket.DialOptions{
				CompressionMode:      mode,
				CompressionThreshold: 64,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
				t.Fatalf("not negotiated: %q", ext)
			}
			msgs := [][]byte{[]byte("hi"), []byte(sampleMessage), sampleJSON(4096), sampleJSON(100000), []byte(sampleMessage), {}}
			for i, m := range msgs {
				if err := c.Write(ctx, websocket.MessageText, m); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil || typ != websocket.MessageText || !bytes.Equal(got, m) {
					t.Fatalf("message %d (%d bytes): %v, %d bytes back", i, len(m), err, len(got))
				}
			}
			// A streamed message: several writes, sent as fragments.
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				t.Fatal(err)
			}
			var whole []byte
			for i := range 5 {
				part := sampleJSON(3000 + i)
				whole = append(whole, part...)
				w.Write(part)
			}
			w.Close()
			if typ, got, err := c.Read(ctx); err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, whole) {
				t.Fatalf("streamed: %v", err)
			}
			c.Close(websocket.StatusNormalClosure, "")
			st := srv.wait(t)
			if st.compressedIn == 0 || st.compressedOut == 0 {
				t.Fatalf("nothing compressed: %+v", st)
			}
			t.Logf("%+v", st)
		})
	}
}

type echoStats struct {
	messages, compressedIn, compressedOut, fragments int
	closeCode                                        int
	err                                              error
}

type echoServer struct {
	addr string
	done chan echoStats
}

func (s *echoServer) wait(t *testing.T) echoStats {
	t.Helper()
	select {
	case st := <-s.done:
		if st.err != nil {
			t.Fatal(st.err)
		}
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish")
	}
	return echoStats{}
}

// startEchoServer accepts one connection and drives the codec the way the
// event loop does: one growing inbound buffer, parsed in place.
func startEchoServer(t *testing.T) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{addr: ln.Addr().String(), done: make(chan echoStats, 1)}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { ln.Close() }) })
	go func() {
		var st echoStats
		defer func() { s.done <- st }()
		conn, err := ln.Accept()
		once.Do(func() { ln.Close() })
		if err != nil {
			st.err = err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var in []byte
		read := func() bool {
			tmp := make([]byte, 32<<10)
			n, err := conn.Read(tmp)
			in = append(in, tmp[:n]...)
			return err == nil
		}
		var req *Request
		for req == nil {
			if !read() {
				st.err = fmt.Errorf("eof in handshake")
				return
			}
			r, n, herr := ParseUpgrade(in, 0)
			if herr != nil {
				st.err = herr
				return
			}
			if r != nil {
				req, in = r, in[n:]
			}
		}
		if !req.Deflate {
			st.err = fmt.Errorf("no acceptable offer in %+v", req)
			return
		}
		conn.Write(AppendAcceptDeflate(nil, req))
		d := Decoder{Deflate: true}
		for {
			for {
				f, n, ok, cerr := d.Next(in, 1<<20)
				if cerr != nil {
					st.err = cerr
					return
				}
				if n == 0 {
					break
				}
				if !ok {
					st.fragments++
				}
				if ok {
					switch f.Kind {
					case KindMessage:
						st.messages++
						if f.Compressed {
							st.compressedIn++
						}
						out := AppendDeflateFrame(nil, f.Op, f.Payload)
						if out[0]&0x40 != 0 {
							st.compressedOut++
						}
						conn.Write(out)
					case KindClose:
						st.closeCode = f.CloseCode
						conn.Write(AppendClose(nil, f.CloseCode, ""))
						return
					case KindPing:
						conn.Write(AppendFrame(nil, OpPong, f.Payload))
					}
				}
				in = in[n:]
			}
			if !read() {
				st.err = fmt.Errorf("connection ended without close")
				return
			}
		}
	}()
	return s
}

func BenchmarkAppendCompressed(b *testing.B) {
	inputs := []struct {
		name string
		p    []byte
	}{
		{"100B", sampleJSON(100)},
		{"message309B", []byte(sampleMessage)},
		{"4KiB", sampleJSON(4096)},
		{"32KiB", sampleJSON(32 << 10)},
	}
	for _, in := range inputs {
		for _, level := range []int{1, 3, 5} {
			b.Run(fmt.Sprintf("%s/level%d", in.name, level), func(b *testing.B) {
				defer func(l int) { CompressionLevel = l }(CompressionLevel)
				CompressionLevel = level
				dst := AppendCompressed(nil, in.p)
				b.ReportAllocs()
				b.SetBytes(int64(len(in.p)))
				for b.Loop() {
					dst = AppendCompressed(dst[:0], in.p)
				}
				b.ReportMetric(float64(len(dst))/float64(len(in.p)), "ratio")
			})
		}
	}
}

func BenchmarkDecodeCompressed(b *testing.B) {
	for _, size := range []int{300, 4096} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			payload := sampleJSON(size)
			frame := maskedFrame(true, 4, OpText, AppendCompressed(nil, payload), testMask)
			buf := make([]byte, len(frame))
			d := Decoder{Deflate: true}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				copy(buf, frame)
				if _, _, ok, err := d.Next(buf, 1<<20); !ok || err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
