package edge

import (
	"context"
	"testing"
	"time"

	"mako/internal/e2e"
	"mako/server"
)

// fakeClockServer starts mako on a clock the test advances (timers run only
// through e2e.Tick), so timeouts are tested without waiting for real time.
func fakeClockServer(t *testing.T, mutate func(*cfgT)) (*server.Server, *e2e.FakeClock) {
	clock := e2e.NewFakeClock()
	srv := startServer(t, mutate, func(o *server.Options) { o.Clock, o.ManualTimers = clock, true })
	return srv, clock
}

// awaitConnections waits until the server has opened n connections, so
// their timers exist before the test advances the clock.
func awaitConnections(t *testing.T, srv *server.Server, n int64) {
	t.Helper()
	e2eEventually(t, "connections opened", func() bool {
		s, err := srv.Stats(context.Background())
		return err == nil && s.Connections == n
	}, func() string { return "" })
}

const (
	pingInterval = 15 * time.Second
	pingTimeout  = 10 * time.Second
)

func keepaliveServer(t *testing.T) (*server.Server, *e2e.FakeClock, *rawConn) {
	srv, clock := fakeClockServer(t, func(c *cfgT) {
		c.WS.Ping.Interval = 15
		c.WS.Ping.Timeout = 10
	})
	return srv, clock, open(t, srv)
}

// A client that answers the server's pings stays connected across several
// intervals, and pings come no sooner than every interval.
func TestKeepaliveAnswered(t *testing.T) {
	srv, clock, rc := keepaliveServer(t)
	for i := 0; i < 4; i++ {
		e2e.Tick(t, srv, clock, pingInterval-time.Millisecond)
		rc.ping("early") // the next frame is the reply: no ping yet
		e2e.Tick(t, srv, clock, time.Millisecond)
		f := rc.next()
		if f.op != opPing {
			t.Fatalf("ping %d: want a ping frame, got %v", i, f)
		}
		rc.write(clientFrame(true, 0, opPong, f.payload, true))
		// Events are handled in order: the reply proves the pong was read.
		rc.ping("answered")
	}
	// Long past the pong timeouts, still open and working.
	rc.ping("alive")
}

// A client that never answers is closed once the pong timeout after a ping
// passes: a close frame with an error code, then the TCP connection.
func TestKeepaliveUnanswered(t *testing.T) {
	srv, clock, rc := keepaliveServer(t)
	e2e.Tick(t, srv, clock, pingInterval)
	if f := rc.next(); f.op != opPing {
		t.Fatalf("want a ping frame, got %v", f)
	}
	// Events still work while a pong is due; they do not count as a pong.
	rc.ping("busy")
	e2e.Tick(t, srv, clock, pingTimeout-time.Millisecond)
	rc.ping("not yet")
	e2e.Tick(t, srv, clock, time.Millisecond)
	f := rc.next()
	if f.op != opClose {
		t.Fatalf("want a close frame after the pong timeout, got %v", f)
	}
	if code, _ := f.close(); code == 1000 || code == 1005 {
		t.Fatalf("ping timeout closed with %d, want an error code", code)
	}
	rc.expectEOF()
}
