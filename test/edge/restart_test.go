package edge

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"mako/internal/e2e"
	"mako/server"
)

// A server restarted on the port of one that has just closed live
// connections binds at once: the closed connections' server side sits in
// TIME_WAIT on that port, which without SO_REUSEADDR fails the bind with
// "address already in use" for a minute (a failed `systemctl restart`).
func TestRestartOnSamePort(t *testing.T) {
	port := freePort(t)
	mutate := func(c *cfgT) { c.WS.Port = port }
	first := startServer(t, mutate)
	var clients []*rawConn
	for range 3 {
		rc := open(t, first)
		rc.ping("up")
		clients = append(clients, rc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The server closed first: once each client has read the close and
	// closed its end, the server's side of each is in TIME_WAIT.
	for _, rc := range clients {
		rc.expectClose(1001)
		_ = rc.c.Close()
	}
	if n := tcpStates(t, port)["06"]; n == 0 {
		t.Fatalf("no TIME_WAIT socket on port %d: the test would not exercise the restart", port)
	} else {
		t.Logf("%d sockets in TIME_WAIT on port %d", n, port)
	}

	cfg := e2e.Config()
	mutate(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	second, err := server.New(cfg, server.Options{Logger: e2e.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = second.Shutdown(ctx)
	})
	open(t, second).ping("again")

	// SO_REUSEADDR is not port sharing: a second process on a port that is
	// listened on still fails.
	third, err := server.New(cfg, server.Options{Logger: e2e.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Start(); err == nil {
		t.Fatalf("a second server started on port %d, which is in use", port)
	}
}

// freePort returns a port free on 127.0.0.1 right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tcpStates counts the IPv4 TCP sockets whose local port is port, by state
// (the hex codes of /proc/net/tcp: "01" ESTABLISHED, "04" FIN_WAIT1,
// "06" TIME_WAIT, "0A" LISTEN, ...).
func tcpStates(t testing.TB, port int) map[string]int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	out := map[string]int{}
	suffix := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 3 && strings.HasSuffix(fs[1], suffix) {
			out[fs[3]]++
		}
	}
	return out
}
