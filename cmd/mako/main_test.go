package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
		{"check redis example", []string{"check", "-c", "../../deploy/mako.redis.yaml"}, 0, "config ok"},
		{"check container config", []string{"check", "-c", "../../deploy/container/mako.container.yaml"}, 0, "config ok"},
		{"check bench config", []string{"check", "-c", "../../deploy/bench/mako.bench.yaml"}, 0, "config ok"},
		{"unknown key names the key", []string{"check", "-c", typo}, 2, "ws.pingg"},
		{"invalid value names the key", []string{"check", "-c", badPort}, 2, "ws.port"},
		{"tls refused", []string{"check", "-c", tls}, 2, "ws.tls"},
		{"missing -c", []string{"check"}, 2, "-c PATH"},
		{"missing file", []string{"-c", filepath.Join(dir, "nope.yaml")}, 2, "nope.yaml"},
		{"tail usage", []string{"tail"}, 2, "usage: mako tail"},
		{"help", []string{"help"}, 0, "mako check -c PATH"},
		{"--help", []string{"--help"}, 0, "mako tail"},
		{"help lists convert-config", []string{"help"}, 0, "mako convert-config"},
		{"-h", []string{"-h"}, 0, "mako version"},
		{"--version", []string{"--version"}, 0, "mako "},
		{"no arguments", nil, 2, "usage: mako COMMAND"},
		{"unknown command", []string{"bogus"}, 2, `unknown command or argument "bogus"`},
		{"stray argument", []string{"check", "-c", good, "extra"}, 2, `unknown command or argument "extra"`},
		{"tail field without =", []string{"tail", "-field", "org", "ws://127.0.0.1:1", "a.b"}, 2, "want NAME=JSON"},
		{"tail field not JSON", []string{"tail", "-field", "org=acme", "ws://127.0.0.1:1", "a.b"}, 2, "is not JSON"},
		{"tail field empty name", []string{"tail", "-field", "=1", "ws://127.0.0.1:1", "a.b"}, 2, "want NAME=JSON"},
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

// TestSignalDrainsAndExitsZero runs the server command in process, waits
// until it is ready, sends SIGTERM and expects a clean exit 0.
func TestSignalDrainsAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := filepath.Join(dir, "mako.yaml")
	body := fmt.Sprintf("ws: {port: 0}\napi: {port: %d}\nlog: {level: error}\nservices: {demo: {require_authentication: false}}\n", apiPort)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() { done <- run([]string{"-c", cfg}, &out, &errb) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", apiPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mako not ready: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond) // polling an external process's readiness
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("mako did not exit after SIGTERM")
	}
}
