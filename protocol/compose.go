package protocol

import (
	"strconv"
	"time"

	json "github.com/goccy/go-json"
)

// An outgoing object is composed the way SocketShark builds a Python dict
// and json.dumps it: base keys in order, then the extra fields applied as
// dict.update (a key already present keeps its place and takes the new
// value; a new key goes at the end), then tail keys assigned one by one
// (same rule). Clients that read keys in order (JavaScript's Object.keys,
// Python's dict) see SocketShark's order; see docs/protocol.md.

// valueKind tells which member of a slot holds its value.
type valueKind uint8

const (
	vString    valueKind = iota // s, JSON-escaped
	vRaw                        // raw, verbatim; empty is null
	vTime                       // t, as AppendTime
	vInt                        // n
	vPublished                  // raw (a JSON string) as AppendISOFormat, else t as AppendTime
)

// slot is one key of the object being composed.
type slot struct {
	name string
	key  string // the quoted key and colon, when known in advance
	kind valueKind
	s    string
	raw  json.RawMessage
	t    time.Time
	n    int
}

func strSlot(name, s string) slot                 { return slot{name: name, kind: vString, s: s} }
func rawSlot(name string, v json.RawMessage) slot { return slot{name: name, kind: vRaw, raw: v} }

// compose appends {base..., extra..., tail...} with the precedence and
// positions described above. It does not allocate when dst has room.
func compose(dst []byte, base []slot, extra []Field, tail []slot) []byte {
	dst = append(dst, '{')
	n := 0
	for i := range base {
		b := &base[i]
		if t := findSlot(tail, b.name); t != nil {
			dst = appendSlot(dst, &n, b.name, t)
		} else if j := lastField(extra, b.name); j >= 0 {
			dst = appendRaw(dst, &n, b.name, extra[j].Value)
		} else {
			dst = appendSlot(dst, &n, b.name, b)
		}
	}
	for i := range extra {
		name := extra[i].Name
		if findSlot(base, name) != nil || firstField(extra, name) < i {
			continue // placed already: a base key, or an earlier repeat
		}
		if t := findSlot(tail, name); t != nil {
			dst = appendSlot(dst, &n, name, t)
		} else {
			dst = appendRaw(dst, &n, name, extra[lastField(extra, name)].Value)
		}
	}
	for i := range tail {
		t := &tail[i]
		if findSlot(base, t.name) != nil || firstField(extra, t.name) >= 0 || findSlot(tail[:i], t.name) != nil {
			continue
		}
		dst = appendSlot(dst, &n, t.name, lastSlot(tail, t.name))
	}
	return append(dst, '}')
}

// findSlot returns the last slot named name (a later assignment wins).
func findSlot(ss []slot, name string) *slot {
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i].name == name {
			return &ss[i]
		}
	}
	return nil
}

func lastSlot(ss []slot, name string) *slot { return findSlot(ss, name) }

func firstField(fs []Field, name string) int {
	for i := range fs {
		if fs[i].Name == name {
			return i
		}
	}
	return -1
}

func lastField(fs []Field, name string) int {
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Name == name {
			return i
		}
	}
	return -1
}

func appendName(dst []byte, n *int, name string) []byte {
	if *n > 0 {
		dst = append(dst, ',')
	}
	*n++
	dst = AppendJSONString(dst, name)
	return append(dst, ':')
}

func appendRaw(dst []byte, n *int, name string, v json.RawMessage) []byte {
	dst = appendName(dst, n, name)
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, v...)
}

func appendSlot(dst []byte, n *int, name string, s *slot) []byte {
	if s.key != "" && s.name == name {
		if *n > 0 {
			dst = append(dst, ',')
		}
		*n++
		dst = append(dst, s.key...)
		return appendValue(dst, s)
	}
	dst = appendName(dst, n, name)
	return appendValue(dst, s)
}

// appendValue appends a slot's value.
func appendValue(dst []byte, s *slot) []byte {
	switch s.kind {
	case vString:
		return AppendJSONString(dst, s.s)
	case vTime:
		dst = append(dst, '"')
		dst = AppendTime(dst, s.t)
		return append(dst, '"')
	case vPublished:
		dst = append(dst, '"')
		if isPlainString(s.raw) {
			// A non-escaping conversion of a short string: no allocation.
			if out, ok := AppendISOFormat(dst, string(s.raw[1:len(s.raw)-1])); ok {
				return append(out, '"')
			}
		} else if str, ok := unquote(s.raw); ok {
			if out, ok := AppendISOFormat(dst, str); ok {
				return append(out, '"')
			}
		}
		dst = AppendTime(dst, s.t)
		return append(dst, '"')
	case vInt:
		return strconv.AppendInt(dst, int64(s.n), 10)
	}
	if len(s.raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, s.raw...)
}
