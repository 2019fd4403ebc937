package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "ws: {port: 9100}\nservices: {demo: {}}\n")
	typo := write("typo.yaml", "ws: {pingg: {interval: 1}}\n")
	badPort := write("port.yaml", "ws: {port: 70000}\n")
	tls := write("tls.yaml", "ws: {tls: {cert: "+good+", key: "+good+"}}\n")
	cases := []struct {
		name string
		args []string
		code int
		out  string // substring of stdout+stderr
	}{
		{"version", []string{"version"}, 0, "mako "},
		{"check ok", []string{"check", "-c", good}, 0, "config ok"},
		{"check example", []string{"check", "-c", "../../deploy/mako.example.yaml"}, 0, "config ok"},
		{"unknown key names the key", []string{"check", "-c", typo}, 2, "ws.pingg"},
		{"invalid value names the key", []string{"check", "-c", badPort}, 2, "ws.port"},
		{"tls refused", []string{"check", "-c", tls}, 2, "ws.tls"},
		{"missing -c", []string{"check"}, 2, "-c PATH"},
		{"missing file", []string{"-c", filepath.Join(dir, "nope.yaml")}, 2, "nope.yaml"},
		{"tail usage", []string{"tail"}, 2, "usage: mako tail"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code || !strings.Contains(all, tc.out) {
				t.Fatalf("exit %d (want %d), output %q (want it to contain %q)", code, tc.code, all, tc.out)
			}
		})
	}
}
