package protocol

import "testing"

func TestJSONEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`1`, `1`, true},
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`-0`, `0.0`, true},
		{`1`, `2`, false},
		{`true`, `1`, true},
		{`false`, `0`, true},
		{`true`, `1.0`, true},
		{`true`, `true`, true},
		{`true`, `false`, false},
		{`true`, `2`, false},
		{`null`, `null`, true},
		{`null`, `0`, false},
		{`null`, `false`, false},
		{`null`, `""`, false},
		{`"a"`, `"a"`, true},
		{`"a"`, `"\u0061"`, true},
		{`"a"`, `"b"`, false},
		{`"1"`, `1`, false},
		{`1`, `"1"`, false},
		{`"a"`, `1`, false},
		{`{"a":1,"b":[1,2]}`, `{"b":[1.0,2],"a":1}`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`{"a":1}`, `{"b":1}`, false},
		{`[1,2]`, `[2,1]`, false},
		{`[1,[true]]`, `[1.0,[1]]`, true},
		{`[]`, `{}`, false},
		{`{}`, `{}`, true},
		{` 1 `, `1`, true},
		{`9007199254740993`, `9007199254740992.0`, false},
		{`9007199254740992`, `9007199254740992.0`, true},
		{`12345678901234567890`, `12345678901234567890`, true},
		{`12345678901234567890`, `12345678901234567891`, false},
		{`1e400`, `1e500`, true},
		{`1e400`, `1` + "0000", false},
		{`1.5`, `1.5`, true},
		{`0.1`, `0.10`, true},
		{``, ``, false},
		{`{`, `{`, false},
		{`1 2`, `1 2`, false},
		{`nope`, `nope`, false},
		{`1`, `nope`, false},
	}
	for _, tt := range tests {
		if got := JSONEqual([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("JSONEqual(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := JSONEqual([]byte(tt.b), []byte(tt.a)); got != tt.want {
			t.Errorf("JSONEqual(%s, %s) = %v, want %v (symmetry)", tt.b, tt.a, got, tt.want)
		}
	}
}
