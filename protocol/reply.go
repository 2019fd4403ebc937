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

// Reply is a reply to a client event:
// {"event":E,"status":S,"error":X,"subscription":N,"data":D, extra...}.
type Reply struct {
	Event        string // "" omits the key (the invalid-event reply has none)
	Status       string // "ok", "error", or "" to omit (re-authorization unsubscribe push)
	Error        string // "" omits the key unless HasError
	HasError     bool   // emit "error" even when Error is "" (a service replied with "")
	Subscription string // "" omits the key
	// Data is emitted verbatim and must be valid JSON ("null" allowed);
	// nil or empty omits the key.
	Data  json.RawMessage
	Extra []Field // emitted as top-level keys, in order
}

// AppendReply appends r as a JSON object. Key precedence follows
// SocketShark's dict updates, so the output never has duplicate keys: an
// Extra field replaces event/status/error/subscription of the same name,
// Data wins over an Extra field named "data", and of repeated Extra names
// the last wins.
func AppendReply(dst []byte, r *Reply) []byte {
	dst = append(dst, '{')
	n := 0
	if r.Event != "" && !hasField(r.Extra, "event") {
		dst = appendKey(dst, &n, `"event":`)
		dst = AppendJSONString(dst, r.Event)
	}
	if r.Status != "" && !hasField(r.Extra, "status") {
		dst = appendKey(dst, &n, `"status":`)
		dst = AppendJSONString(dst, r.Status)
	}
	if (r.Error != "" || r.HasError) && !hasField(r.Extra, "error") {
		dst = appendKey(dst, &n, `"error":`)
		dst = AppendJSONString(dst, r.Error)
	}
	if r.Subscription != "" && !hasField(r.Extra, "subscription") {
		dst = appendKey(dst, &n, `"subscription":`)
		dst = AppendJSONString(dst, r.Subscription)
	}
	hasData := len(r.Data) > 0
	if hasData {
		dst = appendKey(dst, &n, `"data":`)
		dst = append(dst, r.Data...)
	}
	for i := range r.Extra {
		f := &r.Extra[i]
		if (hasData && f.Name == "data") || hasField(r.Extra[i+1:], f.Name) {
			continue
		}
		dst = appendField(dst, &n, f)
	}
	return append(dst, '}')
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

// runePrefixString counts a lone surrogate (WTF-8, see unquote) as one
// code point, as Python's s[:n] does.
func runePrefixString(s string, n int) int { return RunePrefix(s, n) }

func hasField(fs []Field, name string) bool {
	for i := range fs {
		if fs[i].Name == name {
			return true
		}
	}
	return false
}

// appendKey writes a separator when needed and the pre-quoted key.
func appendKey(dst []byte, n *int, quotedKey string) []byte {
	if *n > 0 {
		dst = append(dst, ',')
	}
	*n++
	return append(dst, quotedKey...)
}

func appendField(dst []byte, n *int, f *Field) []byte {
	if *n > 0 {
		dst = append(dst, ',')
	}
	*n++
	dst = AppendJSONString(dst, f.Name)
	dst = append(dst, ':')
	if len(f.Value) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, f.Value...)
}
