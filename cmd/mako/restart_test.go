package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestRestartAfterSIGTERM is `systemctl restart` on the command's own path:
// mako serves a live connection, SIGTERM drains it (the server closes, so
// its side of the connection sits in TIME_WAIT on the port), and a new mako
// on the same port starts at once and serves again.
func TestRestartAfterSIGTERM(t *testing.T) {
	dir := t.TempDir()
	wsPort, apiPort := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "mako.yaml")
	body := fmt.Sprintf("ws: {port: %d}\napi: {port: %d}\nlog: {level: error}\nservices: {demo: {require_authentication: false}}\n", wsPort, apiPort)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		done := make(chan int, 1)
		var out, errb bytes.Buffer
		go func() { done <- run([]string{"-c", cfg}, &out, &errb) }()
		waitReady(t, apiPort, done, &errb)

		// A raw client that waits for the server to close first, as a
		// browser that has not yet answered the close would: the server's
		// side of the connection then ends in TIME_WAIT on the port.
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", wsPort), 10*time.Second)
		if err != nil {
			t.Fatalf("round %d: dial: %v", round, err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatalf("round %d: write: %v", round, err)
		}
		head := make([]byte, 12)
		if _, err := io.ReadFull(c, head); err != nil || string(head) != "HTTP/1.1 101" {
			t.Fatalf("round %d: upgrade answered %q, %v", round, head, err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(c) // the rest of the 101, the 1001 close, EOF
		if err != nil || !bytes.Contains(rest, []byte("\x03\xe9server shutting down")) {
			t.Fatalf("round %d: read %q, %v; want a 1001 close frame then EOF", round, rest, err)
		}
		_ = c.Close()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("round %d: exit %d: %s", round, code, errb.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: mako did not exit after SIGTERM", round)
		}
	}
}

// waitReady polls the readiness endpoint of a mako run in this process.
func waitReady(t *testing.T, apiPort int, done chan int, errb *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case code := <-done:
			t.Fatalf("mako exited %d before ready: %s", code, errb.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", apiPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mako not ready: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond) // polling an external process's readiness
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
