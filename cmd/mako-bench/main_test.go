package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestModes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{nil, 2, "usage: mako-bench"},
		{[]string{"fanuot"}, 2, `unknown mode "fanuot"`},
		{[]string{"--help"}, 0, "usage: mako-bench idle|fanout"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if all := out.String() + errb.String(); code != tc.code || !strings.Contains(all, tc.out) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, all, tc.code, tc.out)
		}
	}
}
