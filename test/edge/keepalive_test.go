package edge

import (
	"testing"
	"time"
)

func keepaliveServer(t *testing.T) *rawConn {
	srv := startServer(t, func(c *cfgT) {
		c.WS.Ping.Interval = 0.2
		c.WS.Ping.Timeout = 0.2
	})
	return open(t, srv)
}

// A client that answers the server's pings stays connected across several
// intervals.
func TestKeepaliveAnswered(t *testing.T) {
	rc := keepaliveServer(t)
	start := time.Now()
	pings := 0
	for pings < 4 {
		f := rc.next()
		if f.op != opPing {
			t.Fatalf("after %d pings (%v): want a ping frame, got %v", pings, time.Since(start), f)
		}
		pings++
		rc.write(clientFrame(true, 0, opPong, f.payload, true))
	}
	if el := time.Since(start); el < 3*200*time.Millisecond {
		t.Fatalf("4 pings within %v: faster than ws.ping.interval 0.2", el)
	}
	// Still open and working.
	rc.ping("alive")
}

// A client that never answers is closed after interval + timeout: a close
// frame, then the TCP connection.
func TestKeepaliveUnanswered(t *testing.T) {
	start := time.Now()
	rc := keepaliveServer(t)
	f := rc.next()
	if f.op != opPing {
		t.Fatalf("want a ping frame, got %v", f)
	}
	// Events still work while a pong is due; they do not count as a pong.
	rc.ping("busy")
	f = rc.next()
	if f.op != opClose {
		t.Fatalf("want a close frame after the pong timeout, got %v", f)
	}
	code, _ := f.close()
	if code == 1000 || code == 1005 {
		t.Fatalf("ping timeout closed with %d, want an error code", code)
	}
	rc.expectEOF()
	if el := time.Since(start); el < 380*time.Millisecond {
		t.Fatalf("closed after %v, before interval+timeout (0.4s)", el)
	}
}
