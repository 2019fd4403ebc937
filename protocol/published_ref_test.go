package protocol

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// refDecodePublished is DecodePublished as it was before the single-pass
// fast path: a map decode (decodeJSONObject, which the Python differential
// test in pyjson_test.go checks against json.loads) followed by map
// lookups. It is frozen here as the reference the differential tests and
// fuzz targets compare the fast path against; do not "fix" it without a
// matching, deliberate behaviour change.
func refDecodePublished(b []byte) (*Published, error) {
	if !utf8.Valid(b) {
		return nil, errPubNotUTF8
	}
	m, kind := decodeJSONObject(b)
	switch kind {
	case docInvalid:
		return nil, errPubNotJSON
	case docNotObject:
		return nil, errPubNotObject
	}
	p := &Published{Fields: m}
	raw, ok := m["subscription"]
	if !ok {
		return nil, errPubNoSubscription
	}
	if p.Subscription, ok = unquote(raw); !ok {
		return nil, errPubBadSubscription
	}
	if p.Subscription == "" {
		return nil, errPubEmptySubscription
	}
	if p.Data, ok = m["data"]; !ok {
		return nil, errPubNoData
	}
	if raw, ok := m["options"]; ok {
		p.Options = refParseOptions(raw)
	}
	if raw, ok := m["published_at"]; ok {
		if s, ok := unquote(raw); ok {
			p.PublishedAt, _ = ParseISOTime(s)
		}
	}
	return p, nil
}

// refParseOptions is ParseOptions before the scanner (see refDecodePublished).
func refParseOptions(raw json.RawMessage) Options {
	var o Options
	if len(raw) == 0 || raw[0] != '{' {
		return o
	}
	if !utf8.Valid(raw) {
		return o
	}
	m, kind := decodeJSONObject(raw)
	if kind != docObject {
		return o
	}
	if v, ok := m["order"]; ok {
		if f, ok := jsonToFloat(v); ok {
			o.Order, o.HasOrder = f, true
			o.OrderKey = canonicalKey(m["order_key"])
		}
	}
	if v, ok := m["throttle"]; ok {
		if f, ok := jsonToFloat(v); ok && f > 0 && !math.IsInf(f, 1) {
			o.Throttle, o.HasThrottle = f, true
			o.ThrottleKey = canonicalKey(m["throttle_key"])
		}
	}
	return o
}

// samePublished reports how DecodePublished's result (got, gerr) differs
// from the reference's (want, werr); "" when it does not.
func samePublished(got *Published, gerr error, want *Published, werr error) string {
	if (gerr == nil) != (werr == nil) {
		return fmt.Sprintf("error %v, reference %v", gerr, werr)
	}
	if gerr != nil {
		if gerr.Error() != werr.Error() {
			return fmt.Sprintf("error %q, reference %q", gerr, werr)
		}
		if got != nil {
			return "result with an error"
		}
		return ""
	}
	if got.Subscription != want.Subscription {
		return fmt.Sprintf("subscription %q, reference %q", got.Subscription, want.Subscription)
	}
	if !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
		return fmt.Sprintf("data %q, reference %q", got.Data, want.Data)
	}
	if d := sameOptions(got.Options, want.Options); d != "" {
		return d
	}
	if got.PublishedAt != want.PublishedAt {
		return fmt.Sprintf("published_at %v, reference %v", got.PublishedAt, want.PublishedAt)
	}
	if (got.Fields == nil) != (want.Fields == nil) || len(got.Fields) != len(want.Fields) {
		return fmt.Sprintf("fields %q, reference %q", got.Fields, want.Fields)
	}
	for k, w := range want.Fields {
		g, ok := got.Fields[k]
		if !ok || !bytes.Equal(g, w) || (g == nil) != (w == nil) {
			return fmt.Sprintf("field %q = %q (present %v), reference %q", k, g, ok, w)
		}
	}
	return ""
}

func sameOptions(got, want Options) string {
	if got.HasOrder != want.HasOrder || math.Float64bits(got.Order) != math.Float64bits(want.Order) ||
		got.OrderKey != want.OrderKey || got.HasThrottle != want.HasThrottle ||
		math.Float64bits(got.Throttle) != math.Float64bits(want.Throttle) || got.ThrottleKey != want.ThrottleKey {
		return fmt.Sprintf("options %+v, reference %+v", got, want)
	}
	return ""
}

// checkAgainstReference decodes in with both decoders. DecodePublished gets
// a copy that is scribbled over afterwards, so any aliasing of the input
// shows up as a difference.
func checkAgainstReference(t *testing.T, in []byte) {
	t.Helper()
	want, werr := refDecodePublished(in)
	buf := bytes.Clone(in)
	got, gerr := DecodePublished(buf)
	for i := range buf {
		buf[i] = '#'
	}
	if d := samePublished(got, gerr, want, werr); d != "" {
		t.Fatalf("DecodePublished(%q): %s", in, d)
	}
	got, gerr = DecodePublishedShared(bytes.Clone(in))
	if d := samePublished(got, gerr, want, werr); d != "" {
		t.Fatalf("DecodePublishedShared(%q): %s", in, d)
	}
	if d := sameOptions(ParseOptions(in), refParseOptions(in)); d != "" {
		t.Fatalf("ParseOptions(%q): %s", in, d)
	}
}

// genJSON produces JSON-ish text aimed at the decoders' corners: the
// interesting keys (also escaped, case-changed and duplicated), options
// objects, Python-float strings, odd numbers, escapes, whitespace, nesting,
// and, now and then, a syntax error.
type genJSON struct {
	r   *rand.Rand
	buf []byte
}

var (
	genTopKeys = []string{`subscription`, `data`, `options`, `published_at`, `user_id`, `org_id`, ``,
		`Subscription`, `été`}
	genOptKeys = []string{`order`, `order_key`, `throttle`, `throttle_key`, `order`, `throttle`, `ORDER`, `x`}
	// Escaped keys, which the scanner leaves to goccy.
	genEscKeys = []string{`subscr\u0069ption`, `d\u0061ta`, `\u00e9t\u00e9`, `opt\/ions`, `ord\u0065r`,
		`throttle\u005fkey`}
	genScalars = []string{`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `3`, `0.1`, `2.5`, `1e2`, `1E+2`,
		`-1e-2`, `1e400`, `-1e400`, `1.0`, `12345678901234567890`, `9007199254740993`, `"3"`, `" 2.5 "`, `"1_000"`, `"nan"`, `"-inf"`, `"Infinity"`, `"0x10"`, `""`,
		`"k"`, `"K"`, `"\u006b"`, `"a\"b"`, `"\ud800"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\/"`, `"é"`,
		`"books.b1"`, `"a.b"`, `"2026-11-25T08:24:12Z"`, `"2026-11-25T08:24:12.123456+00:00"`,
		`"2026-11-25 08:24:12"`, `"2026-02-30T08:24:12Z"`, `"20261125T0824"`, `"\u0032026-11-25T08:24:12Z"`,
		`"yesterday"`, `1700000000`, `NaN`, `Infinity`, `-Infinity`, `"x\ud800y"`}
	genSubs  = []string{`"a.b"`, `"books.b1"`, `"\u0061.b"`, `"é.\ud800"`, `""`, `"\""`}
	genDates = []string{`"2026-11-25T08:24:12Z"`, `"2026-11-25T08:24:12.123456+00:00"`, `"2026-11-25 08:24:12"`,
		`"20261125T082412,5-09:30"`, `"2026-11-25T08:24:12.` + strings.Repeat("9", 40) + `+02:00"`,
		`"0001-01-01T00:00:00+00:01"`, `"2026-11-25\u005408:24:12Z"`, `"2026-11-25é08:24"`}
	// Invalid values, rarely used.
	genBadScalars = []string{`01`, `1.`, `.5`, `-`, `+1`, `1e`, `tru`, `nul`, `"\x"`, `"\u12"`, "\"\t\"", `nan`, `-NaN`, `+Infinity`, `infinity`, `1` + strings.Repeat("0", 4300)}
	genPunct      = "{}[],:\"\\ 0e.-"
	genSpace      = []string{``, ``, ``, ` `, "\n", "\t", "\r\n ", "\f", "\v", "\x00", "\u00a0"}
)

func (g *genJSON) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *genJSON) key(keys []string) string {
	if g.r.IntN(100) == 0 {
		return g.pick(genEscKeys)
	}
	return g.pick(keys)
}

func (g *genJSON) scalar() string {
	if g.r.IntN(200) == 0 {
		return g.pick(genBadScalars)
	}
	return g.pick(genScalars)
}

func (g *genJSON) ws() {
	if g.r.IntN(6) == 0 {
		g.buf = append(g.buf, g.pick(genSpace[:6])...)
		if g.r.IntN(40) == 0 {
			g.buf = append(g.buf, g.pick(genSpace)...)
		}
	}
}

func (g *genJSON) value(depth int) {
	g.ws()
	switch n := g.r.IntN(10); {
	case n < 6 || depth > 3:
		g.buf = append(g.buf, g.scalar()...)
	case n < 8:
		g.object(genTopKeys, depth+1)
	case n < 9:
		g.object(genOptKeys, depth+1)
	default:
		g.buf = append(g.buf, '[')
		for i := range g.r.IntN(4) {
			if i > 0 {
				g.buf = append(g.buf, ',')
			}
			g.value(depth + 1)
		}
		g.ws()
		g.buf = append(g.buf, ']')
	}
	g.ws()
}

func (g *genJSON) object(keys []string, depth int) {
	g.buf = append(g.buf, '{')
	for i := range g.r.IntN(7) {
		if i > 0 {
			g.buf = append(g.buf, ',')
		}
		g.ws()
		g.buf = append(g.buf, '"')
		g.buf = append(g.buf, g.key(keys)...)
		g.buf = append(g.buf, '"')
		g.ws()
		g.buf = append(g.buf, ':')
		if keys[0] == "subscription" && g.r.IntN(3) == 0 {
			g.ws()
			g.object(genOptKeys, depth+1)
			g.ws()
		} else {
			g.value(depth)
		}
	}
	g.ws()
	g.buf = append(g.buf, '}')
}

// doc returns a top-level document, usually a plausible published message,
// sometimes mutated into something broken.
func (g *genJSON) doc() []byte {
	g.buf = g.buf[:0]
	g.ws()
	if g.r.IntN(20) == 0 {
		g.value(0)
	} else {
		g.buf = append(g.buf, `{"subscription":`...)
		if g.r.IntN(4) != 0 {
			g.buf = append(g.buf, g.pick(genSubs)...)
		} else {
			g.value(0)
		}
		if g.r.IntN(10) != 0 {
			g.buf = append(g.buf, `,"data":`...)
			g.value(0)
		}
		if g.r.IntN(2) == 0 {
			g.buf = append(g.buf, `,"options":`...)
			g.object(genOptKeys, 1)
		}
		if g.r.IntN(3) == 0 {
			g.buf = append(g.buf, `,"published_at":`...)
			if g.r.IntN(2) == 0 {
				g.buf = append(g.buf, g.pick(genDates)...)
			} else {
				g.value(3)
			}
		}
		for range g.r.IntN(4) {
			g.buf = append(g.buf, `,"`...)
			g.buf = append(g.buf, g.key(genTopKeys)...)
			g.buf = append(g.buf, `":`...)
			if g.r.IntN(2) == 0 {
				g.object(genOptKeys, 1)
			} else {
				g.value(0)
			}
		}
		g.buf = append(g.buf, '}')
	}
	g.ws()
	if g.r.IntN(8) == 0 && len(g.buf) > 0 { // mutate
		i := g.r.IntN(len(g.buf))
		switch g.r.IntN(4) {
		case 0:
			g.buf = g.buf[:i]
		case 1:
			g.buf = append(g.buf[:i], g.buf[i+1:]...)
		case 2:
			g.buf[i] = byte(g.r.IntN(256))
		default:
			g.buf = append(g.buf[:i], append([]byte{genPunct[g.r.IntN(len(genPunct))]}, g.buf[i:]...)...)
		}
	}
	return bytes.Clone(g.buf)
}

func TestDecodePublishedMatchesReference(t *testing.T) {
	fixed := []string{
		`{"subscription":"a","subscription":"b","data":1,"data":2}`,
		`{"subscription":"a","data":1,"options":{"order":1,"order":"x","order_key":"a","order_key":2}}`,
		`{"subscription":"a","data":1,"options":{"order":1},"options":null}`,
		`{"subscr\u0069ption":"a","data":1}`,
		`{"subscription":"a","data":1,"options":{"ord\u0065r":2,"order_key":"\u006b"}}`,
		`{"subscription":"\u0061","data":1,"published_at":"\u0032026-11-25T08:24:12Z"}`,
		`{"subscription":"a","data":1}` + "\x00",
		`{"subscription":"a","data":1} {}`,
		`{"subscription":"a","data":01}`,
		` {"subscription" : "a" , "data" : [ 1 , { "x" : null } ] } `,
		`{"subscription":"a","data":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
		`{"subscription":"a","data":` + strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001) + `}`,
		`{"subscription":"a","data":1,"options":{"order":1,"order_key":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}}`,
		`{"subscription":"a","data":1,"options":{"order":1,"order_key":{"b":1, "a":[1.0, true]}}}`,
		`{"subscription":"a","data":1,"options":{"order":"` + strings.Repeat("1", 40) + `","throttle_key":"` + strings.Repeat("k", 40) + `","throttle":"` + strings.Repeat("0", 40) + `1"}}`,
		`{"subscription":"a","data":1,"published_at":"2026-11-25T08:24:12.123456789012345678901234567890+00:00"}`,
		`{"subscription":"a","data":1,"options":{"order":1}  }`,
		`[{"subscription":"a","data":1}]`, `null`, ``, ` `, `{}`, `{"subscription":""}`,
	}
	for _, s := range fixed {
		checkAgainstReference(t, []byte(s))
	}
	for seed := range uint64(8) {
		g := &genJSON{r: rand.New(rand.NewPCG(seed, 0x6d616b6f))}
		for range 5000 {
			checkAgainstReference(t, g.doc())
		}
	}
}

// FuzzDecodePublishedDiff compares DecodePublished and ParseOptions with the
// reference (goccy map) decoders on arbitrary input.
func FuzzDecodePublishedDiff(f *testing.F) {
	f.Add(benchPublished)
	g := &genJSON{r: rand.New(rand.NewPCG(1, 2))}
	for range 300 {
		f.Add(g.doc())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstReference(t, b)
	})
}
