package protocol

import (
	stdjson "encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"mako/internal/pyref"
)

// The differential tests: each input goes through Python's json module the
// way SocketShark uses it (testdata/socketshark_json.py) and through mako's
// decoders and encoders; what reaches the wire must be the same value for a
// client reading it with json.loads (docs/json.md).

// pyCase is one input. deviation, when set, names a difference mako keeps
// on purpose (docs/json.md lists them): the test then checks that Python
// does behave differently, so the note stays true.
type pyCase struct {
	in        string
	deviation string
}

var deep = func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

var pyClientCases = []pyCase{
	// Events and their echoes.
	{in: `{"event":"ping"}`}, {in: `{"event":"ping","data":"x"}`}, {in: `{"event":"ping","data":5}`},
	{in: `{"event":"ping","data":"x\ud800y"}`}, {in: `{"event":"ping","data":"\udc00\ud800"}`},
	{in: `{"event":"ping","data":"\ud83d\ude00"}`}, {in: `{"event":"ping","data":"\ud83d\u0041"}`},
	{in: `{"event":"ping","data":"\u0000\/\b\f\n\r\t\"\\\u001f\u007f\u2028"}`},
	{in: `{"event":"ping","data":"` + strings.Repeat(`\ud800`, 130) + `"}`},
	{in: `{"event":"ping","data":"` + strings.Repeat(`é\ud83d\ude00\udfff`, 50) + `"}`},
	{in: `{"event":"ping","data":"` + strings.Repeat("a", 127) + `\ud83d\ude00z"}`},
	{in: `{"event":"ping","data":NaN}`}, {in: `{"event":"ping","data":[Infinity,-Infinity]}`},
	{in: `{"event":"x\ud800y"}`}, {in: `{"event":"\u0070ing","data":"\u0041"}`},
	{in: `{"event":"` + strings.Repeat(`\ud800`, 40) + `"}`}, {in: `{"event":"` + strings.Repeat(`\ud800`, 41) + `"}`},
	{in: `{"event":"` + strings.Repeat(`\ud83d\ude00`, 40) + `"}`}, {in: `{"event":"` + strings.Repeat(`\ud83d\ude00`, 41) + `"}`},
	{in: `{"event":"` + strings.Repeat("é", 40) + `"}`}, {in: `{"event":"` + strings.Repeat("é", 41) + `"}`},
	{in: `{"event":""}`}, {in: `{"event":"\u0000"}`}, {in: `{"event":"a\/b"}`},
	// Subscription names and extra fields echoed in error replies.
	{in: `{"event":"subscribe","subscription":"x\ud800y"}`},
	{in: `{"event":"subscribe","subscription":"nosvc.x\ud800y"}`},
	{in: `{"event":"unsubscribe","subscription":"svc.x\ud800y","extra":"e\udfffe"}`},
	{in: `{"event":"message","subscription":"svc.t","extra":[1.0e5,-0,-0.0,1E400,12345678901234567890,NaN]}`},
	{in: `{"event":"message","subscription":"svc.t","extra":{"a":1,"b":2,"a":3}}`},
	{in: `{"event":"message","subscription":"svc.t","extra":1,"extra":2}`},
	{in: `{"event":"message","subscription":"s\u0076c.t","ext\u0072a":"k"}`},
	{in: `{"event":"unsubscribe","subscription":"svc.","extra":"x"}`},
	{in: `{"event":"unsubscribe","subscription":".t"}`}, {in: `{"event":"unsubscribe","subscription":""}`},
	{in: `{"event":"unsubscribe","subscription":0}`}, {in: `{"event":"unsubscribe","subscription":null}`},
	{in: `{"event":"unsubscribe","subscription":["svc.t"]}`, deviation: "non-string subscription"},
	{in: `{"event":"unsubscribe","subscription":5}`, deviation: "non-string subscription"},
	// Duplicate keys: the last wins.
	{in: `{"event":"auth","event":"ping","data":"a","data":"b"}`},
	{in: `{"event":"ping","event":5}`}, {in: `{"event":5,"event":"ping"}`},
	// Whitespace, tops, syntax.
	{in: " \t\r\n{\"event\" : \"ping\" , \"data\" : \"w\" } \n"},
	{in: "\f{\"event\":\"ping\"}"}, {in: "{\"event\":\"ping\"}\v"}, {in: "{\"event\":\"ping\"}\u00a0"},
	{in: "\ufeff{\"event\":\"ping\"}"}, {in: "{\"event\":\"ping\"}\x00"},
	{in: `[]`}, {in: `"event"`}, {in: `null`}, {in: `5`}, {in: ``}, {in: ` `}, {in: `{}`},
	{in: `{"event":"ping"} {}`}, {in: `{"event":"ping",}`}, {in: `{'event':'ping'}`},
	{in: `{"event":"ping","data":01}`}, {in: `{"event":"ping","data":1.}`}, {in: `{"event":"ping","data":.5}`},
	{in: `{"event":"ping","data":+1}`}, {in: `{"event":"ping","data":1e}`}, {in: `{"event":"ping","data":0x10}`},
	{in: `{"event":"ping","data":-}`}, {in: `{"event":"ping","data":nan}`}, {in: `{"event":"ping","data":-NaN}`},
	{in: `{"event":"ping","data":infinity}`}, {in: `{"event":"ping","data":+Infinity}`}, {in: `{"event":"ping","data":-Infinit}`},
	{in: `{"event":"ping","data":True}`}, {in: `{"event":"ping","data":None}`},
	{in: `{"event":"ping","data":"\x"}`}, {in: `{"event":"ping","data":"\u12"}`}, {in: `{"event":"ping","data":"\U0041"}`},
	{in: "{\"event\":\"ping\",\"data\":\"a\tb\"}"}, {in: "{\"event\":\"ping\",\"data\":\"a\x7fb\"}"},
	{in: `{"event":"ping","data":` + "1" + strings.Repeat("0", 4299) + `}`},
	{in: `{"event":"ping","data":-` + "1" + strings.Repeat("0", 4299) + `}`},
	{in: `{"event":"ping","data":` + "1" + strings.Repeat("0", 4300) + `}`, deviation: "int digits"},
	{in: `{"event":"ping","data":` + "1" + strings.Repeat("0", 4300) + `.0}`},
	{in: `{"event":"ping","data":` + "1" + strings.Repeat("0", 4300) + `e1}`},
	{in: `{"event":"ping","data":` + deep(800) + `}`},
	{in: `{"event":"ping","data":` + deep(899) + `}`},
	{in: `{"event":"ping","data":` + deep(5000) + `}`, deviation: "depth"},
	// Invalid UTF-8 never reaches SocketShark.
	{in: "{\"event\":\"ping\",\"data\":\"\xff\"}", deviation: "utf-8"},
	{in: "{\"event\":\"ping\",\"data\":\"\xed\xa0\x80\"}", deviation: "utf-8"},
}

var pyPublishedCases = []pyCase{
	{in: `{"subscription":"a.b","data":{"x":1}}`},
	{in: `{"subscription":"a.b","data":[1.0e5,1E400,-1E400,-0,-0.0,0.1,1e-400,12345678901234567890,-12345678901234567890]}`},
	{in: `{"subscription":"a.b","data":[NaN,Infinity,-Infinity]}`},
	{in: `{"subscription":"a.b","data":"x\ud800y\udbff\udfff\ud83d"}`},
	{in: `{"subscription":"a.\ud800","data":"\u0000\/"}`},
	{in: `{"subscription":"a.b","data":{"k":1,"k":2,"j":{"z":1,"z":[]}}}`},
	{in: `{"subscription":"a.b","data":1,"data":2,"subscription":"c.d"}`},
	{in: `{"subscr\u0069ption":"a.b","d\u0061ta":"esc"}`},
	{in: `{"subscription":"a.b","data":{"\ud800":1,"\udc00":2}}`},
	{in: `{"subscription":"a.b","data":` + deep(899) + `}`},
	{in: `{"subscription":"a.b","data":` + deep(5000) + `}`},
	{in: `{"subscription":"a.b","data":` + "9" + strings.Repeat("9", 4299) + `}`},
	{in: `{"subscription":"a.b","data":` + "9" + strings.Repeat("9", 4300) + `}`},
	{in: ` {"subscription":"a.b","data":null} `}, {in: "\ufeff{\"subscription\":\"a.b\",\"data\":1}"},
	{in: `{"subscription":"a.b"}`}, {in: `{"data":1}`}, {in: `{"subscription":"","data":1}`},
	{in: `{"subscription":5,"data":1}`}, {in: `[{"subscription":"a.b","data":1}]`}, {in: `"subscription data"`},
	{in: `{"subscription":"a.b","data":NaN,"x":nan}`}, {in: `{"subscription":"a.b","data":1,}`},
	// options.order as float() reads it.
	{in: `{"subscription":"a.b","data":1,"options":{"order":3}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"1_000.5"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":" 2.5\n"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"\u00a02.5\u2003"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"1__0"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"0x10"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"-iNfInItY"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"nan"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":NaN}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":-Infinity}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":1e400}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":1` + strings.Repeat("0", 400) + `}}`, deviation: "order int overflow"},
	{in: `{"subscription":"a.b","data":1,"options":{"order":true}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":null}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":[1]}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"1e5"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"١٢"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":1,"order":2}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"ord\u0065r":7}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"ORDER":7}}`},
	{in: `{"subscription":"a.b","data":1,"options":null}`, deviation: "options not an object"},
	{in: `{"subscription":"a.b","data":1,"options":["order"]}`},
	{in: `{"subscription":"a.b","data":1,"options":5}`, deviation: "options not an object"},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"𝟏٢.०e١"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"1²"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":"١_٢"}}`},
	{in: `{"subscription":"a.b","data":1,"options":{"order":" ١　"}}`},
	{in: `{"subscription":"a.b","data":1,"options":"x"}`},
	{in: `{"subscription":"a.b","data":1,"options":true}`, deviation: "options not an object"},
	{in: `{"subscription":"a.b","data":1,"published_at":"2026-11-25T08:24:12Z"}`},
	{in: `{"subscription":"a.b","data":1,"published_at":"yesterday"}`},
	{in: `{"subscription":"a.b","data":1,"published_at":null}`},
	{in: `{"subscription":"a.b","data":1,"published_at":1700000000}`, deviation: "published_at not a string"},
}

func TestPythonJSONClientEvents(t *testing.T) {
	inputs := make([][]byte, len(pyClientCases))
	for i, c := range pyClientCases {
		inputs[i] = []byte(c.in)
	}
	want := pyref.Run(t, "client", inputs)
	got := make([][]byte, len(inputs))
	for i, b := range inputs {
		got[i] = makoClientWire(b)
	}
	canon := pyref.Run(t, "canon", got)
	for i, c := range pyClientCases {
		w := want[i]
		same := w.Outcome == "reply" && canon[i].Outcome == "reply" && *w.Wire == *canon[i].Wire
		switch {
		case c.deviation == "" && !same:
			t.Errorf("client %.200q:\n python %s %s\n mako   %s (%s)", c.in, w.Outcome, pyref.Str(w.Wire), got[i], pyref.Str(canon[i].Wire))
		case c.deviation != "" && same:
			t.Errorf("client %.200q: listed as a deviation (%s) but mako now matches Python; update docs/json.md", c.in, c.deviation)
		}
	}
}

// makoClientWire is what the server writes for frame b, composed as
// server/events.go composes it for the test's setting (service "svc" with
// extra_fields ["extra"], no subscriptions).
func makoClientWire(b []byte) []byte {
	ev, ok := DecodeClientEvent(b)
	if !ok {
		return AppendReply(nil, &Reply{Status: "error", Error: ErrInvalidEvent})
	}
	switch ev.Event {
	case "ping":
		data, present := ev.Raw("data")
		return AppendPong(nil, data, present)
	case "subscribe", "unsubscribe", "message":
		name, present, isString := ev.String("subscription")
		echo := ""
		if isString {
			echo = name
		}
		if present && !isString {
			return AppendReply(nil, &Reply{Event: ev.Event, Status: "error", Error: ErrInvalidSubscription})
		}
		svc, topic, found := strings.Cut(name, ".")
		var extra []Field
		if svc == "svc" {
			if v, ok := ev.Raw("extra"); ok {
				extra = append(extra, Field{Name: "extra", Value: v})
			}
		}
		var msg string
		switch {
		case !found || svc == "" || topic == "":
			msg = ErrInvalidSubscription
		case svc != "svc":
			msg = ErrInvalidService
		default:
			msg = ErrSubscriptionNotFound
		}
		return AppendReply(nil, &Reply{Event: ev.Event, Status: "error", Error: msg, Subscription: echo, Extra: extra})
	}
	r := &Reply{Event: ev.Event, Status: "error", Error: ErrEventNotFound}
	if ev.Event == "" {
		r.Extra = []Field{{Name: "event", Value: []byte(`""`)}}
	}
	return AppendReply(nil, r)
}

func TestPythonJSONPublished(t *testing.T) {
	inputs := make([][]byte, len(pyPublishedCases))
	for i, c := range pyPublishedCases {
		inputs[i] = []byte(c.in)
	}
	want := pyref.Run(t, "published", inputs)
	got := make([][]byte, len(inputs))
	orders := make([]*float64, len(inputs))
	for i, b := range inputs {
		for _, shared := range []bool{false, true} {
			p, err := decodePublished(b, shared)
			if err != nil {
				got[i] = []byte("dropped: " + err.Error())
				continue
			}
			got[i] = AppendMessage(nil, p.Subscription, p.Data, nil, Timing{SentAt: time.Unix(0, 0)})
			if p.Options.HasOrder {
				orders[i] = &p.Options.Order
			}
		}
	}
	canon := pyref.Run(t, "canon", got)
	for i, c := range pyPublishedCases {
		w := want[i]
		pyDelivers := w.Outcome == "reply"
		makoDelivers := canon[i].Outcome == "reply"
		same := pyDelivers == makoDelivers && (!pyDelivers || (*w.Wire == *canon[i].Wire && sameOrder(w.Order, orders[i])))
		switch {
		case c.deviation == "" && !same:
			t.Errorf("published %.200q:\n python %s %s order %s\n mako   %s (%s) order %v", c.in, w.Outcome, pyref.Str(w.Wire), pyref.Str(w.Order),
				got[i], pyref.Str(canon[i].Wire), fmtOrder(orders[i]))
		case c.deviation != "" && same:
			t.Errorf("published %.200q: listed as a deviation (%s) but mako now matches Python; update docs/json.md", c.in, c.deviation)
		}
	}
}

func sameOrder(py *string, mako *float64) bool {
	if py == nil || mako == nil {
		return py == nil && mako == nil
	}
	f, err := strconv.ParseFloat(*py, 64)
	if err != nil {
		return false
	}
	if math.IsNaN(f) {
		return math.IsNaN(*mako)
	}
	return math.Float64bits(f) == math.Float64bits(*mako)
}

func fmtOrder(f *float64) string {
	if f == nil {
		return "<none>"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

func utf16le(s string) string {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

func utf16be(s string) string {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return string(b)
}

func utf32(s string, bigEndian bool) string {
	var b []byte
	for _, r := range s {
		if bigEndian {
			b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
		} else {
			b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
		}
	}
	return string(b)
}

var pyBinaryCases = []pyCase{
	{in: `{"event":"ping","data":"bin"}`}, {in: "\xef\xbb\xbf{\"event\":\"ping\",\"data\":\"bom\"}"},
	{in: "\xef\xbb\xbf\xef\xbb\xbf{\"event\":\"ping\"}"},
	{in: "{\"event\":\"ping\",\"data\":\"\xed\xa0\x80x\xed\xb8\x80\"}"},
	{in: "{\"event\":\"ping\",\"data\":\"\xed\xa0\xbd\xed\xb8\x80\"}"},
	{in: "{\"event\":\"ping\",\"data\":\"\xed\xa0\x80\\udc00\"}"},
	{in: "{\"event\":\"ping\",\"data\":\"\xed\xa0\"}", deviation: "undecodable bytes"},
	{in: "{\"event\":\"ping\",\"data\":\"\xff\"}", deviation: "undecodable bytes"},
	{in: "{\"event\":\"ping\"}\xed\xa0\x80"},
	{in: utf16le(`{"event":"ping","data":"é😀"}`)}, {in: utf16be(`{"event":"ping","data":"le"}`)},
	{in: "\xff\xfe" + utf16le(`{"event":"ping","data":"bom le"}`)}, {in: "\xfe\xff" + utf16be(`{"event":"ping","data":"bom be"}`)},
	{in: utf16le(`{"event":"ping","data":"`) + "\x00\xd8" + utf16le(`x"}`)},
	{in: utf16le(`{"event":"ping","data":"`) + "\x3d\xd8\x00\xde" + utf16le(`"}`)},
	{in: utf16le(`{"event":"x`) + "\x00\xdc" + utf16le(`"}`)},
	{in: utf16le(`{"event":"ping"}`) + "\x00", deviation: "undecodable bytes"},
	{in: utf32(`{"event":"ping","data":"32le"}`, false)}, {in: utf32(`{"event":"ping","data":"32be😀"}`, true)},
	{in: "\xff\xfe\x00\x00" + utf32(`{"event":"ping","data":"bom32"}`, false)},
	{in: "\x00\x00\xfe\xff" + utf32(`{"event":"ping","data":"bom32be"}`, true)},
	{in: utf32(`{"event":"ping","data":"`, false) + "\x00\x00\x11\x00" + utf32(`"}`, false), deviation: "undecodable bytes"},
	{in: utf32(`{"event":"ping","data":"`, false) + "\x00\xd8\x00\x00" + utf32(`"}`, false)},
	{in: "{\x00"}, {in: "\x00{"}, {in: "{}"}, {in: "5"}, {in: "\x00\x00\x00"}, {in: ""},
}

func TestPythonJSONBinaryFrames(t *testing.T) {
	inputs := make([][]byte, len(pyBinaryCases))
	for i, c := range pyBinaryCases {
		inputs[i] = []byte(c.in)
	}
	want := pyref.Run(t, "client_binary", inputs)
	got := make([][]byte, len(inputs))
	for i, b := range inputs {
		ev, ok := DecodeClientEventBinary(b)
		switch {
		case !ok:
			got[i] = AppendReply(nil, &Reply{Status: "error", Error: ErrInvalidEvent})
		case ev.Event == "ping":
			data, present := ev.Raw("data")
			got[i] = AppendPong(nil, data, present)
		default:
			got[i] = AppendReply(nil, &Reply{Event: ev.Event, Status: "error", Error: ErrEventNotFound})
		}
	}
	canon := pyref.Run(t, "canon", got)
	for i, c := range pyBinaryCases {
		w := want[i]
		same := w.Outcome == "reply" && canon[i].Outcome == "reply" && *w.Wire == *canon[i].Wire
		switch {
		case c.deviation == "" && !same:
			t.Errorf("binary %q:\n python %s %s\n mako   %s (%s)", c.in, w.Outcome, pyref.Str(w.Wire), got[i], pyref.Str(canon[i].Wire))
		case c.deviation != "" && same:
			t.Errorf("binary %q: listed as a deviation (%s) but mako now matches Python; update docs/json.md", c.in, c.deviation)
		}
	}
}

// TestPythonJSONPublishedGenerated runs the reference fuzzer's generated
// documents (genJSON: escaped and duplicated keys, Python-float strings,
// odd numbers, whitespace, syntax errors) through Python and mako. Where
// SocketShark raises (outcome "crash": the message is dropped by an
// exception), mako's forgiving reading is a documented difference.
func TestPythonJSONPublishedGenerated(t *testing.T) {
	g := &genJSON{r: rand.New(rand.NewPCG(7, 0x707974686f6e))}
	inputs := make([][]byte, 3000)
	for i := range inputs {
		inputs[i] = g.doc()
	}
	want := pyref.Run(t, "published", inputs)
	got := make([][]byte, len(inputs))
	orders := make([]*float64, len(inputs))
	for i, b := range inputs {
		p, err := DecodePublished(b)
		if err != nil {
			got[i] = []byte("dropped: " + err.Error())
			continue
		}
		got[i] = AppendMessage(nil, p.Subscription, p.Data, nil, Timing{SentAt: time.Unix(0, 0)})
		if p.Options.HasOrder {
			orders[i] = &p.Options.Order
		}
	}
	canon := pyref.Run(t, "canon", got)
	compared := 0
	for i, w := range want {
		if w.Outcome == "crash" {
			continue
		}
		compared++
		pyDelivers, makoDelivers := w.Outcome == "reply", canon[i].Outcome == "reply"
		if pyDelivers != makoDelivers || (pyDelivers && (*w.Wire != *canon[i].Wire || !sameOrder(w.Order, orders[i]))) {
			t.Errorf("published %.300q:\n python %s %s order %s\n mako   %.300s order %v", inputs[i], w.Outcome, pyref.Str(w.Wire), pyref.Str(w.Order),
				got[i], fmtOrder(orders[i]))
		}
	}
	if compared < len(inputs)/2 {
		t.Fatalf("only %d of %d documents compared", compared, len(inputs))
	}
}

// TestPythonJSONEquality checks JSONEqual (filter_fields) against Python's
// == and canonicalKey (order_key, throttle_key) against Python's dict keys,
// on every pair of a set of values.
func TestPythonJSONEquality(t *testing.T) {
	values := []string{`1`, `1.0`, `true`, `1e0`, `0`, `-0`, `-0.0`, `false`, `null`, `2`,
		`NaN`, `Infinity`, `1e400`, `-Infinity`, `-1E400`, `1e-400`,
		`12345678901234567890`, `12345678901234567890.0`, `12345678901234567168`, `9007199254740993`, `9007199254740992.0`,
		`"a"`, `"\u0061"`, `"\ud800"`, `"\udc00"`, `"\ud800\udc00"`, `"𐀀"`, `"1"`, `""`,
		`[1,"a"]`, `[1.0,"\u0061"]`, `[true]`, `{"a":1,"b":[2]}`, `{"b":[2.0],"a":true}`, `{"a":1,"a":2}`, `{"a":2}`, `[NaN]`, `[]`, `{}`}
	var inputs [][]byte
	for _, a := range values {
		for _, b := range values {
			inputs = append(inputs, []byte(a+"\x00"+b))
		}
	}
	want := pyref.Run(t, "equal", inputs)
	for i, in := range inputs {
		a, b, _ := strings.Cut(string(in), "\x00")
		w := want[i]
		if w.Outcome != "reply" {
			t.Fatalf("python: %s %s: %s", a, b, w.Outcome)
		}
		var py struct {
			Eq      bool  `json:"eq"`
			SameKey *bool `json:"same_key"`
		}
		if err := stdjsonUnmarshal(*w.Wire, &py); err != nil {
			t.Fatal(err)
		}
		if got := JSONEqual([]byte(a), []byte(b)); got != py.Eq {
			t.Errorf("JSONEqual(%s, %s) = %v, Python == says %v", a, b, got, py.Eq)
		}
		// (json.loads returns one shared object for every NaN literal, so
		// NaN is one dict key in Python too.)
		if py.SameKey == nil {
			continue
		}
		if got := canonicalKey([]byte(a)) == canonicalKey([]byte(b)); got != *py.SameKey {
			t.Errorf("canonicalKey(%s) == canonicalKey(%s) is %v, Python's dict says %v", a, b, got, *py.SameKey)
		}
	}
}

func stdjsonUnmarshal(s string, v any) error { return stdjson.Unmarshal([]byte(s), v) }
