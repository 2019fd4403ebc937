package protocol

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// JSONEqual reports whether two raw JSON values decode to values Python
// considers equal: numbers compare by value across int and float (1 ==
// 1.0, exactly, as Python compares int with float), true == 1 and
// false == 0 (bool is an int in Python), strings compare after unescaping,
// objects ignore key order. Invalid JSON equals nothing.
func JSONEqual(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	// Fast paths for the usual filter_fields values: identical scalars and
	// plain strings need no decoding.
	if bytes.Equal(a, b) && a[0] != '{' && a[0] != '[' && a[0] != '"' && a[0] != 'N' {
		end, ok := scanValue(a, 0, 0)
		return ok && end == len(a)
	}
	if a[0] == '"' || b[0] == '"' {
		if isPlainString(a) && isPlainString(b) {
			return bytes.Equal(a, b)
		}
		sa, oka := unquote(a)
		sb, okb := unquote(b)
		return oka && okb && sa == sb
	}
	va, ok := decodeAny(a)
	if !ok {
		return false
	}
	vb, ok := decodeAny(b)
	if !ok {
		return false
	}
	return pyEqual(va, vb, false)
}

// decodeAny decodes raw as json.loads would, into nil, bool, string,
// json.Number (the literal, so integers keep full precision as Python's
// arbitrary-size ints do), []any and map[string]any (last duplicate wins).
func decodeAny(raw []byte) (any, bool) {
	if !utf8.Valid(raw) {
		return nil, false
	}
	start := skipWS(raw, 0)
	end, ok := scanValue(raw, start, 0)
	if !ok || skipWS(raw, end) != len(raw) {
		return nil, false
	}
	v, _ := buildValue(raw, start)
	return v, true
}

// buildValue builds the value at b[i], which scanValue has accepted, and
// returns it with the index just past it.
func buildValue(b []byte, i int) (any, int) {
	switch c := b[i]; c {
	case '{':
		m := map[string]any{}
		i = skipWS(b, i+1)
		if b[i] == '}' {
			return m, i + 1
		}
		for {
			end, _, _ := scanString(b, i)
			k, _ := unquote(b[i:end])
			var v any
			v, i = buildValue(b, skipWS(b, skipWS(b, end)+1))
			m[k] = v
			i = skipWS(b, i)
			if b[i] == '}' {
				return m, i + 1
			}
			i = skipWS(b, i+1)
		}
	case '[':
		a := []any{}
		i = skipWS(b, i+1)
		if b[i] == ']' {
			return a, i + 1
		}
		for {
			var v any
			v, i = buildValue(b, i)
			a = append(a, v)
			i = skipWS(b, i)
			if b[i] == ']' {
				return a, i + 1
			}
			i = skipWS(b, i+1)
		}
	case '"':
		end, _, _ := scanString(b, i)
		s, _ := unquote(b[i:end])
		return s, end
	case 't':
		return true, i + 4
	case 'f':
		return false, i + 5
	case 'n':
		return nil, i + 4
	}
	end, _ := scanValue(b, i, 0)
	return json.Number(b[i:end]), end
}

// pyEqual is Python's == on loaded values. nested is true inside a list or
// dict, where Python compares elements identity first: json.loads returns
// one shared float object for every NaN literal, so [NaN] == [NaN] although
// NaN != NaN.
func pyEqual(x, y any, nested bool) bool {
	switch xv := x.(type) {
	case nil:
		return y == nil
	case string:
		yv, ok := y.(string)
		return ok && xv == yv
	case bool, json.Number:
		return numEqual(x, y, nested)
	case []any:
		yv, ok := y.([]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for i := range xv {
			if !pyEqual(xv[i], yv[i], true) {
				return false
			}
		}
		return true
	case map[string]any:
		yv, ok := y.(map[string]any)
		if !ok || len(xv) != len(yv) {
			return false
		}
		for k, v := range xv {
			w, ok := yv[k]
			if !ok || !pyEqual(v, w, true) {
				return false
			}
		}
		return true
	}
	return false
}

// pyNum is a decoded JSON number as Python holds it: an int (exact) or a
// float64.
type pyNum struct {
	isInt bool
	i     *big.Int
	f     float64
}

func toPyNum(v any) (pyNum, bool) {
	switch n := v.(type) {
	case bool:
		if n {
			return pyNum{isInt: true, i: big.NewInt(1)}, true
		}
		return pyNum{isInt: true, i: new(big.Int)}, true
	case json.Number:
		lit := string(n)
		if isIntLiteral(lit) {
			i, ok := new(big.Int).SetString(lit, 10)
			return pyNum{isInt: true, i: i}, ok
		}
		f, ok := numberToFloat(lit)
		return pyNum{f: f}, ok
	}
	return pyNum{}, false
}

func numEqual(x, y any, nested bool) bool {
	a, ok := toPyNum(x)
	if !ok {
		return false
	}
	b, ok := toPyNum(y)
	if !ok {
		return false
	}
	switch {
	case a.isInt && b.isInt:
		return a.i.Cmp(b.i) == 0
	case !a.isInt && !b.isInt:
		return a.f == b.f || (nested && math.IsNaN(a.f) && math.IsNaN(b.f))
	case a.isInt:
		return intEqualsFloat(a.i, b.f)
	default:
		return intEqualsFloat(b.i, a.f)
	}
}

func intEqualsFloat(i *big.Int, f float64) bool {
	if math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) {
		return false
	}
	return new(big.Float).SetInt(i).Cmp(big.NewFloat(f)) == 0
}

// canonicalKey maps an order_key/throttle_key to a string such that two
// keys are equal exactly when Python would treat them as the same dict key:
// "" for absent or null (Python's None, the default key), numbers and
// booleans by value (1, 1.0 and true are one key), strings by content
// (JSON-quoted, so "1" differs from 1). Objects and arrays, which crash
// SocketShark (unhashable), fall back to their compacted text.
func canonicalKey(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		if isPlainString(raw) {
			return string(raw)
		}
		s, _ := unquote(raw)
		return string(AppendJSONString(nil, s))
	case c == 't' || c == 'f':
		if string(raw) == "true" {
			return "1"
		}
		return "0"
	case c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I':
		return canonicalNumber(string(raw))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// canonicalNumber renders integral values as exact decimal integers and
// others with the shortest float text; the two never collide because the
// latter always holds a '.', an 'e' or "Inf".
func canonicalNumber(lit string) string {
	if isIntLiteral(lit) {
		if i, ok := new(big.Int).SetString(lit, 10); ok {
			return i.String()
		}
		return lit
	}
	f, ok := numberToFloat(lit)
	if !ok {
		return lit
	}
	if !math.IsInf(f, 0) && f == math.Trunc(f) {
		i, _ := big.NewFloat(f).Int(nil)
		return i.String()
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
