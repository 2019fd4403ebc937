package edge

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// openSmallWindow opens a WebSocket connection whose socket has a small
// receive buffer (so the server's writes back up quickly once the test stops
// reading) and reads through a small bufio, so nothing is read ahead.
func openSmallWindow(t testing.TB, addr string) *rawConn {
	t.Helper()
	rc := dialSmallWindow(t, addr)
	key := newKey()
	rc.write([]byte(upgradeRequest(key)))
	rc.expect101(key)
	return rc
}

// dialSmallWindow connects with a 4 KiB receive buffer, before any upgrade.
func dialSmallWindow(t testing.TB, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: wait, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	t.Cleanup(func() { _ = tc.Close() })
	return &rawConn{t: t, c: tc, r: bufio.NewReaderSize(tc, 4096)}
}

func (rc *rawConn) subscribe(name string) {
	rc.t.Helper()
	rc.send(`{"event":"subscribe","subscription":"` + name + `"}`)
	if m := rc.nextJSON(); m["event"] != "subscribe" || m["status"] != "ok" {
		rc.t.Fatalf("subscribe %s: %v", name, m)
	}
}

// serverSide is the server's socket of rc's connection as /proc/net/tcp
// shows it: its state code ("01" ESTABLISHED, "04" FIN_WAIT1, ...) and the
// bytes in its send queue; ok is false once the kernel has freed it.
func serverSide(t testing.TB, rc *rawConn) (state string, sendQ int, ok bool) {
	t.Helper()
	srvPort := rc.c.RemoteAddr().(*net.TCPAddr).Port
	cliPort := rc.c.LocalAddr().(*net.TCPAddr).Port
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	local, remote := fmt.Sprintf(":%04X", srvPort), fmt.Sprintf(":%04X", cliPort)
	for _, line := range strings.Split(string(data), "\n") {
		fs := strings.Fields(line)
		if len(fs) > 4 && strings.HasSuffix(fs[1], local) && strings.HasSuffix(fs[2], remote) {
			tx, _, _ := strings.Cut(fs[4], ":")
			n, _ := strconv.ParseInt(tx, 16, 64)
			return fs[3], int(n), true
		}
	}
	return "", 0, false
}

// awaitFreed waits until the kernel has freed the server's socket of rc's
// connection; it fails after wait (the bound only turns a hang into a
// failure) and returns how long it took.
func awaitFreed(t testing.TB, rc *rawConn) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		state, sendQ, ok := serverSide(t, rc)
		if !ok {
			return time.Since(start)
		}
		if time.Since(start) > wait {
			t.Fatalf("server socket still there after %v: state %s, %d bytes in its send queue", wait, state, sendQ)
		}
		time.Sleep(10 * time.Millisecond) // polling the kernel's table, which has no event to await
	}
}

// A subscriber that stops reading is cut as a slow consumer, and the cut
// frees the connection at once: the server's socket is gone from the kernel
// within the test's bound (an orderly close would leave it in FIN_WAIT1,
// holding its send buffer, for minutes: the client reads nothing more).
func TestSlowConsumerCutFreesSocket(t *testing.T) {
	t.Parallel()
	metricsPort := freePort(t)
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.WS.MaxOutboundBytes = 64 << 10
		c.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: metricsPort}
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	})
	slow := openSmallWindow(t, srv.Addr())
	slow.subscribe("demo.feed")

	pad := strings.Repeat("p", 1000)
	// The cut shows as the server's side leaving ESTABLISHED (or being gone).
	sent := 0
	for {
		state, sendQ, ok := serverSide(t, slow)
		if !ok || state != "01" {
			t.Logf("after %d messages of 1 KB: server socket state %q, %d bytes in its send queue", sent, state, sendQ)
			break
		}
		if sent >= 20000 {
			t.Fatalf("not cut after %d messages of 1 KB", sent)
		}
		for range 100 {
			e2e.Publish(t, srv, fmt.Sprintf(`{"subscription":"demo.feed","data":{"n":%d,"p":"%s"}}`, sent, pad))
			sent++
		}
	}
	took := awaitFreed(t, slow)
	t.Logf("server socket freed %v after the cut was seen", took)
	if got := e2e.ScrapeMetrics(t, metricsPort)[`mako_cuts_total{cause="slow_consumer"}`]; got != 1 {
		t.Fatalf(`mako_cuts_total{cause="slow_consumer"} = %v, want 1`, got)
	}
	// The client, reading at last, finds what it had received, then the reset.
	for {
		if _, err := slow.readFrame(); err != nil {
			if !isReset(err) {
				t.Logf("client read ended with %v", err)
			}
			break
		}
	}
}

// One frame larger than ws.max_outbound_bytes (and than the socket buffers)
// reaches a client that is reading: the frame being written is not counted
// against the cap, only what earlier writes left waiting.
func TestOneLargeFrameDoesNotCutAHealthyClient(t *testing.T) {
	t.Parallel()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.WS.MaxOutboundBytes = 64 << 10
		c.WS.Compression = false
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	})
	rc := open(t, srv)
	rc.subscribe("demo.big")
	big := strings.Repeat("b", 4<<20)
	if err := srv.Hub().Publish(context.Background(), "demo.big", []byte(`{"subscription":"demo.big","data":"`+big+`"}`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
	f := rc.next()
	if f.op != opText || len(f.payload) < len(big) || !strings.Contains(string(f.payload), big[:1024]) {
		t.Fatalf("want the 4 MiB message, got %v (%d bytes)", f, len(f.payload))
	}
	rc.ping("still connected")
}

// Shutdown's 1001 reaches a client behind the messages already queued for
// it: the client, reading only after Shutdown began, receives every message
// in order, then the close frame, then the end of the stream. The backlog
// (6 MB) is more than the kernel's send buffer can hold (tcp_wmem's 4 MiB
// at most), so most of it is in mako's buffer, which a plain close drops.
func TestShutdownCloseArrivesBehindBacklog(t *testing.T) {
	t.Parallel()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.WS.MaxOutboundBytes = 16 << 20
		c.WS.Compression = false
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	}, oneLoop)
	slow := openSmallWindow(t, srv.Addr())
	slow.subscribe("demo.feed")
	queueBacklog(t, srv)
	if state, sendQ, ok := serverSide(t, slow); ok {
		t.Logf("before Shutdown: server socket state %s, %d bytes in its send queue", state, sendQ)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for i := range backlogMessages {
		f := slow.next()
		if f.op != opText || seq(f.payload) != i {
			t.Fatalf("slow client: message %d is %v", i, f)
		}
	}
	slow.expectClose(1001)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// backlogMessages of 100 KB: 6 MB queued for a client that does not read.
const backlogMessages = 60

// queueBacklog publishes the backlog on demo.feed and returns once the
// server's one loop has written or queued all of it: a witness subscriber
// on that loop has received every message.
func queueBacklog(t *testing.T, srv *server.Server) {
	t.Helper()
	witness := open(t, srv)
	witness.subscribe("demo.feed")
	pad := strings.Repeat("p", 100<<10)
	for i := range backlogMessages {
		body := fmt.Sprintf(`{"subscription":"demo.feed","data":{"n":%d,"p":"%s"}}`, i, pad)
		if err := srv.Hub().Publish(context.Background(), "demo.feed", []byte(body)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for i := range backlogMessages {
		if f := witness.next(); seq(f.payload) != i {
			t.Fatalf("witness: message %d is %v", i, f)
		}
	}
	_ = witness.c.Close()
}

// A close that is not a cut (here the ping timeout, 1008) also arrives
// behind the backlog once the client reads; the socket is closed when it
// has all left (looked at on the loop's timers: the fake clock drives them).
func TestPingTimeoutCloseArrivesBehindBacklog(t *testing.T) {
	b := backlogOnFakeClock(t)
	for i := 0; i < backlogMessages; {
		f := b.slow.next()
		if f.op == opPing {
			continue // sent behind the messages queued at the time
		}
		if f.op != opText || seq(f.payload) != i {
			t.Fatalf("message %d is %v", i, f)
		}
		i++
	}
	f := b.slow.next()
	if f.op == opPing {
		f = b.slow.next()
	}
	if code, _ := f.close(); f.op != opClose || code != 1008 {
		t.Fatalf("want the 1008 close frame, got %v", f)
	}
	e2e.Tick(t, b.srv, b.clock, 20*time.Millisecond)
	b.slow.expectEOF()
}

// A client that reads nothing of its backlog after a close began is aborted
// once ws.close_timeout has passed: its socket is freed, not left to the
// kernel's retries, and mako_close_timeouts_total counts it.
func TestCloseTimeoutAborts(t *testing.T) {
	b := backlogOnFakeClock(t)
	if state, sendQ, ok := serverSide(t, b.slow); ok {
		t.Logf("closing: server socket state %s, %d bytes in its send queue", state, sendQ)
	}
	e2e.Tick(t, b.srv, b.clock, 5*time.Second) // ws.close_timeout
	took := awaitFreed(t, b.slow)
	t.Logf("server socket freed %v after the close timeout", took)
	if got := e2e.ScrapeMetrics(t, b.metricsPort)["mako_close_timeouts_total"]; got != 1 {
		t.Fatalf("mako_close_timeouts_total = %v, want 1", got)
	}
}

type backlog struct {
	slow        *rawConn
	srv         *server.Server
	clock       *e2e.FakeClock
	metricsPort int
}

// backlogOnFakeClock: a client with 6 MB queued that reads nothing, on a
// server whose timers run on a fake clock, taken to the point where the
// ping timeout has closed it (close frame queued behind the backlog).
func backlogOnFakeClock(t *testing.T) backlog {
	t.Helper()
	b := backlog{metricsPort: freePort(t), clock: e2e.NewFakeClock()}
	no := false
	b.srv = startServer(t, func(c *cfgT) {
		c.WS.Ping.Interval = 15
		c.WS.Ping.Timeout = 10
		c.WS.CloseTimeout = 5
		c.WS.MaxOutboundBytes = 16 << 20
		c.WS.Compression = false
		c.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.1", Port: b.metricsPort}
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	}, oneLoop, func(o *server.Options) { o.Clock, o.ManualTimers = b.clock, true })
	b.slow = openSmallWindow(t, b.srv.Addr())
	b.slow.subscribe("demo.feed")
	queueBacklog(t, b.srv)
	awaitConnections(t, b.srv, 1)               // the witness is gone: only the slow client times out
	e2e.Tick(t, b.srv, b.clock, 15*time.Second) // ping
	e2e.Tick(t, b.srv, b.clock, 10*time.Second) // no pong: close 1008
	return b
}

// ws.socket_send_buffer bounds what the kernel holds for a client that does
// not read (SO_SNDBUF, which Linux doubles for its bookkeeping); without it
// the kernel's autotuning lets one such client hold megabytes.
func TestSocketSendBufferBoundsKernelQueue(t *testing.T) {
	t.Parallel()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.WS.MaxOutboundBytes = 16 << 20
		c.WS.Compression = false
		c.WS.SocketSendBuffer = 16 << 10
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	}, oneLoop)
	slow := openSmallWindow(t, srv.Addr())
	slow.subscribe("demo.feed")
	queueBacklog(t, srv)
	state, sendQ, ok := serverSide(t, slow)
	if !ok || state != "01" {
		t.Fatalf("server socket: state %q, present %v", state, ok)
	}
	t.Logf("send queue with a 16 KiB SO_SNDBUF and 6 MB queued: %d bytes", sendQ)
	if sendQ > 64<<10 {
		t.Fatalf("the kernel holds %d bytes for the client, want at most 64 KiB", sendQ)
	}
}
