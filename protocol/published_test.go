package protocol

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestDecodePublished(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		errPart string // "" = success
		sub     string
		data    string
	}{
		{"ok", `{"subscription":"books.b1","data":{"t":"New"},"user_id":"u1"}`, "", "books.b1", `{"t":"New"}`},
		{"data null ok", `{"subscription":"a.b","data":null}`, "", "a.b", `null`},
		{"not JSON", `{"subscription":`, "not JSON", "", ""},
		{"not UTF-8", "{\"subscription\":\"a.b\",\"data\":\"\xff\"}", "UTF-8", "", ""},
		{"array", `[1]`, "not a JSON object", "", ""},
		{"null", `null`, "not a JSON object", "", ""},
		{"string", `"x"`, "not a JSON object", "", ""},
		{"missing subscription", `{"data":1}`, "missing subscription", "", ""},
		{"subscription not string", `{"subscription":5,"data":1}`, "not a string", "", ""},
		{"subscription null", `{"subscription":null,"data":1}`, "not a string", "", ""},
		{"subscription empty", `{"subscription":"","data":1}`, "empty subscription", "", ""},
		{"missing data", `{"subscription":"a.b"}`, "missing data", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DecodePublished([]byte(tt.in))
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("err = %v, want one naming %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Subscription != tt.sub || string(p.Data) != tt.data {
				t.Fatalf("got (%q, %s), want (%q, %s)", p.Subscription, p.Data, tt.sub, tt.data)
			}
			if _, ok := p.Fields["subscription"]; !ok {
				t.Fatal("Fields lacks subscription")
			}
		})
	}
}

func TestDecodePublishedDoesNotAliasInput(t *testing.T) {
	buf := []byte(`{"subscription":"a.b","data":{"x":1},"user_id":"u"}`)
	p, err := DecodePublished(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'Z'
	}
	if string(p.Data) != `{"x":1}` || string(p.Fields["user_id"]) != `"u"` || p.Subscription != "a.b" {
		t.Fatalf("decoded values alias the input: %s %s %q", p.Data, p.Fields["user_id"], p.Subscription)
	}
}

func TestDecodePublishedOptions(t *testing.T) {
	tests := []struct {
		name    string
		options string // raw value of "options"; "" = absent
		want    Options
	}{
		{"absent", "", Options{}},
		{"null", `null`, Options{}},
		{"not an object", `[1]`, Options{}},
		{"string", `"order"`, Options{}},
		{"empty", `{}`, Options{}},
		{"order int", `{"order":3}`, Options{Order: 3, HasOrder: true}},
		{"order float", `{"order":2.5}`, Options{Order: 2.5, HasOrder: true}},
		{"order negative", `{"order":-1e2}`, Options{Order: -100, HasOrder: true}},
		{"order string int", `{"order":"3"}`, Options{Order: 3, HasOrder: true}},
		{"order string exp", `{"order":"1e1"}`, Options{Order: 10, HasOrder: true}},
		{"order string spaces", `{"order":" 2.5 "}`, Options{Order: 2.5, HasOrder: true}},
		{"order string underscores", `{"order":"1_000"}`, Options{Order: 1000, HasOrder: true}},
		{"order true", `{"order":true}`, Options{Order: 1, HasOrder: true}},
		{"order false", `{"order":false}`, Options{Order: 0, HasOrder: true}},
		{"order abc ignored", `{"order":"abc"}`, Options{}},
		{"order hex ignored", `{"order":"0x10"}`, Options{}},
		{"order empty string ignored", `{"order":""}`, Options{}},
		{"order nan kept", `{"order":"nan"}`, Options{Order: math.NaN(), HasOrder: true}},
		{"order NaN literal kept", `{"order":NaN}`, Options{Order: math.NaN(), HasOrder: true}},
		{"order Infinity literal", `{"order":-Infinity,"order_key":Infinity}`, Options{Order: math.Inf(-1), HasOrder: true, OrderKey: "+Inf"}},
		{"order null ignored", `{"order":null}`, Options{}},
		{"order object ignored", `{"order":{"a":1}}`, Options{}},
		{"order array ignored", `{"order":[1]}`, Options{}},
		{"order huge int ignored", `{"order":1` + strings.Repeat("0", 400) + `}`, Options{}},
		{"order huge float is inf", `{"order":1e400}`, Options{Order: math.Inf(1), HasOrder: true}},
		{"order case-sensitive key", `{"ORDER":1}`, Options{}},
		{"order_key string", `{"order":1,"order_key":"k"}`, Options{Order: 1, HasOrder: true, OrderKey: `"k"`}},
		{"order_key null is default", `{"order":1,"order_key":null}`, Options{Order: 1, HasOrder: true}},
		{"order_key number", `{"order":1,"order_key":1.0}`, Options{Order: 1, HasOrder: true, OrderKey: `1`}},
		{"order_key without order", `{"order_key":"k"}`, Options{}},
		{"throttle", `{"throttle":0.1,"throttle_key":"t"}`, Options{Throttle: 0.1, HasThrottle: true, ThrottleKey: `"t"`}},
		{"throttle string", `{"throttle":"2"}`, Options{Throttle: 2, HasThrottle: true}},
		{"throttle zero ignored", `{"throttle":0}`, Options{}},
		{"throttle negative ignored", `{"throttle":-1}`, Options{}},
		{"throttle inf ignored", `{"throttle":"inf"}`, Options{}},
		{"throttle junk ignored", `{"throttle":"soon"}`, Options{}},
		{"both", `{"order":3,"order_key":"k","throttle":0.1,"throttle_key":"t"}`,
			Options{Order: 3, HasOrder: true, OrderKey: `"k"`, Throttle: 0.1, HasThrottle: true, ThrottleKey: `"t"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"subscription":"a.b","data":1`
			if tt.options != "" {
				in += `,"options":` + tt.options
			}
			in += "}"
			p, err := DecodePublished([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if d := sameOptions(p.Options, tt.want); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestDecodePublishedAt(t *testing.T) {
	base := time.Date(2026, 11, 25, 8, 24, 12, 0, time.UTC)
	tests := []struct {
		name string
		raw  string // raw value of "published_at"; "" = absent
		want time.Time
	}{
		{"absent", "", time.Time{}},
		{"null", `null`, time.Time{}},
		{"number", `1700000000`, time.Time{}},
		{"garbage", `"yesterday"`, time.Time{}},
		{"Z", `"2026-11-25T08:24:12Z"`, base},
		{"+00:00", `"2026-11-25T08:24:12+00:00"`, base},
		{"fraction", `"2026-11-25T08:24:12.123456+00:00"`, base.Add(123456 * time.Microsecond)},
		{"no offset is UTC", `"2026-11-25T08:24:12.5"`, base.Add(500 * time.Millisecond)},
		{"space separator", `"2026-11-25 08:24:12"`, base},
		{"other offset", `"2026-11-25T10:24:12+02:00"`, base},
		{"negative offset", `"2026-11-24T23:24:12-09:00"`, base},
		{"invalid date", `"2026-02-30T08:24:12Z"`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"subscription":"a.b","data":1`
			if tt.raw != "" {
				in += `,"published_at":` + tt.raw
			}
			in += "}"
			p, err := DecodePublished([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if !p.PublishedAt.Equal(tt.want) || (!p.PublishedAt.IsZero() && p.PublishedAt.Location() != time.UTC) {
				t.Fatalf("PublishedAt = %v, want %v", p.PublishedAt, tt.want)
			}
		})
	}
}

func TestParsePyFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"3", 3, true},
		{"-3", -3, true},
		{"+3", 3, true},
		{"1e1", 10, true},
		{"1E+1", 10, true},
		{"2.5e-1", 0.25, true},
		{".5", 0.5, true},
		{"5.", 5, true},
		{" \t2.5\n ", 2.5, true},
		{"\x1c7\x1f", 7, true},
		{"\u00a03", 3, true},
		{"1_000.000_1", 1000.0001, true},
		{"1e1_0", 1e10, true},
		{"inf", math.Inf(1), true},
		{"-Infinity", math.Inf(-1), true},
		{"1e999", math.Inf(1), true},
		{"", 0, false},
		{" ", 0, false},
		{".", 0, false},
		{"e5", 0, false},
		{"1e", 0, false},
		{"1e+", 0, false},
		{"_1", 0, false},
		{"1_", 0, false},
		{"1__0", 0, false},
		{"1_.5", 0, false},
		{"1._5", 0, false},
		{"0x10", 0, false},
		{"0x1p-2", 0, false},
		{"1.5.5", 0, false},
		{"++1", 0, false},
		{"abc", 0, false},
		{"infinit", 0, false},
		{"1 2", 0, false},
	}
	for _, tt := range tests {
		got, ok := parsePyFloat(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parsePyFloat(%q) = (%v, %v), want (%v, %v)", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if f, ok := parsePyFloat("NaN"); !ok || !math.IsNaN(f) {
		t.Errorf("parsePyFloat(NaN) = (%v, %v)", f, ok)
	}
}

func TestCanonicalKey(t *testing.T) {
	same := [][]string{
		{``, `null`, ` null `},
		{`1`, `1.0`, `true`, `1e0`, `10e-1`},
		{`0`, `-0`, `0.0`, `-0.0`, `false`},
		{`"k"`, `"\u006b"`},
		{`1.5`, `15e-1`},
		{`9007199254740992`, `9007199254740992.0`, `9.007199254740992e15`},
		{`{"a":1}`, `{ "a" : 1 }`},
	}
	for _, group := range same {
		want := canonicalKey([]byte(group[0]))
		for _, k := range group[1:] {
			if got := canonicalKey([]byte(k)); got != want {
				t.Errorf("canonicalKey(%s) = %q, want %q (as %s)", k, got, want, group[0])
			}
		}
	}
	distinct := []string{`null`, `1`, `"1"`, `1.5`, `"k"`, `"K"`, `""`, `2`, `[1]`, `12345678901234567890`,
		`12345678901234567890.0`} // the float rounds to ...168, a different Python int
	seen := map[string]string{}
	for _, k := range distinct {
		c := canonicalKey([]byte(k))
		if prev, dup := seen[c]; dup {
			t.Errorf("canonicalKey(%s) == canonicalKey(%s) = %q", k, prev, c)
		}
		seen[c] = k
	}
}
