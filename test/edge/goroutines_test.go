package edge

import (
	"runtime"
	"testing"
)

// The reactor serves connections from its event loops: an idle connection
// costs no goroutine. The client side uses bare net.Conns, which start none
// either, so the process-wide count measures the server.
//
// Not parallel: runtime.NumGoroutine counts every test's goroutines.
func TestNoGoroutinePerConnection(t *testing.T) {
	const conns = 200
	srv := startServer(t, nil)
	// One connection first, so that per-loop state created on first use is
	// in the baseline; then close it and measure with zero connections.
	first := open(t, srv)
	first.ping("warm")
	_ = first.c.Close()

	base := runtime.NumGoroutine()
	rcs := make([]*rawConn, 0, conns)
	for range conns {
		rc := open(t, srv)
		rcs = append(rcs, rc)
	}
	// Each connection is live: a round trip on every one.
	for _, rc := range rcs {
		rc.ping("idle")
	}
	got := runtime.NumGoroutine()
	t.Logf("goroutines: %d with 0 connections, %d with %d", base, got, conns)
	if got-base > 10 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines grew by %d for %d idle connections (base %d):\n%s", got-base, conns, base, buf[:n])
	}
}
