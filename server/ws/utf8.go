package ws

import "unicode/utf8"

// utf8State is where an incremental UTF-8 check of a text message stands
// between the pieces it is fed: at a rune boundary (0), or inside a rune,
// knowing how many continuation bytes are still due and which range the
// next one must fall in (Unicode 15, table 3-7: the ranges exclude
// overlong forms, surrogates and code points past U+10FFFF, as
// utf8.Valid does). One byte replaces keeping the incomplete trailing
// sequence (at most 3 bytes): nothing already checked is looked at again.
//
// RFC 6455 8.1 asks an endpoint to fail the connection as soon as text
// is found not to be UTF-8, not only once the message is complete.
type utf8State uint8

const (
	utf8Boundary utf8State = iota
	utf8Need1              // one more byte in 80..BF
	utf8Need2              // two more, the next in 80..BF
	utf8Need3              // three more, the next in 80..BF
	utf8AfterE0            // after E0: A0..BF, then one more
	utf8AfterED            // after ED: 80..9F (no surrogates), then one more
	utf8AfterF0            // after F0: 90..BF, then two more
	utf8AfterF4            // after F4: 80..8F (up to U+10FFFF), then two more
	utf8Reject
)

// utf8Step advances s by one byte.
func utf8Step(s utf8State, c byte) utf8State {
	switch s {
	case utf8Boundary:
		switch {
		case c < 0x80:
			return utf8Boundary
		case c < 0xc2: // continuation bytes, and C0/C1 (overlong)
			return utf8Reject
		case c < 0xe0:
			return utf8Need1
		case c == 0xe0:
			return utf8AfterE0
		case c == 0xed:
			return utf8AfterED
		case c < 0xf0:
			return utf8Need2
		case c == 0xf0:
			return utf8AfterF0
		case c < 0xf4:
			return utf8Need3
		case c == 0xf4:
			return utf8AfterF4
		}
		return utf8Reject
	case utf8AfterE0:
		if c >= 0xa0 && c <= 0xbf {
			return utf8Need1
		}
	case utf8AfterED:
		if c >= 0x80 && c <= 0x9f {
			return utf8Need1
		}
	case utf8AfterF0:
		if c >= 0x90 && c <= 0xbf {
			return utf8Need2
		}
	case utf8AfterF4:
		if c >= 0x80 && c <= 0x8f {
			return utf8Need2
		}
	case utf8Need1, utf8Need2, utf8Need3:
		if c >= 0x80 && c <= 0xbf {
			return s - 1
		}
	}
	return utf8Reject
}

// feed checks the next piece of the text, which may begin or end inside a
// rune; false means the text is not UTF-8, whatever follows. The bulk of a
// piece goes through utf8.Valid (fast on ASCII); only the bytes finishing
// a rune begun in the previous piece and those of a rune left incomplete
// at its end go through utf8Step.
func (s *utf8State) feed(p []byte) bool {
	st := *s
	i := 0
	for ; st != utf8Boundary && i < len(p); i++ {
		if st = utf8Step(st, p[i]); st == utf8Reject {
			return false
		}
	}
	if p = p[i:]; len(p) > 0 {
		// The last rune start within the final 3 bytes begins the only
		// rune that may be incomplete. FullRune is true for invalid
		// sequences too, which utf8.Valid then rejects.
		k := len(p)
		for j := len(p) - 1; j >= 0 && j >= len(p)-3; j-- {
			if utf8.RuneStart(p[j]) {
				if !utf8.FullRune(p[j:]) {
					k = j
				}
				break
			}
		}
		if !utf8.Valid(p[:k]) {
			return false
		}
		for _, c := range p[k:] {
			if st = utf8Step(st, c); st == utf8Reject {
				return false
			}
		}
	}
	*s = st
	return true
}

// complete reports whether the text fed so far ends at a rune boundary.
func (s utf8State) complete() bool { return s == utf8Boundary }
