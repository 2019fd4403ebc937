package protocol

import (
	"time"
	"unicode/utf8"
)

// AppendTime appends t in the shape of Python's isoformat() of an aware UTC
// datetime, "2006-01-02T15:04:05.000000+00:00", truncated to microseconds as
// Python's datetime is. Unlike Python it always writes the six fraction
// digits, so clients see one fixed layout.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	if year < 0 || year > 9999 {
		year = 0 // unreachable for real clocks; keeps the layout fixed
	}
	// Fill a fixed layout in place: one append, no per-field calls.
	b := [32]byte{'0', '0', '0', '0', '-', '0', '0', '-', '0', '0', 'T',
		'0', '0', ':', '0', '0', ':', '0', '0', '.', '0', '0', '0', '0', '0', '0',
		'+', '0', '0', ':', '0', '0'}
	putDigits(b[0:4], year)
	putDigits(b[5:7], int(month))
	putDigits(b[8:10], day)
	putDigits(b[11:13], hour)
	putDigits(b[14:16], minute)
	putDigits(b[17:19], sec)
	putDigits(b[20:26], t.Nanosecond()/1000)
	return append(dst, b[:]...)
}

// putDigits writes v right-aligned and zero-padded into b.
func putDigits(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// ParseISOTime parses what Python 3.11+'s datetime.fromisoformat accepts for
// published_at (calendar dates): YYYY-MM-DD or YYYYMMDD, optionally followed
// by any single separator character and HH[:MM[:SS[.f+]]] (or the basic
// HHMMSS form; "," also separates the fraction; digits past six are
// dropped), optionally followed by Z or ±HH[:MM[:SS[.f+]]]. No offset
// means UTC. The result is in UTC; ok is false for anything else, including
// years that leave 1..9999 once converted to UTC.
func ParseISOTime(s string) (t time.Time, ok bool) {
	var year, month, day int
	var rest string
	switch {
	case len(s) >= 10 && s[4] == '-' && s[7] == '-':
		year, ok = digits(s[0:4])
		if ok {
			month, ok = digits(s[5:7])
		}
		if ok {
			day, ok = digits(s[8:10])
		}
		rest = s[10:]
	case len(s) >= 8:
		year, ok = digits(s[0:4])
		if ok {
			month, ok = digits(s[4:6])
		}
		if ok {
			day, ok = digits(s[6:8])
		}
		rest = s[8:]
	}
	if !ok || year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return time.Time{}, false
	}
	var hour, minute, sec, us, offset int
	if rest != "" {
		_, size := utf8.DecodeRuneInString(rest)
		rest = rest[size:]
		timePart, tzPart, hasTZ := cutTZ(rest)
		hour, minute, sec, us, ok = parseClock(timePart)
		if !ok || hour > 23 {
			return time.Time{}, false
		}
		if hasTZ {
			if offset, ok = parseOffset(tzPart); !ok {
				return time.Time{}, false
			}
		}
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, us*1000, time.UTC)
	t = t.Add(-time.Duration(offset) * time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// cutTZ splits a time at the first Z, + or - (the time itself has none).
func cutTZ(s string) (clock, tz string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'Z', '+', '-':
			return s[:i], s[i:], true
		}
	}
	return s, "", false
}

// parseClock parses HH[:MM[:SS[.f+]]] or HH[MM[SS[.f+]]], keeping six
// fraction digits at most, as Python does; offsets share the grammar.
func parseClock(s string) (h, m, sec, us int, ok bool) {
	comps := [3]int{}
	pos := 0
	extended := len(s) > 2 && s[2] == ':'
	n := 0
	for ; n < 3 && pos < len(s); n++ {
		if n > 0 && extended {
			if s[pos] != ':' {
				break
			}
			pos++
		}
		if pos+2 > len(s) {
			return 0, 0, 0, 0, false
		}
		if comps[n], ok = digits(s[pos : pos+2]); !ok {
			return 0, 0, 0, 0, false
		}
		pos += 2
		if pos < len(s) && (s[pos] == '.' || s[pos] == ',') {
			n++
			break
		}
	}
	if n == 0 {
		return 0, 0, 0, 0, false
	}
	if pos < len(s) {
		if n < 3 || (s[pos] != '.' && s[pos] != ',') {
			return 0, 0, 0, 0, false
		}
		frac := s[pos+1:]
		if frac == "" {
			return 0, 0, 0, 0, false
		}
		scale := 100000
		for i := 0; i < len(frac); i++ {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, 0, 0, 0, false
			}
			if i < 6 {
				us += int(c-'0') * scale
				scale /= 10
			}
		}
	}
	if comps[1] > 59 || comps[2] > 59 {
		return 0, 0, 0, 0, false
	}
	return comps[0], comps[1], comps[2], us, true
}

// parseOffset returns a "Z" or ±HH[:MM[:SS[.f+]]] offset in
// microseconds east of UTC; Python requires it to be under 24 hours.
func parseOffset(s string) (int, bool) {
	if s == "Z" {
		return 0, true
	}
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	h, m, sec, us, ok := parseClock(s[1:])
	if !ok || h > 23 {
		return 0, false
	}
	off := ((h*60+m)*60+sec)*1_000_000 + us
	if s[0] == '-' {
		off = -off
	}
	return off, true
}

func digits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
