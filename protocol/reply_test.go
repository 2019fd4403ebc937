package protocol

import (
	stdjson "encoding/json"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func TestAppendReply(t *testing.T) {
	tests := []struct {
		name string
		r    Reply
		want string
	}{
		{"invalid event", Reply{Status: "error", Error: ErrInvalidEvent},
			`{"status":"error","error":"Messages must be JSON and contain an event field."}`},
		{"unknown event", Reply{Event: "x", Status: "error", Error: ErrEventNotFound},
			`{"event":"x","status":"error","error":"Event not found."}`},
		{"auth ok", Reply{Event: "auth", Status: "ok"}, `{"event":"auth","status":"ok"}`},
		{"subscribe ok with data and extra", Reply{Event: "subscribe", Status: "ok", Subscription: "books.1",
			Data: json.RawMessage(`{"a":[1,null]}`), Extra: []Field{{"org", json.RawMessage(`"o1"`)}, {"n", json.RawMessage(`2.5`)}}},
			`{"event":"subscribe","status":"ok","subscription":"books.1","data":{"a":[1,null]},"org":"o1","n":2.5}`},
		{"data null kept", Reply{Event: "message", Status: "ok", Subscription: "a.b", Data: json.RawMessage(`null`)},
			`{"event":"message","status":"ok","subscription":"a.b","data":null}`},
		{"empty data omitted", Reply{Event: "e", Status: "ok", Data: json.RawMessage{}}, `{"event":"e","status":"ok"}`},
		{"reauth unsubscribe push", Reply{Event: "unsubscribe", Subscription: "a.b", Error: ErrUnauthorized},
			`{"event":"unsubscribe","subscription":"a.b","error":"Unauthorized."}`},
		{"empty error kept with HasError", Reply{Event: "auth", Status: "error", HasError: true},
			`{"event":"auth","status":"error","error":""}`},
		{"escaping", Reply{Event: "a\"b\\c\n\x01é", Status: "error", Error: "bad\xffbyte"},
			`{"event":"a\"b\\c\n\u0001é","status":"error","error":"bad\ufffdbyte"}`},
		{"extra overrides base key", Reply{Event: "e", Status: "ok", Subscription: "a.b", Extra: []Field{{"subscription", json.RawMessage(`"x.y"`)}}},
			`{"event":"e","status":"ok","subscription":"x.y"}`},
		{"data beats extra data", Reply{Event: "e", Status: "ok", Data: json.RawMessage(`1`), Extra: []Field{{"data", json.RawMessage(`2`)}}},
			`{"event":"e","status":"ok","data":1}`},
		{"repeated extra last wins", Reply{Event: "e", Extra: []Field{{"k", json.RawMessage(`1`)}, {"k", json.RawMessage(`2`)}}},
			`{"event":"e","k":2}`},
		{"empty extra value is null", Reply{Event: "e", Extra: []Field{{"k", nil}}}, `{"event":"e","k":null}`},
		{"nothing", Reply{}, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			out := AppendReply(prefix, &tt.r)
			if !strings.HasPrefix(string(out), "prefix") {
				t.Fatalf("prefix lost: %s", out)
			}
			out = out[len("prefix"):]
			if !stdjson.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			if strings.Count(string(out), `"event":`) > 1 {
				t.Fatalf("duplicate key: %s", out)
			}
			wantObject(t, out, tt.want)
		})
	}
}

func TestAppendPong(t *testing.T) {
	s128 := strings.Repeat("a", 128)
	e128 := strings.Repeat("é", 128)
	emoji128 := strings.Repeat("😀", 128)
	tests := []struct {
		name    string
		data    string
		present bool
		want    *string // nil = null
	}{
		{"absent", "", false, nil},
		{"null", `null`, true, nil},
		{"number", `5`, true, nil},
		{"object", `{"a":"b"}`, true, nil},
		{"array", `["a"]`, true, nil},
		{"bool", `true`, true, nil},
		{"short", `"hi"`, true, strPtr("hi")},
		{"empty", `""`, true, strPtr("")},
		{"128 kept", `"` + s128 + `"`, true, strPtr(s128)},
		{"129 cut", `"` + s128 + `b"`, true, strPtr(s128)},
		{"multibyte cut by runes", `"` + e128 + `é"`, true, strPtr(e128)},
		{"astral cut by code points", `"` + emoji128 + `x"`, true, strPtr(emoji128)},
		{"escaped surrogate pairs count once", `"` + strings.Repeat(`\ud83d\ude00`, 129) + `"`, true, strPtr(emoji128)},
		{"escapes decoded", `"a\"b\n\u00e9"`, true, strPtr("a\"b\né")},
		{"escapes then cut", `"\n` + s128 + `"`, true, strPtr("\n" + s128[:127])},
		{"lone surrogate", `"\ud800x"`, true, strPtr("\ufffdx")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data json.RawMessage
			if tt.present {
				data = json.RawMessage(tt.data)
			}
			out := AppendPong(nil, data, tt.present)
			m := decodeObject(t, out)
			if len(m) != 2 || m["event"] != "pong" {
				t.Fatalf("bad pong: %s", out)
			}
			d, has := m["data"]
			if !has {
				t.Fatalf("no data key: %s", out)
			}
			if tt.want == nil {
				if d != nil {
					t.Fatalf("data = %v, want null", d)
				}
				return
			}
			if d != *tt.want {
				t.Fatalf("data = %q, want %q", d, *tt.want)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"é😀", `"é😀"`},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"</script>\u2028", "\"</script>\u2028\""},
	}
	for _, tt := range tests {
		got := string(AppendJSONString(nil, tt.in))
		if got != tt.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if !stdjson.Valid([]byte(got)) {
			t.Errorf("invalid JSON: %s", got)
		}
	}
}

func TestUnquote(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t", true},
		{`"\u00e9\u00E9"`, "éé", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"\ude00\ud83d"`, "\xed\xb8\x80\xed\xa0\xbd", true}, // lone surrogates kept as WTF-8
		{`"\ud83dx"`, "\xed\xa0\xbdx", true},
		{`"\ud83d\u0041"`, "\xed\xa0\xbdA", true},
		{`"\x"`, "", false},
		{`"\u12"`, "", false},
		{`"\"`, "", false},
		{`"a"b"`, "", false},
		{"\"a\x01\"", "", false},
		{`abc`, "", false},
		{`"`, "", false},
		{`5`, "", false},
		{`null`, "", false},
	}
	for _, tt := range tests {
		got, ok := unquote([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("unquote(%s) = (%q, %v), want (%q, %v)", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
