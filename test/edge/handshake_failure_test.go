package edge

import (
	"context"
	"net"
	"testing"
	"time"
)

// A client that sends its upgrade request and resets the connection before
// the 101 is written makes the server's c.Write fail, which closes the
// connection synchronously (OnClose runs inside Write). The session must stay
// dead: a regression once set it open again and armed its ping timer, so it
// wrote pings and a 1008 close through a released gnet.Conn whose fd number
// had been reused by a new connection.
func TestHandshakeWriteFailureDoesNotResurrectSession(t *testing.T) {
	srv := startServer(t, func(c *cfgT) {
		c.WS.Ping.Interval = 0.3
		c.WS.Ping.Timeout = 0.3
	}, oneLoop)

	for i := 0; i < 50; i++ {
		c, err := net.DialTimeout("tcp", srv.Addr(), wait)
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		_, _ = tc.Write([]byte(upgradeRequest(newKey())))
		_ = tc.SetLinger(0)
		_ = tc.Close() // RST: the server's 101 write fails
	}
	// Wait until the server has seen every reset.
	e2eEventually(t, "the reset connections are gone", func() bool {
		s, err := srv.Stats(context.Background())
		return err == nil && s.Connections == 0 && s.Sessions == 0
	}, func() string { return "" })

	// A healthy client that answers every ping must never be closed.
	rc := open(t, srv)
	deadline := time.Now().Add(2 * time.Second)
	pings := 0
	for time.Now().Before(deadline) {
		_ = rc.c.SetReadDeadline(deadline)
		f, err := rc.readFrame()
		if err != nil {
			if isTimeout(err) {
				break
			}
			t.Fatalf("healthy client lost its connection: %v", err)
		}
		switch f.op {
		case opPing:
			pings++
			if _, err := rc.c.Write(clientFrame(true, 0, opPong, f.payload, true)); err != nil {
				t.Fatalf("healthy client lost its connection after %d pings: %v", pings, err)
			}
		case opClose:
			t.Fatalf("healthy client that answers pings got %v (after %d pings): a stale session wrote to its fd", f, pings)
		default:
			t.Fatalf("unexpected frame %v", f)
		}
	}
	// ~2s / 0.3s ≈ 6 pings from its own session; more means stale writers.
	if pings > 8 {
		t.Fatalf("healthy client got %d pings in 2s with a 0.3s interval: stale sessions ping its fd", pings)
	}
}
