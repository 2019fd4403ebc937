package edge

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"mako/internal/e2e"
)

// The upgrade request may arrive in any number of pieces.
func TestHandshakeByteByByte(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := dialRaw(t, srv)
	key := newKey()
	rc.writePaced([]byte(upgradeRequest(key)), 1)
	rc.expect101(key)
	rc.ping("split")
	rc.ping("again")
}

// A client may send its first frame in the same segment as the upgrade
// request: the bytes after the head belong to the frame decoder.
func TestHandshakeAndFirstFrameInOneWrite(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	rc := dialRaw(t, srv)
	key := newKey()
	b := []byte(upgradeRequest(key))
	b = append(b, clientFrame(true, 0, opText, []byte(`{"event":"ping","data":"first"}`), true)...)
	b = append(b, clientFrame(true, 0, opText, []byte(`{"event":"ping","data":"second"}`), true)...)
	rc.write(b)
	rc.expect101(key)
	expectPong(t, rc.nextJSON(), "first")
	expectPong(t, rc.nextJSON(), "second")
}

// Bad upgrade requests get a real HTTP error with a reason, then the
// connection is closed.
func TestHandshakeBadRequests(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	key := newKey()
	std := upgradeRequest(key)
	big := strings.Replace(std, "User-Agent: mako-edge-test\r\n", "X-Big: "+strings.Repeat("a", 9<<10)+"\r\n", 1)
	cases := []struct {
		name    string
		req     string
		status  int
		reason  string // substring of the body
		headers map[string]string
	}{
		{
			name:   "missing key",
			req:    strings.Replace(std, "Sec-WebSocket-Key: "+key+"\r\n", "", 1),
			status: 400, reason: "Sec-WebSocket-Key",
		},
		{
			name:   "invalid key",
			req:    strings.Replace(std, key, "not-a-key", 1),
			status: 400, reason: "Sec-WebSocket-Key",
		},
		{
			name:   "no upgrade header",
			req:    strings.Replace(std, "Upgrade: websocket\r\n", "", 1),
			status: 400, reason: "Upgrade",
		},
		{
			name:   "wrong version",
			req:    strings.Replace(std, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 1),
			status: 426, reason: "version",
			headers: map[string]string{"Sec-WebSocket-Version": "13"},
		},
		{
			name:   "head over 8 KiB",
			req:    big,
			status: 431,
		},
		{
			name:   "head over 8 KiB, no end in sight",
			req:    big[:len(big)-200],
			status: 431,
		},
		{
			name:   "POST",
			req:    strings.Replace(std, "GET ", "POST ", 1),
			status: 405, reason: "method",
			headers: map[string]string{"Allow": "GET"},
		},
		{
			name:   "garbage",
			req:    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n",
			status: 400,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := dialRaw(t, srv)
			rc.write([]byte(tc.req))
			resp, body := rc.response()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %s (%q), want %d", resp.Status, body, tc.status)
			}
			if body == "" || !strings.Contains(strings.ToLower(body), strings.ToLower(tc.reason)) {
				t.Fatalf("body %q: want a reason mentioning %q", body, tc.reason)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Fatalf("%s = %q, want %q", k, got, v)
				}
			}
			rc.expectEOF()
		})
	}
}

// A connection that does not finish its upgrade within ws.handshake_timeout
// is closed; one that finishes in time, or has finished, is not.
func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	srv, clock := fakeClockServer(t, func(c *cfgT) { c.WS.HandshakeTimeout = 10 })
	slow, late := dialRaw(t, srv), dialRaw(t, srv)
	awaitConnections(t, srv, 2)
	slowKey, lateKey := newKey(), newKey()
	slowReq, lateReq := upgradeRequest(slowKey), upgradeRequest(lateKey)
	slow.write([]byte(slowReq[:len(slowReq)/2]))
	late.write([]byte(lateReq[:len(lateReq)/2]))
	e2e.Tick(t, srv, clock, 10*time.Second-time.Millisecond)
	// Just in time: the rest arrives before the deadline.
	slow.write([]byte(slowReq[len(slowReq)/2:]))
	slow.expect101(slowKey)
	slow.ping("in time")
	e2e.Tick(t, srv, clock, time.Millisecond)
	late.expectEOF()
	// A completed handshake is not subject to the timeout.
	e2e.Tick(t, srv, clock, time.Hour)
	slow.ping("after")
}

// An HTTP client that is not a WebSocket client gets a proper response too.
func TestHandshakePlainHTTP(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	resp, err := http.Get("http://" + srv.Addr() + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("plain GET: status %s, want 4xx", resp.Status)
	}
}
