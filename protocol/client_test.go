package protocol

import (
	"strings"
	"testing"
)

func TestDecodeClientEvent(t *testing.T) {
	ev40 := strings.Repeat("e", 40)
	ev41 := strings.Repeat("e", 41)
	multi40 := strings.Repeat("é", 40) // 80 bytes, 40 code points
	tests := []struct {
		name  string
		in    string
		ok    bool
		event string
	}{
		{"not JSON", `hello`, false, ""},
		{"truncated", `{"event":"auth"`, false, ""},
		{"trailing garbage", `{"event":"auth"} x`, false, ""},
		{"array", `[{"event":"auth"}]`, false, ""},
		{"string", `"auth"`, false, ""},
		{"null", `null`, false, ""},
		{"number", `5`, false, ""},
		{"empty", ``, false, ""},
		{"no event", `{"subscription":"a.b"}`, false, ""},
		{"event number", `{"event":5}`, false, ""},
		{"event null", `{"event":null}`, false, ""},
		{"event object", `{"event":{}}`, false, ""},
		{"event bool", `{"event":true}`, false, ""},
		{"event 41 chars", `{"event":"` + ev41 + `"}`, false, ""},
		{"event 40 chars", `{"event":"` + ev40 + `"}`, true, ev40},
		{"event 40 multibyte chars", `{"event":"` + multi40 + `"}`, true, multi40},
		{"event 41 multibyte chars", `{"event":"` + multi40 + `é"}`, false, ""},
		{"invalid UTF-8", "{\"event\":\"a\xff\"}", false, ""},
		{"ok", `{"event":"auth","ticket":"t"}`, true, "auth"},
		{"escaped event", `{"event":"p\u0069ng"}`, true, "ping"},
		{"empty event", `{"event":""}`, true, ""},
		{"whitespace", " \n{ \"event\" : \"ping\" }\t", true, "ping"},
		{"duplicate key last wins", `{"event":5,"event":"ping"}`, true, "ping"},
		{"unknown event", `{"event":"nope"}`, true, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := DecodeClientEvent([]byte(tt.in))
			if ok != tt.ok || ev.Event != tt.event {
				t.Fatalf("got (%q, %v), want (%q, %v)", ev.Event, ok, tt.event, tt.ok)
			}
			if ok && ev.Fields["event"] == nil {
				t.Fatal("Fields lacks event")
			}
		})
	}
}

func TestClientEventDoesNotAliasInput(t *testing.T) {
	buf := []byte(`{"event":"message","subscription":"a.b","data":{"x":[1,2]}}`)
	ev, ok := DecodeClientEvent(buf)
	if !ok {
		t.Fatal("decode failed")
	}
	for i := range buf {
		buf[i] = 'Z'
	}
	if got := string(ev.Fields["data"]); got != `{"x":[1,2]}` {
		t.Fatalf("data changed with the input buffer: %s", got)
	}
	if s, _, _ := ev.String("subscription"); s != "a.b" {
		t.Fatalf("subscription changed with the input buffer: %q", s)
	}
}

func TestClientEventString(t *testing.T) {
	ev, ok := DecodeClientEvent([]byte(`{"event":"subscribe","subscription":"a.b","n":null,"num":1,"esc":"x\"\u00e9\ud83d\ude00","empty":""}`))
	if !ok {
		t.Fatal("decode failed")
	}
	tests := []struct {
		key               string
		s                 string
		present, isString bool
	}{
		{"subscription", "a.b", true, true},
		{"missing", "", false, false},
		{"n", "", true, false},
		{"num", "", true, false},
		{"esc", "x\"é😀", true, true},
		{"empty", "", true, true},
	}
	for _, tt := range tests {
		s, present, isString := ev.String(tt.key)
		if s != tt.s || present != tt.present || isString != tt.isString {
			t.Errorf("String(%q) = (%q, %v, %v), want (%q, %v, %v)", tt.key, s, present, isString, tt.s, tt.present, tt.isString)
		}
	}
	if raw, ok := ev.Raw("num"); !ok || string(raw) != "1" {
		t.Errorf("Raw(num) = %s, %v", raw, ok)
	}
	if _, ok := ev.Raw("missing"); ok {
		t.Error("Raw(missing) present")
	}
}
