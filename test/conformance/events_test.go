package conformance

import (
	"strings"
	"testing"
)

// Row: not JSON, not an object, no event, event not a string or longer
// than 40 chars → the invalid-event reply, which has no "event" key.
func TestInvalidEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	cases := map[string]string{
		"not JSON":             `hello`,
		"truncated JSON":       `{"event":"ping"`,
		"array":                `[{"event":"ping"}]`,
		"string":               `"ping"`,
		"number":               `42`,
		"null":                 `null`,
		"empty object":         `{}`,
		"no event":             `{"data":"x","subscription":"books.b1"}`,
		"event number":         `{"event":1}`,
		"event null":           `{"event":null}`,
		"event object":         `{"event":{"name":"ping"}}`,
		"event array":          `{"event":["ping"]}`,
		"event bool":           `{"event":true}`,
		"event 41 chars":       `{"event":"` + strings.Repeat("a", 41) + `"}`,
		"event 41 code points": `{"event":"` + strings.Repeat("é", 41) + `"}`,
	}
	for name, frame := range cases {
		c.Send(frame)
		m := c.Recv()
		if _, ok := m["event"]; ok {
			t.Fatalf("%s: reply has an event key: %v", name, m)
		}
		expectJSONMsg(t, name, m, `{"status":"error","error":"`+errInvalidEvent+`"}`)
	}
	// The connection stays usable and no service was called.
	c.Quiet()
	f.svc.NoCall(t)
}

// Row: an event name of 40 characters is a valid name, just unknown.
func TestEventOf40CharsIsUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	for _, name := range []string{strings.Repeat("a", 40), strings.Repeat("é", 40)} {
		expectJSON(t, c.Roundtrip(`{"event":"`+name+`"}`),
			`{"event":"`+name+`","status":"error","error":"`+errEventNotFound+`"}`)
	}
}

// Row: unknown event → {"event":E,"status":"error","error":"Event not found."}.
func TestUnknownEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	for _, name := range []string{"hello", "Subscribe", "PING", "pong", " "} {
		expectJSON(t, c.Roundtrip(`{"event":"`+name+`","subscription":"books.b1","data":1}`),
			`{"event":"`+name+`","status":"error","error":"`+errEventNotFound+`"}`)
	}
	c.Quiet()
	f.svc.NoCall(t)
}

// Row: unknown event, with the empty name: "" is a string of at most 40
// chars, so it is an unknown event and the reply echoes "event":"" (as
// SocketShark's send_error does).
func TestUnknownEventEmptyName(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":""}`), `{"event":"","status":"error","error":"`+errEventNotFound+`"}`)
}

// Row: ping → {"event":"pong","data":D} at once, no service call; D is the
// string data cut to 128 chars, otherwise null.
func TestPing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	long := strings.Repeat("x", 100) + strings.Repeat("é", 100)
	cut := strings.Repeat("x", 100) + strings.Repeat("é", 28)
	cases := []struct{ name, frame, want string }{
		{"string", `{"event":"ping","data":"abc"}`, `{"event":"pong","data":"abc"}`},
		{"empty string", `{"event":"ping","data":""}`, `{"event":"pong","data":""}`},
		{"128 chars kept", `{"event":"ping","data":"` + strings.Repeat("y", 128) + `"}`, `{"event":"pong","data":"` + strings.Repeat("y", 128) + `"}`},
		{"129 chars cut", `{"event":"ping","data":"` + strings.Repeat("y", 129) + `"}`, `{"event":"pong","data":"` + strings.Repeat("y", 128) + `"}`},
		{"cut by code points", `{"event":"ping","data":"` + long + `"}`, `{"event":"pong","data":"` + cut + `"}`},
		{"escaped string", `{"event":"ping","data":"a\"b\\c\n\u00e9"}`, `{"event":"pong","data":"a\"b\\c\né"}`},
		{"number", `{"event":"ping","data":12}`, `{"event":"pong","data":null}`},
		{"object", `{"event":"ping","data":{"a":"b"}}`, `{"event":"pong","data":null}`},
		{"array", `{"event":"ping","data":["a"]}`, `{"event":"pong","data":null}`},
		{"bool", `{"event":"ping","data":true}`, `{"event":"pong","data":null}`},
		{"null", `{"event":"ping","data":null}`, `{"event":"pong","data":null}`},
		{"no data", `{"event":"ping"}`, `{"event":"pong","data":null}`},
		{"other keys ignored", `{"event":"ping","subscription":"books.b1","x":1}`, `{"event":"pong","data":null}`},
	}
	for _, tc := range cases {
		expectJSONMsg(t, tc.name, c.Roundtrip(tc.frame), tc.want)
	}
	f.svc.NoCall(t)
}

// Replies never carry the pong's 128-char cut over escaped characters
// wrongly: a string of 130 escaped quotes comes back as 128 quotes.
func TestPingCutCountsDecodedCharacters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	m := c.Roundtrip(`{"event":"ping","data":"` + strings.Repeat(`\"`, 130) + `"}`)
	expectJSON(t, m, `{"event":"pong","data":"`+strings.Repeat(`\"`, 128)+`"}`)
}
