package protocol

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// jsonToFloat converts a raw options value the way SocketShark's
// float(value) does on the json.loads result: numbers, booleans (True is 1)
// and strings Python's float() accepts. ok is false where Python raises.
func jsonToFloat(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	switch c := raw[0]; {
	case c == 't':
		return 1, string(raw) == "true"
	case c == 'f':
		return 0, string(raw) == "false"
	case c == '"':
		s, ok := unquote(raw)
		if !ok {
			return 0, false
		}
		return parsePyFloat(s)
	case c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I':
		return numberToFloat(string(raw))
	}
	return 0, false
}

// numberToFloat mirrors json.loads followed by float(): an integer literal
// becomes a Python int, whose float() raises OverflowError when too large,
// while a float literal that overflows is already inf. NaN, Infinity and
// -Infinity (Python's extensions, which the scanner accepts) are floats.
func numberToFloat(lit string) (float64, bool) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		if !errors.Is(err, strconv.ErrRange) || isIntLiteral(lit) {
			return 0, false
		}
	}
	if f == 0 && isIntLiteral(lit) {
		return 0, true // -0 is the int 0, whose float is +0.0
	}
	return f, true
}

// isIntLiteral reports whether a JSON number literal is one json.loads
// makes an int: no fraction, no exponent, not NaN or ±Infinity.
func isIntLiteral(lit string) bool {
	return !strings.ContainsAny(lit, ".eEIN")
}

// parsePyFloat accepts what Python's float(str) accepts: surrounding
// whitespace, a sign, inf/infinity/nan in any case, decimal digits (any
// Unicode decimal digit, as Python maps them to ASCII first) with single
// underscores between digits, an optional fraction and exponent. Go's
// ParseFloat alone is wrong both ways: it takes hex floats and rejects
// "1_0", " 2.5 " and "١٢".
func parsePyFloat(s string) (float64, bool) {
	s, ok := pyDecimalToASCII(s)
	if !ok {
		return 0, false
	}
	s = strings.TrimFunc(s, isPySpace)
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if s[0] == '-' {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	if !validPyDecimal(body) {
		return 0, false
	}
	if strings.IndexByte(s, '_') >= 0 {
		s = strings.ReplaceAll(s, "_", "")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true // out of range is ±inf or 0 in Python too
}

// validPyDecimal checks digitpart ["." [digitpart]] [exp] | "." digitpart [exp]
// where digitpart = digit (["_"] digit)*.
func validPyDecimal(s string) bool {
	i, intDigits := scanDigitPart(s, 0)
	if i < 0 {
		return false
	}
	fracDigits := 0
	if i < len(s) && s[i] == '.' {
		i, fracDigits = scanDigitPart(s, i+1)
		if i < 0 {
			return false
		}
	}
	if intDigits == 0 && fracDigits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		var expDigits int
		i, expDigits = scanDigitPart(s, i)
		if i < 0 || expDigits == 0 {
			return false
		}
	}
	return i == len(s)
}

// scanDigitPart scans digits with single underscores between them from i.
// It returns the end index (-1 on a misplaced underscore) and digit count.
func scanDigitPart(s string, i int) (int, int) {
	n := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			n++
			i++
		case c == '_':
			if n == 0 || i+1 >= len(s) || s[i+1] < '0' || s[i+1] > '9' {
				return -1, n
			}
			i++
		default:
			return i, n
		}
	}
	return i, n
}

// pyDecimalToASCII is Python's first step in float(str): every non-ASCII
// whitespace becomes ' ' and every Unicode decimal digit (category Nd) its
// ASCII digit; any other non-ASCII character makes the string invalid.
func pyDecimalToASCII(s string) (string, bool) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s, true
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case isPySpace(r):
			b.WriteByte(' ')
		default:
			d, ok := decimalValue(r)
			if !ok {
				return "", false
			}
			b.WriteByte('0' + d)
		}
	}
	return b.String(), true
}

// decimalValue is the digit value of a Unicode decimal digit. Unicode
// allocates category Nd in contiguous runs of ten starting at zero, so the
// value is the offset from the start of its range, modulo ten.
func decimalValue(r rune) (byte, bool) {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) && rg.Stride == 1 {
			return byte((r - rune(rg.Lo)) % 10), true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) && rg.Stride == 1 {
			return byte((r - rune(rg.Lo)) % 10), true
		}
	}
	return 0, false
}

// isPySpace matches str.strip()'s notion of whitespace, which adds the
// ASCII separators 0x1c-0x1f to Unicode's.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
