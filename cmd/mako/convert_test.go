package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertConfig runs the subcommand as a user does and feeds its
// output to `mako check`.
func TestConvertConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"convert-config", "../../config/convert/testdata/like_example.py"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if errb.Len() != 0 || !strings.Contains(out.String(), `port: 9000 # WS_PORT = "9000"`) {
		t.Fatalf("stdout %q, stderr %q", out.String(), errb.String())
	}
	path := filepath.Join(t.TempDir(), "mako.yaml")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var chk bytes.Buffer
	if code := run([]string{"check", "-c", path}, &chk, &chk); code != 0 {
		t.Fatalf("mako check: exit %d: %s\n%s", code, chk.String(), out.String())
	}

	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"convert-config"}, 2, "usage: mako convert-config"},
		{[]string{"convert-config", "a.py", "b.py"}, 2, "usage: mako convert-config"},
		{[]string{"convert-config", "../../config/convert/testdata/bad_port.py"}, 1, `WS_PORT = "ninety": must be an integer port`},
		{[]string{"convert-config", "../../config/convert/testdata/broken.py"}, 1, "ModuleNotFoundError"},
		{[]string{"convert-config", "-python", "/nonexistent/python3", "../../config/convert/testdata/empty.py"}, 1, "/nonexistent/python3"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.err) || (code == 1 && out.Len() != 0) {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, out.String(), errb.String(), tc.err)
		}
	}
}
