package ws

import (
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate (RFC 7692), in the one form mako negotiates: no
// context takeover in either direction. Every message is compressed and
// decompressed on its own, so a socket holds no compressor, no window and
// no inflater between messages (they come from pools for the length of
// one call), and a message published to many sockets is compressed once.

// CompressionLevel is the klauspost/compress flate level of
// AppendCompressed. It is 3 rather than BestSpeed because mako's messages
// are mostly short JSON, where level 1's encoder often finds no match at
// all (the first 288 bytes of the sample message come out at 294 bytes at
// level 1, 199 at level 3; the whole 309-byte message at 220 and 204).
// On longer JSON level 3 writes 5-7% fewer bytes than level 1 for 5-20%
// more CPU (BenchmarkAppendCompressed), a good trade when one compression
// is written to many sockets; level 5 saves another 6-10% for 25-30%
// more. Set it before the first call; it is not synchronised.
var CompressionLevel = 3

// MinCompressSize is the payload size from which ShouldCompress advises
// compression. klauspost/compress does no LZ77 matching below 128 bytes
// (it Huffman-codes the block, and short JSON comes out 6 bytes longer),
// and short messages without a shared context rarely have repeats to
// find: at 128 bytes none of the sample messages got smaller, at 160 most
// did (TestCompressThreshold).
var MinCompressSize = 160

// ShouldCompress reports whether a payload of n bytes is worth sending
// compressed on a connection that negotiated permessage-deflate. Sending
// it plain is always legal: RSV1 is set per message.
func ShouldCompress(n int) bool { return n >= MinCompressSize }

// deflateTail is what RFC 7692 7.2.2 appends to a compressed message
// before inflating it (an empty non-final stored block, which the sender
// stripped), followed by an empty final stored block so that the inflater
// ends with io.EOF rather than asking for more input.
const deflateTail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

var errInflate = &CloseError{CloseInvalidPayload, "invalid compressed data"}

// ---- negotiation ----

// negotiateDeflate reads one Sec-WebSocket-Extensions value,
//
//	1#( token *( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] ) )
//
// offered reports a permessage-deflate offer; ok that one of them (the
// first such) can be accepted, and window that it named
// server_max_window_bits. A malformed value ends the parse: what follows
// cannot be split reliably, and declining is always safe.
func negotiateDeflate(v []byte) (offered, ok, window bool) {
	p := extParser{s: v}
	for {
		p.skipSeparators()
		if p.i >= len(p.s) {
			return offered, false, false
		}
		name := p.token()
		if name == nil {
			return offered, false, false
		}
		pmd := equalFold(name, "permessage-deflate")
		var o deflateOffer
		valid := true
		for {
			p.ows()
			if p.i >= len(p.s) || p.s[p.i] == ',' {
				break
			}
			if p.s[p.i] != ';' {
				return offered, false, false
			}
			p.i++
			p.ows()
			pname := p.token()
			if pname == nil {
				return offered, false, false
			}
			p.ows()
			var val []byte
			hasVal := false
			if p.i < len(p.s) && p.s[p.i] == '=' {
				p.i++
				p.ows()
				var good bool
				if val, good = p.value(); !good {
					return offered, false, false
				}
				hasVal = true
			}
			if pmd && valid {
				valid = o.param(pname, val, hasVal)
			}
		}
		if pmd {
			offered = true
			if valid {
				return true, true, o.window
			}
		}
	}
}

// deflateOffer checks the parameters of one permessage-deflate offer
// (RFC 7692 7.1): each at most once, with a valid value, and honourable.
type deflateOffer struct {
	seen   uint8
	window bool
}

func (o *deflateOffer) param(name, val []byte, hasVal bool) bool {
	var bit uint8
	switch {
	case equalFold(name, "server_no_context_takeover"):
		// Granted: mako never takes over context.
		bit = 1
		if hasVal {
			return false
		}
	case equalFold(name, "client_no_context_takeover"):
		// A hint; the response asks for it anyway.
		bit = 2
		if hasVal {
			return false
		}
	case equalFold(name, "server_max_window_bits"):
		// klauspost/compress cannot bound its window below 32 KiB, so
		// only 15 can be honoured (and must be repeated in the response).
		bit = 4
		if !hasVal || windowBits(val) != 15 {
			return false
		}
		o.window = true
	case equalFold(name, "client_max_window_bits"):
		// The client may limit its window; the inflater reads any window
		// up to 32 KiB, so no value is sent back.
		bit = 8
		if hasVal && windowBits(val) < 0 {
			return false
		}
	default:
		return false
	}
	if o.seen&bit != 0 {
		return false
	}
	o.seen |= bit
	return true
}

// windowBits parses 8..15 without leading zeros; -1 otherwise.
func windowBits(v []byte) int {
	switch {
	case len(v) == 1 && (v[0] == '8' || v[0] == '9'):
		return int(v[0] - '0')
	case len(v) == 2 && v[0] == '1' && '0' <= v[1] && v[1] <= '5':
		return 10 + int(v[1]-'0')
	}
	return -1
}

type extParser struct {
	s   []byte
	i   int
	buf [16]byte // an unescaped quoted-string value
}

func (p *extParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// skipSeparators skips OWS and empty list elements (RFC 9110 5.6.1).
func (p *extParser) skipSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *extParser) token() []byte {
	start := p.i
	for p.i < len(p.s) && tokenTable[p.s[p.i]] {
		p.i++
	}
	if p.i == start {
		return nil
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted-string, unescaped. A quoted value too
// long for buf is returned empty, which no parameter accepts (RFC 6455
// 9.1 requires it to be a token once unescaped; mako's are two digits).
func (p *extParser) value() ([]byte, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		t := p.token()
		return t, t != nil
	}
	p.i++
	n := 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			if n > len(p.buf) {
				return p.buf[:0], true
			}
			return p.buf[:n], true
		case '\\':
			if p.i >= len(p.s) {
				return nil, false
			}
			c = p.s[p.i]
			p.i++
		}
		if n < len(p.buf) {
			p.buf[n] = c
		}
		n++
	}
	return nil, false // unterminated
}

// ---- decompression ----

// inflater is a pooled flate reader with its input, so that inflating a
// message allocates nothing once the pools are warm.
type inflater struct {
	fr  io.ReadCloser // implements flate.Resetter
	src deflateSource
}

var inflaterPool = sync.Pool{New: func() any {
	in := new(inflater)
	in.fr = flate.NewReader(&in.src)
	return in
}}

// deflateSource reads a compressed payload followed by deflateTail. It is
// an io.ByteReader so that the flate reader does not wrap it in a bufio.
type deflateSource struct {
	p    []byte
	tail int
}

func (s *deflateSource) Read(b []byte) (int, error) {
	if len(s.p) > 0 {
		n := copy(b, s.p)
		s.p = s.p[n:]
		return n, nil
	}
	if s.tail == len(deflateTail) {
		return 0, io.EOF
	}
	n := copy(b, deflateTail[s.tail:])
	s.tail += n
	return n, nil
}

func (s *deflateSource) ReadByte() (byte, error) {
	if len(s.p) > 0 {
		c := s.p[0]
		s.p = s.p[1:]
		return c, nil
	}
	if s.tail == len(deflateTail) {
		return 0, io.EOF
	}
	c := deflateTail[s.tail]
	s.tail++
	return c, nil
}

// inflate decompresses one message into a buffer from msgPool, producing
// at most maxOut bytes (<= 0: no bound): a bomb stops at maxOut+1 bytes
// of output with 1009, whatever its compressed size. For text, the output
// is checked for UTF-8 as the inflater produces it, and a bad byte stops
// the inflation with 1007. The inflater runs only on a whole message, so
// a compressed message's 1007 comes once all of it has arrived (at most
// max_message_size on the wire): flate pulls its input through an
// io.Reader and fails for good when that runs dry, so inflating as bytes
// arrive would need a reader blocked on the connection, a goroutine per
// connection, which mako never has.
func inflate(src []byte, maxOut int, text bool) (*message, *CloseError) {
	out := getMsg()
	b := out.b[:0]
	if len(src) == 0 {
		// Not valid deflate once the tail is added, but an empty
		// compressed message is unambiguous; accept it.
		return out, nil
	}
	limit := maxOut
	if limit <= 0 || limit == maxInt {
		limit = maxInt - 1
	}
	in := inflaterPool.Get().(*inflater)
	in.src = deflateSource{p: src}
	_ = in.fr.(flate.Resetter).Reset(&in.src, nil)
	var err *CloseError
	var check utf8State
	for {
		if len(b) == cap(b) {
			// Double, but never past the one byte that proves the bound
			// is exceeded.
			b = slices.Grow(b, min(max(cap(b), 512), limit+1-len(b)))
		}
		k, rerr := in.fr.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+k]
		if len(b) > limit {
			err = errTooBig
			break
		}
		if text && !check.feed(b[len(b)-k:]) {
			err = errUTF8
			break
		}
		if rerr == io.EOF {
			if text && !check.complete() {
				err = errUTF8
			}
			break
		}
		if rerr != nil {
			err = errInflate
			break
		}
	}
	in.src = deflateSource{}
	inflaterPool.Put(in)
	out.b = b
	if err != nil {
		putBuf(out)
		return nil, err
	}
	return out, nil
}

// ---- compression ----

// deflater is a pooled flate writer appending to a caller's slice.
type deflater struct {
	fw    *flate.Writer
	level int
	out   sliceWriter
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var deflaterPool sync.Pool

func getDeflater() *deflater {
	level := CompressionLevel
	if d, _ := deflaterPool.Get().(*deflater); d != nil && d.level == level {
		return d
	}
	d := &deflater{level: level}
	fw, err := flate.NewWriter(&d.out, level)
	if err != nil { // an invalid CompressionLevel
		fw, _ = flate.NewWriter(&d.out, flate.BestSpeed)
	}
	d.fw = fw
	return d
}

// AppendCompressed appends payload compressed as one permessage-deflate
// message: raw DEFLATE ending in a sync flush, whose final 0x00 0x00 0xff
// 0xff is left off (RFC 7692 7.2.1). No state carries over between calls,
// as server_no_context_takeover promises, so the result can be sent to
// every socket that negotiated the extension.
func AppendCompressed(dst, payload []byte) []byte {
	d := getDeflater()
	d.out.b = dst
	d.fw.Reset(&d.out)
	_, _ = d.fw.Write(payload) // sliceWriter cannot fail
	_ = d.fw.Flush()
	dst = d.out.b
	d.out.b = nil
	deflaterPool.Put(d)
	// Flush ends with an empty stored block, byte-aligned: the tail.
	return dst[:len(dst)-4]
}

// AppendFrameHeaderRSV1 is AppendFrameHeader for a compressed message:
// RSV1 set, length the size of the compressed payload.
func AppendFrameHeaderRSV1(dst []byte, op Op, length int) []byte {
	return appendHeader(dst, 0xc0|byte(op), length)
}

// AppendCompressedFrame appends a final, unmasked, compressed frame of
// payload. The frame is built in place: the compressed size, and so the
// header size, is known only afterwards, and moving the payload back
// over unused header room costs far less than compressing it.
func AppendCompressedFrame(dst []byte, op Op, payload []byte) []byte {
	const room = 10
	start := len(dst)
	dst = append(dst, make([]byte, room)...)
	dst = AppendCompressed(dst, payload)
	n := len(dst) - start - room
	hl := HeaderLen(n)
	AppendFrameHeaderRSV1(dst[start:start], op, n)
	copy(dst[start+hl:], dst[start+room:])
	return dst[:start+hl+n]
}

// AppendDeflateFrame appends payload as one final frame for a connection
// that negotiated permessage-deflate: compressed when ShouldCompress
// advises it and the compressed frame is the smaller, plain otherwise.
// Like AppendCompressedFrame, its result can be shared by every such
// connection.
func AppendDeflateFrame(dst []byte, op Op, payload []byte) []byte {
	if !ShouldCompress(len(payload)) {
		return AppendFrame(dst, op, payload)
	}
	start := len(dst)
	dst = AppendCompressedFrame(dst, op, payload)
	if len(dst)-start >= HeaderLen(len(payload))+len(payload) {
		dst = AppendFrame(dst[:start], op, payload)
	}
	return dst
}
