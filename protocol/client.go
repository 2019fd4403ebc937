package protocol

import (
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// MaxEventLength is SocketShark's cap on the event name, counted in code
// points; it stops the server from echoing large garbage back in replies.
const MaxEventLength = 40

// ClientEvent is one decoded client frame.
type ClientEvent struct {
	Event string
	// Fields holds every top-level key of the frame, "event" included (of
	// duplicated keys the last wins). The values are the raw JSON text and
	// never alias the caller's buffer, so the frame buffer may be reused once
	// DecodeClientEvent returns.
	Fields map[string]json.RawMessage
}

// DecodeClientEvent decodes a client frame as SocketShark's json.loads
// reads it (docs/json.md). ok is false for every case SocketShark answers
// with ErrInvalidEvent: not JSON (or not UTF-8), not an object, no "event",
// "event" not a string, or longer than MaxEventLength code points.
func DecodeClientEvent(b []byte) (ev ClientEvent, ok bool) {
	// Python would never see invalid UTF-8 (its WebSocket layer rejects it),
	// so treat it as "not JSON".
	if !utf8.Valid(b) {
		return ClientEvent{}, false
	}
	m, kind := decodeJSONObject(b)
	if kind != docObject {
		return ClientEvent{}, false
	}
	raw, found := m["event"]
	if !found {
		return ClientEvent{}, false
	}
	name, isStr := unquote(raw)
	if !isStr || RuneCount(name) > MaxEventLength {
		return ClientEvent{}, false
	}
	return ClientEvent{Event: name, Fields: m}, true
}

// String returns the string value of key. present is true when the key
// exists (a JSON null counts as present); isString is true only when the
// value is a JSON string, so callers can tell "absent" from "wrong type" as
// the spec requires (e.g. a non-string subscription is a format error).
func (e *ClientEvent) String(key string) (s string, present bool, isString bool) {
	raw, ok := e.Fields[key]
	if !ok {
		return "", false, false
	}
	s, isString = unquote(raw)
	return s, true, isString
}

// Raw returns the raw JSON value of key.
func (e *ClientEvent) Raw(key string) (json.RawMessage, bool) {
	raw, ok := e.Fields[key]
	return raw, ok
}

// DecodeClientEventBinary decodes a binary frame. SocketShark passes a
// binary frame's bytes to json.loads, which first picks the encoding from
// the leading bytes (a UTF-8, UTF-16 or UTF-32 byte order mark, or the
// pattern of zero bytes of UTF-16/32 text) and decodes with surrogates
// allowed; pyBytesToText does the same, then the text is read as a text
// frame is. ok is false where SocketShark answers ErrInvalidEvent, and also
// where its decoding raises (SocketShark's reader then dies; mako answers
// instead).
func DecodeClientEventBinary(b []byte) (ev ClientEvent, ok bool) {
	text, ok := pyBytesToText(b)
	if !ok {
		return ClientEvent{}, false
	}
	return DecodeClientEvent(text)
}

// pyBytesToText is json.loads' bytes decoding (detect_encoding, then
// decode with "surrogatepass") producing UTF-8. A surrogate code point in
// the input, which only a string may hold, becomes its \uXXXX escape: the
// decoded string then holds it as unquote keeps escaped surrogates. ok is
// false where Python's decoding raises.
func pyBytesToText(b []byte) ([]byte, bool) {
	switch {
	case hasPrefix(b, 0x00, 0x00, 0xfe, 0xff):
		return fromUTF32(b[4:], true)
	case hasPrefix(b, 0xff, 0xfe, 0x00, 0x00):
		return fromUTF32(b[4:], false)
	case hasPrefix(b, 0xfe, 0xff):
		return fromUTF16(b[2:], true)
	case hasPrefix(b, 0xff, 0xfe):
		return fromUTF16(b[2:], false)
	case hasPrefix(b, 0xef, 0xbb, 0xbf):
		return fromWTF8(b[3:])
	case len(b) >= 4 && b[0] == 0:
		if b[1] != 0 {
			return fromUTF16(b, true)
		}
		return fromUTF32(b, true)
	case len(b) >= 4 && b[1] == 0:
		if b[2] != 0 || b[3] != 0 {
			return fromUTF16(b, false)
		}
		return fromUTF32(b, false)
	case len(b) == 2 && b[0] == 0:
		return fromUTF16(b, true)
	case len(b) == 2 && b[1] == 0:
		return fromUTF16(b, false)
	}
	return fromWTF8(b)
}

func hasPrefix(b []byte, p ...byte) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == string(p)
}

// appendCodePoint appends r as UTF-8, or as a \uXXXX escape when it is a
// surrogate.
func appendCodePoint(dst []byte, r rune) []byte {
	if r >= 0xd800 && r <= 0xdfff {
		return append(dst, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	return utf8.AppendRune(dst, r)
}

// fromWTF8 accepts UTF-8 plus encoded surrogates (Python's "utf-8" codec
// with "surrogatepass").
func fromWTF8(b []byte) ([]byte, bool) {
	if utf8.Valid(b) {
		return b, true
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		if sr, ok := wtf8Surrogate(string(b[i:min(i+3, len(b))])); ok {
			out = appendCodePoint(out, sr)
			i += 3
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, false
		}
		out = append(out, b[i:i+size]...)
		i += size
	}
	return out, true
}

// fromUTF16 decodes UTF-16 with "surrogatepass": pairs combine, lone
// surrogates are kept; an odd trailing byte raises.
func fromUTF16(b []byte, bigEndian bool) ([]byte, bool) {
	if len(b)%2 != 0 {
		return nil, false
	}
	unit := func(i int) rune {
		if bigEndian {
			return rune(b[i])<<8 | rune(b[i+1])
		}
		return rune(b[i+1])<<8 | rune(b[i])
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i += 2 {
		r := unit(i)
		if r >= 0xd800 && r < 0xdc00 && i+3 < len(b) {
			if r2 := unit(i + 2); r2 >= 0xdc00 && r2 <= 0xdfff {
				r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
				i += 2
			}
		}
		out = appendCodePoint(out, r)
	}
	return out, true
}

// fromUTF32 decodes UTF-32 with "surrogatepass"; a partial unit or a value
// past U+10FFFF raises.
func fromUTF32(b []byte, bigEndian bool) ([]byte, bool) {
	if len(b)%4 != 0 {
		return nil, false
	}
	out := make([]byte, 0, len(b)/2)
	for i := 0; i < len(b); i += 4 {
		var r uint32
		if bigEndian {
			r = uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		} else {
			r = uint32(b[i+3])<<24 | uint32(b[i+2])<<16 | uint32(b[i+1])<<8 | uint32(b[i])
		}
		if r > 0x10ffff {
			return nil, false
		}
		out = appendCodePoint(out, rune(r))
	}
	return out, true
}
