package edge

import (
	"testing"
	"time"

	"mako/internal/e2e"
	"mako/server"
)

// Connection timers run on the monotonic reading, so a wall-clock step back
// (NTP, VM resume) delays neither pings nor the pong deadline: with the wall
// clock set back an hour, the ping comes one interval of elapsed time later
// and the unanswered one closes the connection one timeout later.
func TestKeepaliveWallClockStepBack(t *testing.T) {
	srv, clock, rc := keepaliveServer(t)
	rc.ping("armed") // the reply proves the ping timer was armed before the step
	clock.StepWall(-time.Hour)
	e2e.Tick(t, srv, clock, pingInterval-time.Millisecond)
	rc.ping("early")
	e2e.Tick(t, srv, clock, time.Millisecond)
	if f := rc.next(); f.op != opPing {
		t.Fatalf("want a ping one interval after the step, got %v", f)
	}
	clock.StepWall(-time.Hour)
	e2e.Tick(t, srv, clock, pingTimeout)
	if f := rc.next(); f.op != opClose {
		t.Fatalf("want a close frame after the pong timeout, got %v", f)
	}
	rc.expectEOF()
}

// The same through the process ticker, which decides from a published
// reading whether a loop has anything due: after a wall step back, a ping
// one interval of elapsed time later must still be seen as due.
func TestKeepaliveTickerWallClockStepBack(t *testing.T) {
	clock := e2e.NewFakeClock()
	srv := startServer(t, func(c *cfgT) {
		c.WS.Ping.Interval = 15
		c.WS.Ping.Timeout = 10
	}, func(o *server.Options) { o.Clock = clock })
	rc := open(t, srv)
	rc.ping("armed")
	clock.StepWall(-time.Hour)
	clock.Advance(pingInterval)
	if f := rc.next(); f.op != opPing {
		t.Fatalf("want a ping one interval after the step, got %v", f)
	}
}

// The handshake deadline is elapsed time too: a connection that has not
// upgraded is closed ws.handshake_timeout after it opened, whatever the
// wall clock did meanwhile.
func TestHandshakeTimeoutWallClockStepBack(t *testing.T) {
	t.Parallel()
	srv, clock := fakeClockServer(t, func(c *cfgT) { c.WS.HandshakeTimeout = 10 })
	slow, late := dialRaw(t, srv), dialRaw(t, srv)
	awaitConnections(t, srv, 2)
	clock.StepWall(-time.Hour)
	slowKey := newKey()
	slowReq := upgradeRequest(slowKey)
	e2e.Tick(t, srv, clock, 10*time.Second-time.Millisecond)
	slow.write([]byte(slowReq))
	slow.expect101(slowKey)
	e2e.Tick(t, srv, clock, time.Millisecond)
	late.expectEOF()
}
