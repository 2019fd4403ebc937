package ws

import (
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	gws "github.com/gobwas/ws"
)

// Op is a frame opcode (RFC 6455 5.2).
type Op byte

const (
	OpContinuation Op = 0x0
	OpText         Op = 0x1
	OpBinary       Op = 0x2
	OpClose        Op = 0x8
	OpPing         Op = 0x9
	OpPong         Op = 0xa
)

// Close codes (RFC 6455 7.4.1 and the IANA registry).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupported     = 1003
	CloseNoStatus        = 1005 // never sent; reported when a close frame has no payload
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
)

// MaxControlPayload is the largest payload of a control frame.
const MaxControlPayload = 125

// Kind says what a decoded Frame asks of the server.
type Kind int

const (
	// The zero Kind is no event, so a zero Frame is never mistaken for one.
	KindMessage Kind = iota + 1
	KindPing
	KindPong
	KindClose
)

// Frame is one event decoded by Decoder.Next.
type Frame struct {
	Kind Kind
	// Op is OpText or OpBinary for KindMessage (the opcode of the first
	// fragment), the control opcode otherwise.
	Op Op
	// Payload is unmasked (and inflated). It aliases the caller's buffer,
	// or for a fragmented, compressed or streamed (see Next) message a
	// buffer the decoder borrowed, and is valid until the next call to
	// Next or Reset.
	Payload []byte
	// Compressed reports a KindMessage that arrived compressed
	// (permessage-deflate); Payload is the inflated message.
	Compressed bool
	// CloseCode is the code of a KindClose frame, CloseNoStatus when its
	// payload is empty. CloseReason is its (UTF-8) reason.
	CloseCode   int
	CloseReason string
}

// CloseError is a protocol violation by the client: the server sends a
// close frame with Code and Reason (AppendClose) and closes the connection.
//
// The values Next returns are shared; do not modify them.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return "ws: close " + strconv.Itoa(e.Code) + " " + e.Reason
}

// Package values: a misbehaving client must not be able to make the server
// allocate per violation.
var (
	errUnmasked       = &CloseError{CloseProtocolError, "unmasked frame"}
	errRSV            = &CloseError{CloseProtocolError, "reserved bits set"}
	errOpcode         = &CloseError{CloseProtocolError, "unknown opcode"}
	errFragControl    = &CloseError{CloseProtocolError, "fragmented control frame"}
	errControlLen     = &CloseError{CloseProtocolError, "control frame too long"}
	errLength         = &CloseError{CloseProtocolError, "invalid frame length"}
	errContinuation   = &CloseError{CloseProtocolError, "unexpected continuation frame"}
	errExpectContinue = &CloseError{CloseProtocolError, "expected continuation frame"}
	errClosePayload   = &CloseError{CloseProtocolError, "invalid close payload"}
	errCloseCode      = &CloseError{CloseProtocolError, "invalid close code"}
	errTooBig         = &CloseError{CloseTooBig, "message too big"}
	errUTF8           = &CloseError{CloseInvalidPayload, "invalid UTF-8"}
	errCloseUTF8      = &CloseError{CloseInvalidPayload, "invalid UTF-8 in close reason"}
)

// Decoder is the per-connection decoding state: which message is being
// reassembled and where. It is 16 bytes on 64-bit platforms and holds no
// buffer unless a fragmented or streamed message is in progress or one
// such, or a compressed one, was just returned, because mako keeps one per
// socket and browsers never fragment. permessage-deflate adds no
// per-socket state: messages are inflated on their own (no context
// takeover) with a pooled inflater.
//
// The zero Decoder is ready to use, without compression.
type Decoder struct {
	// msg is the reassembly buffer with the state of the message in
	// progress, borrowed from msgPool for the life of one fragmented or
	// streamed message (and until the next call, while the caller may still
	// read the payload), or the buffer a compressed message was inflated
	// into, until the next call.
	msg *message
	// op is the opcode of the message in progress; OpContinuation when none.
	op Op
	// compressed: the message in progress had RSV1 on its first frame.
	compressed bool

	// Deflate is set by the server once permessage-deflate is negotiated
	// (AppendAcceptDeflate): RSV1 on the first frame of a data message
	// then marks it compressed. Without it, or on a continuation or
	// control frame, RSV1 is a protocol error (1002), as RSV2 and RSV3
	// always are. Reset keeps it.
	Deflate bool
}

// message is a message being reassembled: its bytes so far, where the
// frame being streamed stands, and where the UTF-8 check of its text
// stands. It lives outside Decoder so that an idle connection does not
// pay for it.
type message struct {
	b []byte
	// left is what the frame being streamed has still to bring; 0 between
	// frames. mask is that frame's masking key, pos the key index of its
	// next byte, fin its FIN bit.
	left int
	mask [4]byte
	pos  uint8
	fin  bool
	// utf8 is the check of the text so far (text messages only).
	utf8 utf8State
}

// msgPool recycles reassembly buffers across connections so that a client
// that does fragment does not cost an allocation per message.
var msgPool = sync.Pool{New: func() any { return &message{b: make([]byte, 0, 4096)} }}

func getMsg() *message { return msgPool.Get().(*message) }

// maxPooled keeps the pool from pinning buffers grown by a rare huge message.
const maxPooled = 64 << 10

// Next decodes at most one frame from the start of buf, unmasking its
// payload in place.
//
//   - n > 0, ok: f is an event to act on.
//   - n > 0, !ok: bytes were consumed without an event: a non-final
//     fragment went into the reassembly buffer, or the part of a frame
//     that has arrived did (streaming, below).
//   - n == 0, no error: buf holds no complete frame yet; call again with
//     more bytes. Nothing was modified.
//   - err != nil: a protocol violation; the connection must be closed with
//     err.Code. n is 0.
//
// The caller must drop the first n bytes of buf whenever n > 0: the payload
// has been unmasked in place, so decoding the same bytes again would be
// wrong.
//
// maxMessage bounds a message (a single frame or the sum of its fragments);
// a header announcing more fails with 1009 before the payload is waited
// for. maxMessage <= 0 means no bound. A compressed message is bounded
// twice: on the wire (with a little slack for incompressible data, which
// deflate makes slightly longer), and when inflated, where output beyond
// maxMessage fails with 1009 however small the input (a decompression
// bomb). Compressed data that does not inflate fails with 1007.
//
// Text is checked for UTF-8 as it arrives (RFC 6455 8.1 "fail fast"), so
// that a client cannot make the server hold a message that is already
// known to be invalid: each fragment is checked when it is appended, and
// an uncompressed text frame that is incomplete is streamed: the part
// that has arrived is unmasked, checked and moved into the reassembly
// buffer (n > 0, !ok), the rest follows on later calls, and the first
// invalid byte fails with 1007 without waiting for the rest. A rune may
// be split anywhere, across reads and across fragments. Complete frames,
// binary frames and compressed messages are not streamed: a binary frame
// is returned in place once whole, and a compressed message is inflated
// once whole, its output checked as the inflater produces it (a bad byte
// stops the inflation there). Need says how much Next wants to see.
func (d *Decoder) Next(buf []byte, maxMessage int) (f Frame, n int, ok bool, err *CloseError) {
	if d.msg != nil && d.op == OpContinuation {
		// The previous call returned a reassembled message from msg; the
		// caller is done with it now.
		d.release()
	}
	if d.msg != nil && d.msg.left > 0 {
		return d.stream(buf, 0)
	}
	if len(buf) < 2 {
		return f, 0, false, nil
	}
	b0, b1 := buf[0], buf[1]
	fin := b0&0x80 != 0
	op := Op(b0 & 0x0f)
	// Every check that needs only the first two bytes comes before waiting
	// for the rest, so a bad client is cut off as early as possible.
	if rsv := b0 & 0x70; rsv != 0 {
		// RSV1 is permessage-deflate's "compressed" bit, on the first
		// frame of a data message only (RFC 7692 6.1); a continuation
		// with RSV1 fails here, a new message with RSV1 during a
		// fragmented one fails below with errExpectContinue.
		if rsv != 0x40 || !d.Deflate || op != OpText && op != OpBinary {
			return f, 0, false, d.fail(errRSV)
		}
	}
	compressed := b0&0x40 != 0
	if b1&0x80 == 0 {
		return f, 0, false, d.fail(errUnmasked)
	}
	length := uint64(b1 & 0x7f)
	switch op {
	case OpClose, OpPing, OpPong:
		if !fin {
			return f, 0, false, d.fail(errFragControl)
		}
		if length > MaxControlPayload {
			return f, 0, false, d.fail(errControlLen)
		}
	case OpText, OpBinary:
		if d.op != OpContinuation {
			return f, 0, false, d.fail(errExpectContinue)
		}
	case OpContinuation:
		if d.op == OpContinuation {
			return f, 0, false, d.fail(errContinuation)
		}
	default:
		return f, 0, false, d.fail(errOpcode)
	}

	hl := 2
	switch length {
	case 126:
		if len(buf) < 4 {
			return f, 0, false, nil
		}
		length = uint64(binary.BigEndian.Uint16(buf[2:4]))
		hl = 4
	case 127:
		if len(buf) < 10 {
			return f, 0, false, nil
		}
		length = binary.BigEndian.Uint64(buf[2:10])
		if length>>63 != 0 {
			return f, 0, false, d.fail(errLength)
		}
		hl = 10
	}
	// Lengths encoded in more bytes than needed are accepted: the RFC's
	// "minimal number of bytes" binds the sender and rejecting gains nothing.
	hl += 4 // masking key

	if op&0x8 == 0 {
		have := 0
		if d.msg != nil {
			have = len(d.msg.b)
		}
		limit := uint64(maxInt - hl)
		if maxMessage > 0 {
			m := uint64(maxMessage)
			if compressed || op == OpContinuation && d.compressed {
				// Stored blocks add 5 bytes per 64 KiB.
				m += m>>12 + 64
			}
			limit = min(limit, m)
		}
		if uint64(have) > limit || length > limit-uint64(have) {
			return f, 0, false, d.fail(errTooBig)
		}
	}
	n = hl + int(length)
	if len(buf) < n {
		if len(buf) < hl || !d.streams(op, compressed) {
			return f, 0, false, nil
		}
		if op != OpContinuation {
			d.op = op
			d.msg = getMsg()
		}
		m := d.msg
		m.left, m.mask, m.pos, m.fin = int(length), [4]byte(buf[hl-4:hl]), 0, fin
		return d.stream(buf[hl:], hl)
	}
	payload := buf[hl:n]
	gws.Cipher(payload, [4]byte(buf[hl-4:hl]), 0)

	switch op {
	case OpPing:
		return Frame{Kind: KindPing, Op: op, Payload: payload}, n, true, nil
	case OpPong:
		return Frame{Kind: KindPong, Op: op, Payload: payload}, n, true, nil
	case OpClose:
		code, reason, cerr := parseClose(payload)
		if cerr != nil {
			return Frame{}, 0, false, d.fail(cerr)
		}
		return Frame{Kind: KindClose, Op: op, Payload: payload, CloseCode: code, CloseReason: reason}, n, true, nil
	case OpText, OpBinary:
		if fin {
			if compressed {
				return d.inflated(op, payload, n, maxMessage)
			}
			if op == OpText && !utf8.Valid(payload) {
				return Frame{}, 0, false, d.fail(errUTF8)
			}
			return Frame{Kind: KindMessage, Op: op, Payload: payload}, n, true, nil
		}
		d.op = op
		d.compressed = compressed
		d.msg = getMsg()
	}
	// A fragment of the message in progress.
	m := d.msg
	if d.op == OpText && !d.compressed && !m.utf8.feed(payload) {
		return Frame{}, 0, false, d.fail(errUTF8)
	}
	m.b = append(m.b, payload...)
	if !fin {
		return Frame{}, n, false, nil
	}
	return d.complete(n, maxMessage)
}

// streams reports whether an incomplete frame with this opcode and RSV1 is
// read as it arrives: uncompressed text, the only kind checked before it is
// complete.
func (d *Decoder) streams(op Op, compressed bool) bool {
	switch op {
	case OpText:
		return !compressed
	case OpContinuation:
		return d.op == OpText && !d.compressed
	}
	return false
}

// stream takes the next part of the frame being streamed from the start of
// buf; used is what the call consumed before it (the frame's header).
func (d *Decoder) stream(buf []byte, used int) (Frame, int, bool, *CloseError) {
	m := d.msg
	p := buf[:min(len(buf), m.left)]
	gws.Cipher(p, m.mask, int(m.pos))
	if !m.utf8.feed(p) {
		return Frame{}, 0, false, d.fail(errUTF8)
	}
	if cap(m.b)-len(m.b) < len(p) {
		// Double, up to what the frame still announces: append's growth
		// (1.25x past 256 KiB) would copy a 1 MiB frame arriving in
		// 64 KiB reads three times over. Never sized from the header
		// alone: a client announcing 1 MiB and sending a byte must not
		// cost 1 MiB.
		m.b = slices.Grow(m.b, max(len(p), min(m.left, len(m.b))))
	}
	m.b = append(m.b, p...)
	m.left -= len(p)
	m.pos = uint8((int(m.pos) + len(p)) & 3)
	n := used + len(p)
	if m.left > 0 || !m.fin {
		return Frame{}, n, false, nil
	}
	return d.complete(n, 0)
}

// complete returns the message in progress, whose last frame ended n
// bytes into the caller's buffer.
func (d *Decoder) complete(n, maxMessage int) (Frame, int, bool, *CloseError) {
	op := d.op
	d.op = OpContinuation
	if d.compressed {
		d.compressed = false
		return d.inflated(op, d.msg.b, n, maxMessage)
	}
	// Checked as it came: what remains is a rune cut off at the end.
	if op == OpText && !d.msg.utf8.complete() {
		return Frame{}, 0, false, d.fail(errUTF8)
	}
	return Frame{Kind: KindMessage, Op: op, Payload: d.msg.b}, n, true, nil
}

// Need tells a reader how much of buf Next wants, buf being what follows
// the bytes Next consumed so far. frame is the size of the frame at its
// start (header, mask and payload), 0 while its header is incomplete or a
// streamed frame is in progress. min is how many bytes buf must hold
// before a call can make progress: frame, except for a frame Next streams,
// which it can take from its header on (and any byte of which helps once
// it is in progress). A reader that has more bytes than it showed Next
// does better to show the whole frame when it has it: a complete frame is
// decoded in place, without a copy.
func (d *Decoder) Need(buf []byte) (min, frame int) {
	if d.msg != nil && d.msg.left > 0 {
		return 1, 0
	}
	frame = FrameLen(buf)
	if frame == 0 || !d.streams(Op(buf[0]&0x0f), buf[0]&0x40 != 0) {
		return frame, frame
	}
	hl := 2 + 4 // with the mask: an unmasked frame fails on its first bytes
	switch buf[1] & 0x7f {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	return hl, frame
}

const maxInt = int(^uint(0) >> 1)

// inflated completes a compressed message: src (the frame's payload, or
// the reassembly buffer) is inflated into a pooled buffer that d keeps
// until the next call.
func (d *Decoder) inflated(op Op, src []byte, n, maxMessage int) (Frame, int, bool, *CloseError) {
	out, err := inflate(src, maxMessage, op == OpText)
	d.release() // the reassembly buffer, if src was it
	if err != nil {
		return Frame{}, 0, false, d.fail(err)
	}
	d.msg = out
	return Frame{Kind: KindMessage, Op: op, Payload: out.b, Compressed: true}, n, true, nil
}

// fail drops the message in progress: after a violation the connection is
// closing and its state is of no further use.
func (d *Decoder) fail(e *CloseError) *CloseError {
	d.Reset()
	return e
}

// Reset forgets any message in progress and returns the reassembly buffer;
// a Payload from a previous Next must not be used after it.
func (d *Decoder) Reset() {
	d.op = OpContinuation
	d.compressed = false
	d.release()
}

func (d *Decoder) release() {
	if d.msg == nil {
		return
	}
	putBuf(d.msg)
	d.msg = nil
}

func putBuf(m *message) {
	if cap(m.b) <= maxPooled {
		*m = message{b: m.b[:0]}
		msgPool.Put(m)
	}
}

// InProgress reports whether a fragmented or streamed message is being
// reassembled.
func (d *Decoder) InProgress() bool { return d.op != OpContinuation }

func parseClose(p []byte) (code int, reason string, err *CloseError) {
	switch len(p) {
	case 0:
		return CloseNoStatus, "", nil
	case 1:
		return 0, "", errClosePayload
	}
	code = int(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return 0, "", errCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", errCloseUTF8
	}
	return code, string(p[2:]), nil
}

// ValidCloseCode reports whether code may appear in a close frame: the
// defined codes of RFC 6455 7.4.1 and the IANA registry (1012-1014), and
// the ranges for libraries and applications (3000-4999). 1004-1006 and
// 1015 are reserved for reporting and never sent.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// HeaderLen is the size of an unmasked (server) frame header for a payload
// of length bytes.
func HeaderLen(length int) int {
	switch {
	case length <= 125:
		return 2
	case length <= 0xffff:
		return 4
	}
	return 10
}

// AppendFrameHeader appends the header of a final, unmasked frame of
// length bytes, for a payload written separately (a shared fan-out payload
// in a writev).
func AppendFrameHeader(dst []byte, op Op, length int) []byte {
	return appendHeader(dst, 0x80|byte(op), length)
}

func appendHeader(dst []byte, b0 byte, length int) []byte {
	switch {
	case length <= 125:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	}
	dst = append(dst, b0, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(length))
}

// AppendFrame appends a final, unmasked frame: servers never mask.
func AppendFrame(dst []byte, op Op, payload []byte) []byte {
	dst = AppendFrameHeader(dst, op, len(payload))
	return append(dst, payload...)
}

// AppendClose appends a close frame. The reason is cut to the 123 bytes a
// control frame leaves after the code, at a rune boundary so the peer does
// not fail on invalid UTF-8. CloseNoStatus (or 0) gives an empty payload:
// 1005 must never be sent on the wire.
func AppendClose(dst []byte, code int, reason string) []byte {
	if code == CloseNoStatus || code == 0 {
		return append(dst, 0x80|byte(OpClose), 0)
	}
	if len(reason) > MaxControlPayload-2 {
		i := MaxControlPayload - 2
		for i > 0 && !utf8.RuneStart(reason[i]) {
			i--
		}
		reason = reason[:i]
	}
	dst = append(dst, 0x80|byte(OpClose), byte(2+len(reason)), byte(code>>8), byte(code))
	return append(dst, reason...)
}

// FrameLen is the total size (header, mask and payload) of the client frame
// at the start of buf, or 0 while its header is incomplete. A reader waiting
// for a large frame uses it to skip parsing until enough bytes are buffered.
func FrameLen(buf []byte) int {
	if len(buf) < 2 {
		return 0
	}
	hl, length := 2, uint64(buf[1]&0x7f)
	switch length {
	case 126:
		if len(buf) < 4 {
			return 0
		}
		hl, length = 4, uint64(binary.BigEndian.Uint16(buf[2:4]))
	case 127:
		if len(buf) < 10 {
			return 0
		}
		hl, length = 10, binary.BigEndian.Uint64(buf[2:10])
	}
	if buf[1]&0x80 != 0 {
		hl += 4
	}
	if length > 1<<40 {
		return 0 // absurd: let Next reject it
	}
	return hl + int(length)
}
