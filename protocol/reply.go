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
func AppendPong(dst []byte, data json.RawMessage, present bool) []byte {
	dst = append(dst, `{"event":"pong","data":`...)
	switch {
	case !present || len(data) == 0 || data[0] != '"':
		dst = append(dst, "null"...)
	case isPlainString(data):
		body := data[1 : len(data)-1]
		dst = append(dst, '"')
		dst = append(dst, body[:runePrefix(body, maxPongData)]...)
		dst = append(dst, '"')
	default:
		s, ok := unquote(data)
		if !ok {
			dst = append(dst, "null"...)
			break
		}
		dst = AppendJSONString(dst, s[:runePrefixString(s, maxPongData)])
	}
	return append(dst, '}')
}

const maxPongData = 128

// runePrefix returns the byte length of the first n code points of b.
func runePrefix(b []byte, n int) int {
	i := 0
	for ; n > 0 && i < len(b); n-- {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		i += size
	}
	return i
}

func runePrefixString(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}
