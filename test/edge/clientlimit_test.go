package edge

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mako/internal/e2e"
	"mako/server"
)

// dialFrom opens a TCP connection to the WebSocket port from a given
// loopback address (Linux routes all of 127.0.0.0/8 to lo), so a test has
// as many client addresses as it needs.
func dialFrom(t testing.TB, srv *server.Server, local string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	t.Cleanup(func() { _ = tc.Close() })
	return &rawConn{t: t, c: tc, r: bufio.NewReaderSize(tc, 64<<10)}
}

// upgradeStatus sends an upgrade request after prefix (a PROXY header, or
// nothing) and returns the response's status and body; a 101 leaves the
// connection open.
func (rc *rawConn) upgradeStatus(prefix []byte) (int, string) {
	rc.t.Helper()
	key := newKey()
	rc.write(append(prefix, upgradeRequest(key)...))
	resp, body := rc.response()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	rc.expectEOF()
	return resp.StatusCode, body
}

func expectStatus(t testing.TB, rc *rawConn, prefix []byte, want int, what string) {
	t.Helper()
	if got, body := rc.upgradeStatus(prefix); got != want {
		t.Fatalf("%s: upgrade got %d %q, want %d", what, got, body, want)
	}
}

// eventually waits for cond, which a loop callback makes true after the
// client has seen the socket close (gnet closes the fd before OnClose).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, wait)
		}
		time.Sleep(time.Millisecond)
	}
}

// limits.max_connections_per_ip: the connection over the cap gets 503 and
// is closed while another address still connects; closing one frees its
// place, and the table forgets an address once its last connection is
// gone.
func TestConnectionsPerIPCap(t *testing.T) {
	t.Parallel()
	var scrape func() map[string]float64
	srv := startServer(t, func(c *cfgT) {
		c.Limits.MaxConnectionsPerIP = 2
		scrape = e2e.ServeMetrics(t, c)
	})
	a1 := dialFrom(t, srv, "127.0.0.2")
	expectStatus(t, a1, nil, 101, "first from .2")
	a2 := dialFrom(t, srv, "127.0.0.2")
	expectStatus(t, a2, nil, 101, "second from .2")
	a3 := dialFrom(t, srv, "127.0.0.2")
	if st, body := a3.upgradeStatus(nil); st != 503 || body != "too many connections from this address" {
		t.Fatalf("third from .2: %d %q, want 503", st, body)
	}
	b1 := dialFrom(t, srv, "127.0.0.3")
	expectStatus(t, b1, nil, 101, "first from .3")
	a1.ping("a1")
	if m := scrape(); m["mako_client_ips"] != 2 {
		t.Fatalf("mako_client_ips = %v, want 2 (.2 and .3)", m["mako_client_ips"])
	}
	if got := scrape()[`mako_client_limit_hits_total{limit="max_connections_per_ip"}`]; got != 1 {
		t.Fatalf("hits = %v, want 1", got)
	}

	// A closed connection gives its place back.
	_ = a1.c.Close()
	eventually(t, "closed", func() bool { return connections(t, srv) == 2 })
	a4 := dialFrom(t, srv, "127.0.0.2")
	expectStatus(t, a4, nil, 101, "from .2 after a close")

	for _, rc := range []*rawConn{a2, a4, b1} {
		_ = rc.c.Close()
	}
	eventually(t, "an empty address table", func() bool { return scrape()["mako_client_ips"] == 0 })
}

// connections is the server's count of open sockets.
func connections(t testing.TB, srv *server.Server) int64 {
	t.Helper()
	st, err := srv.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Connections
}

// limits.connections_per_second_per_ip, on the injected clock: a burst of
// connection_burst_per_ip connections, then 429 until a token is back; the
// refused connection takes no token; other addresses are not affected.
func TestConnectionRatePerIP(t *testing.T) {
	t.Parallel()
	clock := e2e.NewFakeClock()
	var scrape func() map[string]float64
	srv := startServer(t, func(c *cfgT) {
		scrape = e2e.ServeMetrics(t, c)
		c.Limits.ConnectionsPerSecondPerIP = 0.5 // a token every 2 s
		c.Limits.ConnectionBurstPerIP = 2
	}, func(o *server.Options) { o.Clock = clock })
	for i := range 2 {
		expectStatus(t, dialFrom(t, srv, "127.0.0.4"), nil, 101, "burst from .4 #"+string(rune('1'+i)))
	}
	rc := dialFrom(t, srv, "127.0.0.4")
	if st, body := rc.upgradeStatus(nil); st != 429 || body != "too many new connections from this address" {
		t.Fatalf("over the rate: %d %q, want 429", st, body)
	}
	expectStatus(t, dialFrom(t, srv, "127.0.0.5"), nil, 101, "from .5")
	clock.Advance(1999 * time.Millisecond)
	expectStatus(t, dialFrom(t, srv, "127.0.0.4"), nil, 429, "1.999 s later")
	clock.Advance(time.Millisecond)
	expectStatus(t, dialFrom(t, srv, "127.0.0.4"), nil, 101, "2 s later")
	expectStatus(t, dialFrom(t, srv, "127.0.0.4"), nil, 429, "right after")
	if got := scrape()[`mako_client_limit_hits_total{limit="connections_per_second_per_ip"}`]; got != 3 {
		t.Fatalf("hits = %v, want 3", got)
	}
}

// limits.client_events_per_second: past the burst each event is answered
// "Rate limit exceeded." in its turn (shaped like the event's own check
// failures), a token comes back per period, and max_refused_events refused
// without the bucket refilling close the connection 1008. A pause that
// refills the bucket starts the count again.
func TestEventRate(t *testing.T) {
	t.Parallel()
	clock := e2e.NewFakeClock()
	var scrape func() map[string]float64
	srv := startServer(t, func(c *cfgT) {
		scrape = e2e.ServeMetrics(t, c)
		c.Limits.ClientEventsPerSecond = 1
		c.Limits.ClientEventsBurst = 3
		c.Limits.MaxRefusedEvents = 4
	}, func(o *server.Options) { o.Clock = clock })
	rc := open(t, srv)
	limited := func(want string) {
		t.Helper()
		f := rc.next()
		if f.op != opText || string(f.payload) != want {
			t.Fatalf("got %v, want %s", f, want)
		}
	}
	for _, round := range []string{"first", "after a refill"} {
		rc.ping(round + "1")
		rc.ping(round + "2")
		rc.ping(round + "3")
		rc.send(`{"event":"ping","data":"x"}`)
		limited(`{"event":"ping","status":"error","error":"Rate limit exceeded."}`)
		clock.Advance(time.Second)
		rc.ping(round + "4") // one token back
		rc.send(`{"event":"subscribe","subscription":"books.1"}`)
		limited(`{"event":"subscribe","status":"error","error":"Rate limit exceeded.","subscription":"books.1"}`)
		rc.send(`not json`)
		limited(`{"status":"error","error":"Rate limit exceeded."}`)
		if round == "first" {
			// Three refused so far; a pause that fills the bucket (3 s
			// from the last token) forgets them.
			clock.Advance(3 * time.Second)
		}
	}
	// 3 refused since the refill: the 4th closes.
	rc.send(`{"event":"nosuch"}`)
	rc.expectClose(1008)
	if got := scrape()[`mako_client_limit_hits_total{limit="client_events_per_second"}`]; got != 7 {
		t.Fatalf("refused = %v, want 7", got)
	}
	if got := scrape()[`mako_client_limit_hits_total{limit="max_refused_events"}`]; got != 1 {
		t.Fatalf("closes = %v, want 1", got)
	}
}

func proxyV1(src string) []byte {
	fam := "TCP4"
	if strings.Contains(src, ":") {
		fam = "TCP6"
	}
	dst := "10.0.0.9"
	if fam == "TCP6" {
		dst = "2001:db8:ffff::9"
	}
	return []byte("PROXY " + fam + " " + src + " " + dst + " 40000 9000\r\n")
}

// proxyV2 builds a v2 PROXY header (cmd 1) for src, with a TLV to skip
// (of pad bytes, when given); cmd 0 is LOCAL.
func proxyV2(cmd byte, src string, pad ...int) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	var body []byte
	fam := byte(0)
	if src != "" {
		a := netip.MustParseAddr(src)
		if a.Is4() {
			fam = 0x11
			s, d := a.As4(), [4]byte{10, 0, 0, 9}
			body = append(append(body, s[:]...), d[:]...)
		} else {
			fam = 0x21
			s, d := a.As16(), netip.MustParseAddr("2001:db8:ffff::9").As16()
			body = append(append(body, s[:]...), d[:]...)
		}
		body = binary.BigEndian.AppendUint16(body, 40000)
		body = binary.BigEndian.AppendUint16(body, 9000)
	}
	noop := []byte("abc")
	if len(pad) > 0 {
		noop = make([]byte, pad[0])
	}
	body = append(body, 0x04) // PP2_TYPE_NOOP
	body = binary.BigEndian.AppendUint16(body, uint16(len(noop)))
	body = append(body, noop...)
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// ws.proxy_protocol: the per-address cap goes by the address the PROXY
// header names, v1 or v2, whatever the socket's peer; an IPv6 client is its
// /64; a LOCAL header counts under the peer itself.
func TestProxyProtocolAddress(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *cfgT) {
		c.WS.ProxyProtocol = true
		c.Limits.MaxConnectionsPerIP = 1
	})
	// All from 127.0.0.1.
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV1("10.0.0.1"), 101, "v1 10.0.0.1")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV2(1, "10.0.0.1"), 503, "v2 10.0.0.1 again")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV1("10.0.0.1"), 503, "v1 10.0.0.1 again")
	ok := dialFrom(t, srv, "127.0.0.1")
	expectStatus(t, ok, proxyV2(1, "10.0.0.2"), 101, "v2 10.0.0.2")
	ok.ping("behind the header")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV1("2001:db8::1"), 101, "v1 2001:db8::1")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV2(1, "2001:db8::2"), 503, "v2 same /64")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV2(1, "2001:db8:0:1::1"), 101, "v2 next /64")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), proxyV2(0, ""), 101, "v2 LOCAL: counted as 127.0.0.1")
	expectStatus(t, dialFrom(t, srv, "127.0.0.1"), []byte("PROXY UNKNOWN\r\n"), 503, "v1 UNKNOWN: 127.0.0.1 again")

	// A header split across segments is read as it arrives.
	rc := dialFrom(t, srv, "127.0.0.1")
	key := newKey()
	rc.writePaced(append(proxyV2(1, "10.0.0.3"), upgradeRequest(key)...), 7)
	rc.expect101(key)
	rc.ping("paced")

	// A v2 header larger than one parse step (TLVs up to the 64 KiB the
	// format allows) is waited for whole.
	big := dialFrom(t, srv, "127.0.0.1")
	key = newKey()
	big.write(append(proxyV2(1, "10.0.0.4", 40000), upgradeRequest(key)...))
	big.expect101(key)
	big.ping("big header")
}

// With ws.proxy_protocol a connection without a valid header is closed
// without an answer (the peer is not the balancer), counted and logged;
// without it, a PROXY header is a malformed upgrade.
func TestProxyProtocolBadHeader(t *testing.T) {
	t.Parallel()
	var scrape func() map[string]float64
	srv := startServer(t, func(c *cfgT) {
		c.WS.ProxyProtocol = true
		scrape = e2e.ServeMetrics(t, c)
	})
	for _, bad := range [][]byte{
		[]byte("PROXY TCP4 10.0.0.1\r\n"),                  // fields missing
		[]byte("PROXY TCP4 10.0.0.1 10.0.0.9 1 99999\r\n"), // port
		[]byte("\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c"),   // v2 with version 3
		nil, // no header at all: the upgrade request itself
	} {
		rc := dialFrom(t, srv, "127.0.0.1")
		rc.write(append(bad, upgradeRequest(newKey())...))
		rc.expectEOF()
	}
	if got := scrape()["mako_proxy_protocol_errors_total"]; got != 4 {
		t.Fatalf("errors = %v, want 4", got)
	}

	plain := startServer(t, nil)
	for _, h := range [][]byte{proxyV1("10.0.0.1"), proxyV2(1, "10.0.0.1")} {
		expectStatus(t, dialRaw(t, plain), h, 400, "PROXY header with proxy_protocol off")
	}
}
