package protocol

import (
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Field is one extra top-level key of an outgoing object.
type Field struct {
	Name  string
	Value json.RawMessage // valid JSON; empty is written as null
}

// Reply is a reply to a client event, composed as SocketShark's
// Event.send_ok/send_error compose it (events.py):
// {"event":E,"status":S,"error":X, extra..., "data":D,"subscription":N}.
// Extra fields are applied as a dict update, then data and subscription are
// assigned, so a key present twice keeps its first place and takes the later
// value (see compose). The table in docs/protocol.md lists every kind.
type Reply struct {
	Event    string // "" omits the key unless HasEvent (the invalid-event reply has none)
	HasEvent bool   // emit "event" even when Event is "" (a client event named "")
	Status   string // "ok", "error", or "" to omit
	Error    string // "" omits the key unless HasError or ErrorJSON
	HasError bool   // emit "error" even when Error is ""
	// ErrorJSON, when set, is the error value verbatim (a service's own
	// "error", any JSON: SocketShark echoes result.get("error", default)).
	ErrorJSON    json.RawMessage
	Subscription string // "" omits the key
	// Data is emitted verbatim and must be valid JSON ("null" allowed);
	// nil or empty omits the key.
	Data  json.RawMessage
	Extra []Field // the subscription's extra fields, in config order
}

// AppendReply appends r as a JSON object (see Reply for keys and order).
// It does not allocate when dst has room.
func AppendReply(dst []byte, r *Reply) []byte {
	var base [3]slot
	nb := 0
	if r.Event != "" || r.HasEvent {
		base[nb] = strSlot("event", r.Event)
		nb++
	}
	if r.Status != "" {
		base[nb] = strSlot("status", r.Status)
		nb++
	}
	switch {
	case len(r.ErrorJSON) > 0:
		base[nb] = rawSlot("error", r.ErrorJSON)
		nb++
	case r.Error != "" || r.HasError:
		base[nb] = strSlot("error", r.Error)
		nb++
	}
	var tail [2]slot
	nt := 0
	if len(r.Data) > 0 {
		tail[nt] = rawSlot("data", r.Data)
		nt++
	}
	if r.Subscription != "" {
		tail[nt] = strSlot("subscription", r.Subscription)
		nt++
	}
	return compose(dst, base[:nb], r.Extra, tail[:nt])
}

// AppendUnsubscribe appends the unsubscribe pushed when re-authorization
// ends a subscription, composed as SocketShark's Session.send_unsubscribe:
// {"event":"unsubscribe","subscription":sub,"data":D,"error":X, extra...}.
// data (before_unsubscribe's data) and errJSON (the failed callback's
// error, any JSON) are left out when nil; extra fields then update the
// object. It does not allocate when dst has room.
func AppendUnsubscribe(dst []byte, sub string, data, errJSON json.RawMessage, extra []Field) []byte {
	base := [4]slot{strSlot("event", "unsubscribe"), strSlot("subscription", sub)}
	nb := 2
	if len(data) > 0 {
		base[nb] = rawSlot("data", data)
		nb++
	}
	if len(errJSON) > 0 {
		base[nb] = rawSlot("error", errJSON)
		nb++
	}
	return compose(dst, base[:nb], extra, nil)
}

// AppendPong appends {"event":"pong","data":D}: D is the ping's data cut to
// 128 code points (Python's s[:128]) when it is a JSON string, else null.
// The string is cut in its JSON text, so escapes pass through as sent: an
// escape is one code point, a surrogate pair escape ("\ud83d\ude00") one
// too, as json.loads joins it, and a lone surrogate escape stays itself
// (Python keeps it and json.dumps writes it back as the same escape).
func AppendPong(dst []byte, data json.RawMessage, present bool) []byte {
	dst = append(dst, `{"event":"pong","data":`...)
	data = trimJSONSpace(data)
	if !present || len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		dst = append(dst, "null"...)
		return append(dst, '}')
	}
	body := data[1 : len(data)-1]
	cut, ok := jsonStringPrefix(body, maxPongData)
	if !ok {
		dst = append(dst, "null"...)
		return append(dst, '}')
	}
	dst = append(dst, '"')
	dst = append(dst, body[:cut]...)
	dst = append(dst, '"', '}')
	return dst
}

// jsonStringPrefix returns the byte length of the first n code points of
// the body of a JSON string, counted as Python's json.loads decodes it;
// ok is false when body is not a valid JSON string body.
func jsonStringPrefix(body []byte, n int) (int, bool) {
	i := 0
	for ; n > 0 && i < len(body); n-- {
		c := body[i]
		switch {
		case c == '\\':
			if i+1 >= len(body) {
				return 0, false
			}
			if body[i+1] != 'u' {
				i += 2
				continue
			}
			r, ok := pongHex4(body, i+2)
			if !ok {
				return 0, false
			}
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+1 < len(body) && body[i] == '\\' && body[i+1] == 'u' {
				if lo, ok := pongHex4(body, i+2); ok && lo >= 0xDC00 && lo < 0xE000 {
					i += 6 // a pair: one code point
				}
			}
		case c < utf8.RuneSelf:
			i++
		default:
			_, size := utf8.DecodeRune(body[i:])
			i += size
		}
	}
	return i, true
}

// pongHex4 reads the four hex digits at b[i:].
func pongHex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

const maxPongData = 128

// trimJSONSpace drops the JSON whitespace around a raw value.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
