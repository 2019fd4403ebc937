// Package edge tests mako's WebSocket edge end to end: a real server on a
// random port, driven over raw TCP with hand-written frames (so that tests
// can send what no client library would), plus the publish/health API and
// graceful shutdown.
package edge

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// Opcodes (RFC 6455 5.2).
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xa
)

// wait bounds every read: a read waits for an event, the deadline only turns
// a hang into a failure.
const wait = e2e.Timeout

// rawConn is a client over a bare TCP socket. It starts no goroutine.
type rawConn struct {
	t testing.TB
	c *net.TCPConn
	r *bufio.Reader
}

// dialRaw opens a TCP connection to the WebSocket port with TCP_NODELAY, so
// that every Write leaves as its own segment.
func dialRaw(t testing.TB, srv *server.Server) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), wait)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	t.Cleanup(func() { _ = tc.Close() })
	return &rawConn{t: t, c: tc, r: bufio.NewReaderSize(tc, 64<<10)}
}

// open dials and completes the upgrade.
func open(t testing.TB, srv *server.Server) *rawConn {
	t.Helper()
	rc := dialRaw(t, srv)
	key := newKey()
	rc.write([]byte(upgradeRequest(key)))
	rc.expect101(key)
	return rc
}

func (rc *rawConn) write(b []byte) {
	rc.t.Helper()
	_ = rc.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// writePaced writes b in pieces of n bytes. The short pause between pieces
// is pacing, not synchronisation: it only makes it likely that the server
// reads each piece on its own, so that its incremental parsing is exercised.
func (rc *rawConn) writePaced(b []byte, n int) {
	rc.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		rc.write(b[:k])
		b = b[k:]
		time.Sleep(100 * time.Microsecond)
	}
}

// response reads an HTTP response head and its body.
func (rc *rawConn) response() (*http.Response, string) {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(rc.r, &http.Request{Method: "GET"})
	if err != nil {
		rc.t.Fatalf("reading HTTP response: %v", err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if body, err = io.ReadAll(resp.Body); err != nil {
			rc.t.Fatalf("reading HTTP body: %v", err)
		}
	}
	return resp, string(body)
}

// expect101 reads the upgrade response and checks it against RFC 6455 4.2.2.
func (rc *rawConn) expect101(key string) {
	rc.t.Helper()
	resp, body := rc.response()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		rc.t.Fatalf("upgrade: got %s %q, want 101", resp.Status, body)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		rc.t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		rc.t.Fatalf("Upgrade header = %q", resp.Header.Get("Upgrade"))
	}
	if !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		rc.t.Fatalf("Connection header = %q", resp.Header.Get("Connection"))
	}
}

// frame is one server frame.
type frame struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
}

func (f frame) String() string {
	if f.op == opClose {
		code, reason := f.close()
		return fmt.Sprintf("close(%d %q)", code, reason)
	}
	p := f.payload
	if len(p) > 80 {
		p = p[:80]
	}
	return fmt.Sprintf("frame(op=%#x fin=%v rsv=%d %q)", f.op, f.fin, f.rsv, p)
}

// close returns a close frame's code (1005 when it has no payload).
func (f frame) close() (int, string) {
	if len(f.payload) < 2 {
		return 1005, ""
	}
	return int(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
}

// readFrame reads one server frame. Server frames must be unmasked.
func (rc *rawConn) readFrame() (frame, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	var h [2]byte
	if _, err := io.ReadFull(rc.r, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, rsv: (h[0] >> 4) & 7, op: h[0] & 0x0f}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(rc.r, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(rc.r, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 16<<20 {
		return f, fmt.Errorf("frame length %d", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(rc.r, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// next returns the next frame, failing the test on any read error.
func (rc *rawConn) next() frame {
	rc.t.Helper()
	f, err := rc.readFrame()
	if err != nil {
		rc.t.Fatalf("reading frame: %v", err)
	}
	if f.rsv != 0 || !f.fin {
		rc.t.Fatalf("unexpected server frame %v (mako never fragments or sets RSV)", f)
	}
	return f
}

// nextJSON returns the next frame, which must be a text frame holding a JSON
// object.
func (rc *rawConn) nextJSON() map[string]any {
	rc.t.Helper()
	f := rc.next()
	if f.op != opText {
		rc.t.Fatalf("want a text frame, got %v", f)
	}
	var m map[string]any
	if err := json.Unmarshal(f.payload, &m); err != nil {
		rc.t.Fatalf("text frame is not a JSON object: %q", f.payload)
	}
	return m
}

// send writes one masked, final text frame.
func (rc *rawConn) send(s string) {
	rc.t.Helper()
	rc.write(clientFrame(true, 0, opText, []byte(s), true))
}

// ping runs a {"event":"ping"} round trip and checks the pong: the
// connection is open and its events are processed.
func (rc *rawConn) ping(data string) {
	rc.t.Helper()
	rc.send(`{"event":"ping","data":"` + data + `"}`)
	expectPong(rc.t, rc.nextJSON(), data)
}

func expectPong(t testing.TB, m map[string]any, data string) {
	t.Helper()
	if m["event"] != "pong" || m["data"] != data || len(m) != 2 {
		t.Fatalf("want {event:pong,data:%q}, got %v", data, m)
	}
}

// expectClose reads the next frame, which must be a close frame with code,
// then waits for the server to close the TCP connection.
func (rc *rawConn) expectClose(code int) {
	rc.t.Helper()
	f := rc.next()
	if f.op != opClose {
		rc.t.Fatalf("want a close frame %d, got %v", code, f)
	}
	if got, _ := f.close(); got != code {
		rc.t.Fatalf("close code = %d (%v), want %d", got, f, code)
	}
	rc.expectEOF()
}

// expectEOF waits for the server to close the connection, with nothing more
// to read.
func (rc *rawConn) expectEOF() {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	var b [512]byte
	n, err := rc.r.Read(b[:])
	switch {
	case n > 0:
		rc.t.Fatalf("want EOF, got %d more bytes: %q", n, b[:n])
	case errors.Is(err, io.EOF):
	case isTimeout(err):
		rc.t.Fatalf("connection still open after %v", wait)
	default:
		rc.t.Fatalf("want EOF, got %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// clientFrame builds a client frame by hand; masked=false and rsv≠0 make the
// malformed frames no client library writes.
func clientFrame(fin bool, rsv byte, op byte, payload []byte, masked bool) []byte {
	b0 := op | rsv<<4
	if fin {
		b0 |= 0x80
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	out := make([]byte, 0, 14+len(payload))
	switch n := len(payload); {
	case n <= 125:
		out = append(out, b0, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, b0, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, b0, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	if key == [4]byte{} {
		key[0] = 1 // a zero key would leave the payload readable as plain text
	}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= key[i%4]
	}
	return out
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// upgradeRequest is a browser-like upgrade request; each of extra is a full
// header line ("Name: value") added after the standard ones.
func upgradeRequest(key string, extra ...string) string {
	var b bytes.Buffer
	b.WriteString("GET /ws?x=1 HTTP/1.1\r\n")
	b.WriteString("Host: example.com\r\n")
	b.WriteString("Upgrade: websocket\r\n")
	b.WriteString("Connection: keep-alive, Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: " + key + "\r\n")
	b.WriteString("Sec-WebSocket-Version: 13\r\n")
	b.WriteString("Origin: http://example.com\r\n")
	b.WriteString("User-Agent: mako-edge-test\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

type cfgT = config.Config

// startServer starts mako with cfg (see e2e.StartServer).
func startServer(t testing.TB, mutate func(*cfgT), opts ...func(*server.Options)) *server.Server {
	t.Helper()
	cfg := e2e.Config()
	if mutate != nil {
		mutate(cfg)
	}
	return e2e.StartServer(t, cfg, opts...)
}

// oneLoop runs the server on a single event loop, so that connections of a
// test share it.
func oneLoop(o *server.Options) { o.Loops = 1 }
