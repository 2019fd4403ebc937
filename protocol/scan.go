package protocol

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// A scanner for JSON as Python's json.loads reads it (docs/json.md): RFC
// 8259 plus the literals NaN, Infinity and -Infinity, and minus what Python
// refuses (integers past its 4,300-digit conversion limit, nesting past its
// recursion limit). It only validates and reports spans; it never
// allocates. Every decoder in this package (client events, published
// messages, options, service replies) goes through it, so they all accept
// exactly the same documents.

// maxScanDepth bounds nesting (and so recursion). Python's decoder recurses
// once per level and fails past sys.getrecursionlimit() (1,000) minus the
// frames already on the stack; SocketShark reaches json.loads a few dozen
// frames deep, so every depth up to 900 decodes there and mako accepts
// exactly those.
const maxScanDepth = 900

// maxIntDigits is Python's default int_max_str_digits: json.loads raises
// ValueError on an integer literal (no fraction, no exponent) with more
// digits, and SocketShark drops the document.
const maxIntDigits = 4300

// member is one object member: the key's content (between the quotes) and
// the value, as offsets into the scanned buffer.
type member struct {
	keyStart, keyEnd int
	valStart, valEnd int
	keyEscaped       bool
}

// strSpecial marks the bytes that end a run of plain string content: the
// quote, the backslash and the control characters JSON forbids raw.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString scans the string literal whose opening quote is b[i]. It
// returns the index just past the closing quote and whether the literal
// holds a backslash escape. UTF-8 is not checked here: callers validate the
// whole buffer first.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	i++
	for i < len(b) {
		// Skip eight plain bytes at a time: none a quote, a backslash or
		// below 0x20 (SWAR zero-byte tests; a false hit past a real one
		// only ends the fast loop early).
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q, bs := x^(lsb*'"'), x^(lsb*'\\')
			if ((x-lsb*0x20)&^x|(q-lsb)&^q|(bs-lsb)&^bs)&msb != 0 {
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if !strSpecial[c] {
			i++
			continue
		}
		switch c {
		case '"':
			return i + 1, escaped, true
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, escaped, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, escaped, false
					}
				}
				i += 6
			default:
				return 0, escaped, false
			}
		default: // a raw control character
			return 0, escaped, false
		}
	}
	return 0, escaped, false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? from b[i],
// and -Infinity, which Python's scanner tries when a '-' is followed by 'I'.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
		if i < len(b) && b[i] == 'I' {
			return scanLiteral(b, i, "Infinity")
		}
	}
	intStart := i
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case isDigit(b[i]):
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return 0, false
	}
	if i-intStart > maxIntDigits && (i >= len(b) || (b[i] != '.' && b[i] != 'e' && b[i] != 'E')) {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, false
		}
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, true
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanValue scans the value starting at b[i] (no leading whitespace) at
// nesting depth depth and returns the index just past it.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{':
		return scanObject(b, i, depth+1)
	case c == '[':
		return scanArray(b, i, depth+1)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == 'N':
		return scanLiteral(b, i, "NaN")
	case c == 'I':
		return scanLiteral(b, i, "Infinity")
	case c == '-' || isDigit(c):
		return scanNumber(b, i)
	}
	return 0, false
}

func scanObject(b []byte, i, depth int) (int, bool) {
	if depth > maxScanDepth {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		var ok bool
		if i, _, ok = scanString(b, i); !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = scanValue(b, skipWS(b, i+1), depth); !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

func scanArray(b []byte, i, depth int) (int, bool) {
	if depth > maxScanDepth {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = scanValue(b, i, depth); !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanMembers scans the object whose '{' is b[i], appending its members to
// dst in document order, and returns the index just past the '}'. ok is
// false for invalid JSON. A key holding a backslash escape is marked
// keyEscaped: its content must go through unquote to name the key.
func scanMembers(b []byte, i int, dst []member) (_ []member, end int, ok bool) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return dst, i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return dst, 0, false
		}
		var m member
		m.keyStart = i + 1
		if i, m.keyEscaped, ok = scanString(b, i); !ok {
			return dst, 0, false
		}
		m.keyEnd = i - 1
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return dst, 0, false
		}
		m.valStart = skipWS(b, i+1)
		if m.valEnd, ok = scanValue(b, m.valStart, 1); !ok {
			return dst, 0, false
		}
		dst = append(dst, m)
		i = skipWS(b, m.valEnd)
		if i >= len(b) {
			return dst, 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return dst, i + 1, true
		default:
			return dst, 0, false
		}
	}
}

// anyEscapedKey reports whether a member's key holds an escape.
func anyEscapedKey(ms []member) bool {
	for j := range ms {
		if ms[j].keyEscaped {
			return true
		}
	}
	return false
}

// docKind classifies a whole document for decodeJSONObject.
type docKind uint8

const (
	docInvalid   docKind = iota // not JSON as Python reads it
	docNotObject                // JSON, but its top level is not an object
	docObject
)

// decodeJSONObject decodes b as a document whose top level should be an object,
// as json.loads would: whitespace around it, keys unquoted (lone surrogate
// escapes kept, see unquote), the last of duplicated keys winning. Each
// value is its own copy of its raw JSON text: it never aliases b, and a
// small value kept for a session's lifetime (an extra field, an auth field)
// does not pin the rest of a large document. The map is
// nil unless the kind is docObject. b must be valid UTF-8 (the callers check:
// Python only ever decodes text).
func decodeJSONObject(b []byte) (map[string]json.RawMessage, docKind) {
	start := skipWS(b, 0)
	if start >= len(b) {
		return nil, docInvalid
	}
	if b[start] != '{' {
		end, ok := scanValue(b, start, 0)
		if !ok || skipWS(b, end) != len(b) {
			return nil, docInvalid
		}
		return nil, docNotObject
	}
	var buf [16]member
	ms, end, ok := scanMembers(b, start, buf[:0])
	if !ok || skipWS(b, end) != len(b) {
		return nil, docInvalid
	}
	m := make(map[string]json.RawMessage, len(ms))
	for j := range ms {
		var key string
		if ms[j].keyEscaped {
			key, _ = unquote(b[ms[j].keyStart-1 : ms[j].keyEnd+1])
		} else {
			key = string(b[ms[j].keyStart:ms[j].keyEnd])
		}
		m[key] = bytes.Clone(b[ms[j].valStart:ms[j].valEnd])
	}
	return m, docObject
}

// DecodeObject decodes a document that should be a JSON object, as
// Python's json.loads reads it (docs/json.md); it is how service replies
// are read. ok is false for invalid UTF-8, invalid JSON and a top level
// other than an object. Values are raw JSON that never alias b; of
// duplicated keys the last wins.
func DecodeObject(b []byte) (m map[string]json.RawMessage, ok bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	m, kind := decodeJSONObject(b)
	return m, kind == docObject
}
