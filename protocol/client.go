package protocol

import (
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// MaxEventLength is SocketShark's cap on the event name, counted in code
// points; it stops the server from echoing large garbage back in replies.
const MaxEventLength = 40

// ClientEvent is one decoded client frame.
type ClientEvent struct {
	Event string
	// Fields holds every top-level key of the frame, "event" included (of
	// duplicated keys the last wins). The values are the raw JSON text and
	// never alias the caller's buffer, so the frame buffer may be reused once
	// DecodeClientEvent returns.
	Fields map[string]json.RawMessage
}

// DecodeClientEvent decodes a client frame as SocketShark's json.loads
// reads it (docs/json.md). ok is false for every case SocketShark answers
// with ErrInvalidEvent: not JSON (or not UTF-8), not an object, no "event",
// "event" not a string, or longer than MaxEventLength code points.
func DecodeClientEvent(b []byte) (ev ClientEvent, ok bool) {
	// Python would never see invalid UTF-8 (its WebSocket layer rejects it),
	// so treat it as "not JSON".
	if !utf8.Valid(b) {
		return ClientEvent{}, false
	}
	m, kind := decodeJSONObject(b)
	if kind != docObject {
		return ClientEvent{}, false
	}
	raw, found := m["event"]
	if !found {
		return ClientEvent{}, false
	}
	name, isStr := unquote(raw)
	if !isStr || RuneCount(name) > MaxEventLength {
		return ClientEvent{}, false
	}
	return ClientEvent{Event: name, Fields: m}, true
}

// String returns the string value of key. present is true when the key
// exists (a JSON null counts as present); isString is true only when the
// value is a JSON string, so callers can tell "absent" from "wrong type" as
// the spec requires (e.g. a non-string subscription is a format error).
func (e *ClientEvent) String(key string) (s string, present bool, isString bool) {
	raw, ok := e.Fields[key]
	if !ok {
		return "", false, false
	}
	s, isString = unquote(raw)
	return s, true, isString
}

// Raw returns the raw JSON value of key.
func (e *ClientEvent) Raw(key string) (json.RawMessage, bool) {
	raw, ok := e.Fields[key]
	return raw, ok
}
