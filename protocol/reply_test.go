package protocol

import (
	stdjson "encoding/json"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// TestAppendReply checks keys, values and order byte for byte: the order is
// that of the dict SocketShark's send_ok/send_error build (events.py).
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
		{"unknown empty event name", Reply{HasEvent: true, Status: "error", Error: ErrEventNotFound},
			`{"event":"","status":"error","error":"Event not found."}`},
		{"auth ok", Reply{Event: "auth", Status: "ok"}, `{"event":"auth","status":"ok"}`},
		{"subscribe ok with data and extra", Reply{Event: "subscribe", Status: "ok", Subscription: "books.1",
			Data: json.RawMessage(`{"a":[1,null]}`), Extra: []Field{{"org", json.RawMessage(`"o1"`)}, {"n", json.RawMessage(`2.5`)}}},
			`{"event":"subscribe","status":"ok","org":"o1","n":2.5,"data":{"a":[1,null]},"subscription":"books.1"}`},
		{"error with extra and data", Reply{Event: "subscribe", Status: "error", Error: ErrUnauthorized, Subscription: "books.1",
			Data: json.RawMessage(`{"why":1}`), Extra: []Field{{"org", json.RawMessage(`"o1"`)}}},
			`{"event":"subscribe","status":"error","error":"Unauthorized.","org":"o1","data":{"why":1},"subscription":"books.1"}`},
		{"service error value verbatim", Reply{Event: "message", Status: "error", ErrorJSON: json.RawMessage(`null`), Error: "ignored"},
			`{"event":"message","status":"error","error":null}`},
		{"empty data omitted", Reply{Event: "e", Status: "ok", Data: json.RawMessage{}}, `{"event":"e","status":"ok"}`},
		{"empty error kept with HasError", Reply{Event: "auth", Status: "error", HasError: true},
			`{"event":"auth","status":"error","error":""}`},
		{"escaping", Reply{Event: "a\"b\\c\n\x01é", Status: "error", Error: "bad\xffbyte"},
			`{"event":"a\"b\\c\n\u0001é","status":"error","error":"bad\ufffdbyte"}`},
		{"extra subscription keeps its place, takes the name", Reply{Event: "e", Status: "ok", Subscription: "a.b",
			Extra: []Field{{"org", json.RawMessage(`1`)}, {"subscription", json.RawMessage(`"x.y"`)}}},
			`{"event":"e","status":"ok","org":1,"subscription":"a.b"}`},
		{"extra event overrides in place", Reply{Event: "e", Status: "ok", Extra: []Field{{"event", json.RawMessage(`"z"`)}}},
			`{"event":"z","status":"ok"}`},
		{"data beats extra data, at the extra's place", Reply{Event: "e", Status: "ok", Data: json.RawMessage(`1`),
			Extra: []Field{{"data", json.RawMessage(`2`)}, {"k", json.RawMessage(`3`)}}},
			`{"event":"e","status":"ok","data":1,"k":3}`},
		{"extra data stays without data", Reply{Event: "e", Status: "ok", Extra: []Field{{"data", json.RawMessage(`2`)}}},
			`{"event":"e","status":"ok","data":2}`},
		{"repeated extra: first place, last value", Reply{Event: "e", Extra: []Field{{"k", json.RawMessage(`1`)}, {"j", nil}, {"k", json.RawMessage(`2`)}}},
			`{"event":"e","k":2,"j":null}`},
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
			if string(out) != tt.want {
				t.Fatalf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}

// TestAppendUnsubscribe: Session.send_unsubscribe's dict, extra fields last.
func TestAppendUnsubscribe(t *testing.T) {
	extra := []Field{{"org", json.RawMessage(`"o1"`)}}
	tests := []struct {
		name      string
		data, err json.RawMessage
		extra     []Field
		want      string
	}{
		{"error only", nil, json.RawMessage(`"Unauthorized."`), nil,
			`{"event":"unsubscribe","subscription":"a.b","error":"Unauthorized."}`},
		{"data, error, extra", json.RawMessage(`{"x":1}`), json.RawMessage(`"no"`), extra,
			`{"event":"unsubscribe","subscription":"a.b","data":{"x":1},"error":"no","org":"o1"}`},
		{"null error omitted", nil, nil, extra, `{"event":"unsubscribe","subscription":"a.b","org":"o1"}`},
		{"extra overrides in place", nil, json.RawMessage(`"no"`), []Field{{"subscription", json.RawMessage(`5`)}},
			`{"event":"unsubscribe","subscription":5,"error":"no"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := AppendUnsubscribe(nil, "a.b", tt.data, tt.err, tt.extra)
			if string(out) != tt.want {
				t.Fatalf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}

func TestAppendReplyNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 512)
	r := Reply{Event: "subscribe", Status: "ok", Subscription: "books.b1", Data: json.RawMessage(`{"a":1}`),
		Extra: []Field{{"org", json.RawMessage(`"o1"`)}}}
	if allocs := testing.AllocsPerRun(100, func() { buf = AppendReply(buf[:0], &r) }); allocs != 0 {
		t.Fatalf("AppendReply allocates %v times per call", allocs)
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
		{"escapes count once", `"` + strings.Repeat(`\n`, 129) + `"`, true, strPtr(strings.Repeat("\n", 128))},
		{"lone surrogates count once each", `"` + strings.Repeat(`\udc00`, 129) + `"`, true, strPtr(strings.Repeat("\ufffd", 128))},
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

// TestAppendPongEscapesVerbatim: the ping's string is cut in its JSON text,
// so a lone surrogate escape comes back as the same escape (Python's
// json.dumps writes it so), not as U+FFFD.
func TestAppendPongEscapesVerbatim(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"\ud800x"`, `{"event":"pong","data":"\ud800x"}`},
		{`"a\u00e9\/\""`, `{"event":"pong","data":"a\u00e9\/\""}`},
		{`"` + strings.Repeat("a", 127) + `\ud83d\ude00b"`, `{"event":"pong","data":"` + strings.Repeat("a", 127) + `\ud83d\ude00"}`},
		{`"` + strings.Repeat("a", 127) + `\ud83d\u0041"`, `{"event":"pong","data":"` + strings.Repeat("a", 127) + `\ud83d"}`},
	}
	for _, tt := range tests {
		if got := string(AppendPong(nil, json.RawMessage(tt.in), true)); got != tt.want {
			t.Errorf("AppendPong(%s) = %s, want %s", tt.in, got, tt.want)
		}
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

// FuzzAppendPong: for any JSON string, the pong is valid JSON whose data
// decodes to the first 128 code points of the ping's (a lone surrogate
// escape decodes to one U+FFFD on both sides, a pair to one code point).
func FuzzAppendPong(f *testing.F) {
	f.Add([]byte(`"hi"`))
	f.Add([]byte(`"\ud800x\ud83d\ude00\n\u00e9"`))
	f.Add([]byte(`"` + strings.Repeat(`\ud83d\ude00`, 130) + `"`))
	f.Add([]byte(`"` + strings.Repeat(`é\"`, 130) + `"`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s string
		if !stdjson.Valid(in) || stdjson.Unmarshal(in, &s) != nil || len(in) == 0 || in[0] != '"' {
			return
		}
		out := AppendPong(nil, json.RawMessage(in), true)
		var m struct{ Data *string }
		if err := stdjson.Unmarshal(out, &m); err != nil || m.Data == nil {
			t.Fatalf("pong %s of %s: %v", out, in, err)
		}
		want := []rune(s)
		if len(want) > 128 {
			want = want[:128]
		}
		if *m.Data != string(want) {
			t.Fatalf("pong of %s: data %q, want %q", in, *m.Data, string(want))
		}
	})
}
