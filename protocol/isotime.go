package protocol

import (
	"time"
	"unicode/utf8"
)

// AppendTime appends t as Python's isoformat() writes an aware UTC
// datetime (SocketShark's received_at and sent_at):
// "2006-01-02T15:04:05.000000+00:00", truncated to microseconds as Python's
// datetime is, and without the fraction when the microseconds are zero.
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
	us := t.Nanosecond() / 1000
	if us == 0 {
		dst = append(dst, b[:19]...)
		return append(dst, b[26:]...)
	}
	putDigits(b[20:26], us)
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
	p, ok := parseISO(s)
	if !ok {
		return time.Time{}, false
	}
	t = time.Date(p.year, time.Month(p.month), p.day, p.hour, p.minute, p.sec, p.us*1000, time.UTC)
	t = t.Add(-time.Duration(p.offset) * time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// isoParts is a date-time as fromisoformat reads it: the wall clock as
// written and its offset (aware false: none given).
type isoParts struct {
	year, month, day, hour, minute, sec, us int
	offset                                  int // microseconds east of UTC
	aware                                   bool
}

func parseISO(s string) (p isoParts, ok bool) {
	var rest string
	switch {
	case len(s) >= 10 && s[4] == '-' && s[7] == '-':
		p.year, ok = digits(s[0:4])
		if ok {
			p.month, ok = digits(s[5:7])
		}
		if ok {
			p.day, ok = digits(s[8:10])
		}
		rest = s[10:]
	case len(s) >= 8:
		p.year, ok = digits(s[0:4])
		if ok {
			p.month, ok = digits(s[4:6])
		}
		if ok {
			p.day, ok = digits(s[6:8])
		}
		rest = s[8:]
	}
	if !ok || p.year < 1 || p.month < 1 || p.month > 12 || p.day < 1 || p.day > daysIn(p.year, p.month) {
		return isoParts{}, false
	}
	if rest != "" {
		_, size := utf8.DecodeRuneInString(rest)
		rest = rest[size:]
		timePart, tzPart, hasTZ := cutTZ(rest)
		p.hour, p.minute, p.sec, p.us, ok = parseClock(timePart)
		if !ok || p.hour > 23 {
			return isoParts{}, false
		}
		if hasTZ {
			if p.offset, ok = parseOffset(tzPart); !ok {
				return isoParts{}, false
			}
			p.aware = true
		}
	}
	return p, true
}

// AppendISOFormat appends what Python's
// datetime.fromisoformat(s).isoformat() returns, which is how SocketShark
// echoes a publisher's published_at: the wall clock as written (not moved
// to UTC), ".ffffff" only when the microseconds are not zero, and the
// offset as ±HH:MM[:SS[.ffffff]] ("Z" becomes "+00:00"), or none for a
// time given without one. ok is false when s does not parse (see
// ParseISOTime); dst is then returned unchanged.
func AppendISOFormat(dst []byte, s string) ([]byte, bool) {
	p, ok := parseISO(s)
	if !ok {
		return dst, false
	}
	var b [4 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 6]byte
	putDigits(b[0:4], p.year)
	b[4] = '-'
	putDigits(b[5:7], p.month)
	b[7] = '-'
	putDigits(b[8:10], p.day)
	b[10] = 'T'
	putDigits(b[11:13], p.hour)
	b[13] = ':'
	putDigits(b[14:16], p.minute)
	b[16] = ':'
	putDigits(b[17:19], p.sec)
	n := 19
	if p.us != 0 {
		b[19] = '.'
		putDigits(b[20:26], p.us)
		n = 26
	}
	dst = append(dst, b[:n]...)
	if !p.aware {
		return dst, true
	}
	off := p.offset
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	us := off % 1_000_000
	secs := off / 1_000_000
	var z [1 + 2 + 1 + 2 + 1 + 2 + 1 + 6]byte
	z[0] = sign
	putDigits(z[1:3], secs/3600)
	z[3] = ':'
	putDigits(z[4:6], secs/60%60)
	n = 6
	if secs%60 != 0 || us != 0 {
		z[6] = ':'
		putDigits(z[7:9], secs%60)
		n = 9
		if us != 0 {
			z[9] = '.'
			putDigits(z[10:16], us)
			n = 16
		}
	}
	return append(dst, z[:n]...), true
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
		// Python (3.11+) takes a fraction after any component: "08:24.5"
		// is 08:24:00.5.
		if s[pos] != '.' && s[pos] != ',' {
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
