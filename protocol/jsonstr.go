package protocol

import (
	"unicode/utf16"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Strings decoded here may hold lone surrogates, which Python's json.loads
// keeps in its str and json.dumps writes back as the same \udXXX escape. Go
// strings are bytes, so a lone surrogate is held as its generalized UTF-8
// encoding (WTF-8: ED A0..BF 80..BF, three bytes that are not valid UTF-8),
// and AppendJSONString turns exactly those three bytes back into the escape.

// AppendJSONString appends s as a JSON string literal. Valid UTF-8 is kept
// as-is (smaller than Python's \u escapes and equal once decoded); a lone
// surrogate held as WTF-8 (see unquote) is written as its \udXXX escape,
// as json.dumps writes it; any other invalid byte becomes \ufffd, so the
// output is always valid JSON.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			if sr, ok := wtf8Surrogate(s[i:]); ok {
				dst = append(dst, '\\', 'u', hexDigits[sr>>12], hexDigits[sr>>8&0xf], hexDigits[sr>>4&0xf], hexDigits[sr&0xf])
				i += 3
			} else {
				dst = append(dst, `\ufffd`...)
				i++
			}
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// wtf8Surrogate decodes a surrogate code point held as WTF-8 at the start
// of s.
func wtf8Surrogate(s string) (rune, bool) {
	if len(s) < 3 || s[0] != 0xed || s[1] < 0xa0 || s[1] > 0xbf || s[2] < 0x80 || s[2] > 0xbf {
		return 0, false
	}
	return 0xd000 | rune(s[1]&0x3f)<<6 | rune(s[2]&0x3f), true
}

// appendWTF8Surrogate appends a surrogate code point as WTF-8.
func appendWTF8Surrogate(dst []byte, r rune) []byte {
	return append(dst, 0xed, 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
}

// RuneCount counts the code points of a decoded string as Python's len()
// does: a lone surrogate (three WTF-8 bytes) is one.
func RuneCount(s string) int {
	n := 0
	for i := 0; i < len(s); n++ {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		if _, ok := wtf8Surrogate(s[i:]); ok {
			i += 3
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return n
}

// UnquoteString decodes a JSON string literal as json.loads does (see
// unquote); ok is false when raw is not a valid string literal.
func UnquoteString(raw []byte) (s string, ok bool) {
	return unquote(raw)
}

// isPlainString reports whether raw is a JSON string literal that needs no
// unescaping: quoted, no backslash, no control bytes, valid UTF-8. Such a
// literal can be copied to output verbatim and its content used directly.
func isPlainString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	body := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || utf8.Valid(body)
}

// unquote decodes a JSON string literal as json.loads does: an escaped
// surrogate pair becomes its code point, and a lone surrogate escape is
// kept, held as WTF-8 so that AppendJSONString writes the same escape back
// and RuneCount counts it as one code point, as Python's len() does.
// Invalid UTF-8 bytes (which callers reject before decoding) become U+FFFD.
func unquote(raw []byte) (string, bool) {
	if isPlainString(raw) {
		return string(raw[1 : len(raw)-1]), true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		switch {
		case c == '\\':
			if i+1 >= len(body) {
				return "", false
			}
			i++
			switch body[i] {
			case '"', '\\', '/':
				out = append(out, body[i])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(body[i+1:])
				if !ok {
					return "", false
				}
				i += 4
				if utf16.IsSurrogate(r) {
					if r < 0xdc00 && i+6 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
						if r2, ok := hex4(body[i+3:]); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
							r = utf16.DecodeRune(r, r2)
							i += 6
						}
					}
					if utf16.IsSurrogate(r) {
						out = appendWTF8Surrogate(out, r)
						i++
						continue
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
			i++
		case c == '"' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(body[i:])
			out = utf8.AppendRune(out, r)
			i += size
		}
	}
	return string(out), true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
