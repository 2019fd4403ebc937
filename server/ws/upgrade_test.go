package ws

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const goodKey = "dGhlIHNhbXBsZSBub25jZQ=="

// reqWith builds an upgrade request from a valid one: replace maps a
// header name to its new line ("" drops it), extra lines are appended.
func reqWith(requestLine string, replace map[string]string, extra ...string) string {
	hdr := []struct{ name, line string }{
		{"host", "Host: example.com"},
		{"upgrade", "Upgrade: websocket"},
		{"connection", "Connection: Upgrade"},
		{"key", "Sec-WebSocket-Key: " + goodKey},
		{"version", "Sec-WebSocket-Version: 13"},
	}
	var b strings.Builder
	b.WriteString(requestLine + "\r\n")
	for _, h := range hdr {
		line := h.line
		if r, ok := replace[h.name]; ok {
			line = r
		}
		if line != "" {
			b.WriteString(line + "\r\n")
		}
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

var goodRequest = reqWith("GET /chat?x=1 HTTP/1.1", nil,
	"Origin: https://example.com",
	"Sec-WebSocket-Protocol: chat, superchat",
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")

func TestParseUpgradeFields(t *testing.T) {
	req, n, err := ParseUpgrade([]byte(goodRequest), 4096)
	if err != nil || n != len(goodRequest) {
		t.Fatalf("n=%d err=%v, want n=%d", n, err, len(goodRequest))
	}
	want := &Request{
		Path: "/chat", RawQuery: "x=1", Host: "example.com", Origin: "https://example.com",
		Key: goodKey, Protocols: []string{"chat", "superchat"}, DeflateOffered: true, Deflate: true,
	}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("got %+v\nwant %+v", req, want)
	}
}

func TestParseUpgradeVariants(t *testing.T) {
	tests := []struct {
		name string
		req  string
		want Request
	}{
		{"minimal", reqWith("GET / HTTP/1.1", nil),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"header case and lists", "GET /a HTTP/1.1\r\nhOsT: h:8080\r\nUPGRADE: WebSocket\r\n" +
			"connection: keep-alive, Upgrade\r\nSEC-WEBSOCKET-KEY:" + goodKey + "\r\n" +
			"sec-websocket-version: \t13 \r\n\r\n",
			Request{Path: "/a", Host: "h:8080", Key: goodKey}},
		{"connection split over lines", reqWith("GET / HTTP/1.1",
			map[string]string{"connection": "Connection: keep-alive"}, "Connection: upgrade"),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"upgrade list", reqWith("GET / HTTP/1.1",
			map[string]string{"upgrade": "Upgrade: foo/2, websocket"}),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"absolute uri", reqWith("GET wss://example.com/p/q?z HTTP/1.1", nil),
			Request{Path: "/p/q", RawQuery: "z", Host: "example.com", Key: goodKey}},
		{"absolute uri no path", reqWith("GET http://example.com HTTP/1.1", nil),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"absolute uri query only", reqWith("GET http://example.com?a=b HTTP/1.1", nil),
			Request{Path: "/", RawQuery: "a=b", Host: "example.com", Key: goodKey}},
		{"leading empty lines", "\r\n\r\n" + reqWith("GET / HTTP/1.1", nil),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"http/1.2", reqWith("GET / HTTP/1.2", nil),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"protocols over lines", reqWith("GET / HTTP/1.1", nil,
			"Sec-WebSocket-Protocol: a,, b ", "Sec-WebSocket-Protocol: c"),
			Request{Path: "/", Host: "example.com", Key: goodKey, Protocols: []string{"a", "b", "c"}}},
		{"other extension", reqWith("GET / HTTP/1.1", nil,
			"Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflatex"),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"deflate second", reqWith("GET / HTTP/1.1", nil,
			"Sec-WebSocket-Extensions: foo; a=1, Permessage-Deflate"),
			Request{Path: "/", Host: "example.com", Key: goodKey, DeflateOffered: true, Deflate: true}},
		{"content-length 0", reqWith("GET / HTTP/1.1", nil, "Content-Length: 0"),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
		{"obs-text value", reqWith("GET / HTTP/1.1", nil, "X-Name: caf\xc3\xa9"),
			Request{Path: "/", Host: "example.com", Key: goodKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, n, err := ParseUpgrade([]byte(tt.req), 4096)
			if err != nil || n != len(tt.req) {
				t.Fatalf("n=%d err=%v, want n=%d", n, err, len(tt.req))
			}
			if !reflect.DeepEqual(*req, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *req, tt.want)
			}
		})
	}
}

func TestParseUpgradeErrors(t *testing.T) {
	tests := []struct {
		name   string
		req    string
		status int
		reason string
	}{
		{"post", reqWith("POST / HTTP/1.1", nil), 405, "method not allowed"},
		{"lower-case get", reqWith("get / HTTP/1.1", nil), 405, "method not allowed"},
		{"http/1.0", reqWith("GET / HTTP/1.0", nil), 400, "HTTP/1.1 required"},
		{"no version", reqWith("GET /", nil), 400, "malformed request line"},
		{"bad version", reqWith("GET / HTTP/x.1", nil), 400, "malformed request line"},
		{"extra space", reqWith("GET  / HTTP/1.1", nil), 400, "malformed request line"},
		{"trailing space", reqWith("GET / HTTP/1.1 ", nil), 400, "malformed request line"},
		{"relative target", reqWith("GET chat HTTP/1.1", nil), 400, "invalid request target"},
		{"ftp target", reqWith("GET ftp://h/ HTTP/1.1", nil), 400, "invalid request target"},
		{"empty authority", reqWith("GET http:///x HTTP/1.1", nil), 400, "invalid request target"},
		{"fragment", reqWith("GET /a#b HTTP/1.1", nil), 400, "invalid request target"},
		{"control in target", reqWith("GET /a\x01 HTTP/1.1", nil), 400, "invalid request target"},
		{"no host", reqWith("GET / HTTP/1.1", map[string]string{"host": ""}), 400, "missing Host header"},
		{"empty host", reqWith("GET / HTTP/1.1", map[string]string{"host": "Host: "}), 400, "missing Host header"},
		{"two hosts", reqWith("GET / HTTP/1.1", nil, "Host: b"), 400, "duplicate Host header"},
		{"no upgrade", reqWith("GET / HTTP/1.1", map[string]string{"upgrade": ""}), 400, "missing Upgrade: websocket"},
		{"upgrade h2c", reqWith("GET / HTTP/1.1", map[string]string{"upgrade": "Upgrade: h2c"}), 400, "missing Upgrade: websocket"},
		{"no connection", reqWith("GET / HTTP/1.1", map[string]string{"connection": ""}), 400, "missing Connection: upgrade"},
		{"connection close", reqWith("GET / HTTP/1.1", map[string]string{"connection": "Connection: close"}), 400, "missing Connection: upgrade"},
		{"no key", reqWith("GET / HTTP/1.1", map[string]string{"key": ""}), 400, "missing Sec-WebSocket-Key"},
		{"empty key", reqWith("GET / HTTP/1.1", map[string]string{"key": "Sec-WebSocket-Key:"}), 400, "missing Sec-WebSocket-Key"},
		{"short key", reqWith("GET / HTTP/1.1", map[string]string{"key": "Sec-WebSocket-Key: dGhlIHNhbXBsZQ=="}), 400, "invalid Sec-WebSocket-Key"},
		{"key not base64", reqWith("GET / HTTP/1.1", map[string]string{"key": "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!!"}), 400, "invalid Sec-WebSocket-Key"},
		{"key 17 bytes", reqWith("GET / HTTP/1.1", map[string]string{"key": "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE="}), 400, "invalid Sec-WebSocket-Key"},
		{"two keys", reqWith("GET / HTTP/1.1", nil, "Sec-WebSocket-Key: "+goodKey), 400, "duplicate Sec-WebSocket-Key"},
		{"version 8", reqWith("GET / HTTP/1.1", map[string]string{"version": "Sec-WebSocket-Version: 8"}), 426, "unsupported websocket version"},
		{"version list", reqWith("GET / HTTP/1.1", map[string]string{"version": "Sec-WebSocket-Version: 13, 8"}), 426, "unsupported websocket version"},
		{"versions differ", reqWith("GET / HTTP/1.1", nil, "Sec-WebSocket-Version: 8"), 426, "unsupported websocket version"},
		{"no version header", reqWith("GET / HTTP/1.1", map[string]string{"version": ""}), 426, "missing Sec-WebSocket-Version"},
		{"space before colon", reqWith("GET / HTTP/1.1", nil, "X-A : b"), 400, "malformed header"},
		{"no colon", reqWith("GET / HTTP/1.1", nil, "X-A"), 400, "malformed header"},
		{"empty name", reqWith("GET / HTTP/1.1", nil, ": b"), 400, "malformed header"},
		{"control in value", reqWith("GET / HTTP/1.1", nil, "X-A: b\x00c"), 400, "malformed header"},
		{"folding", reqWith("GET / HTTP/1.1", nil, "X-A: b", " c"), 400, "obsolete header line folding"},
		{"body", reqWith("GET / HTTP/1.1", nil, "Content-Length: 5"), 400, "request body not allowed"},
		{"chunked", reqWith("GET / HTTP/1.1", nil, "Transfer-Encoding: chunked"), 400, "request body not allowed"},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF in request head"},
		{"bare LF incomplete", "GET / HTTP/1.1\r\nHost: a\n", 400, "bare LF in request head"},
		{"LF first", "\n", 400, "bare LF in request head"},
		{"empty head", "\r\n\r\n\r\nGET", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, n, err := ParseUpgrade([]byte(tt.req), 4096)
			if req != nil || n != 0 {
				t.Fatalf("got req=%+v n=%d, want error", req, n)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("err=%v, want incomplete", err)
				}
				return
			}
			if err == nil || err.Status != tt.status || err.Reason != tt.reason {
				t.Fatalf("err=%v, want %d %q", err, tt.status, tt.reason)
			}
		})
	}
}

func TestParseUpgradeByteByByte(t *testing.T) {
	buf := []byte(goodRequest)
	for i := 0; i < len(buf); i++ {
		req, n, err := ParseUpgrade(buf[:i], 4096)
		if req != nil || n != 0 || err != nil {
			t.Fatalf("prefix %d: req=%v n=%d err=%v, want incomplete", i, req, n, err)
		}
	}
	req, n, err := ParseUpgrade(buf, 4096)
	if err != nil || req == nil || n != len(buf) {
		t.Fatalf("full: n=%d err=%v", n, err)
	}
}

func TestParseUpgradeThenFrame(t *testing.T) {
	frame := maskedFrame(true, 0, OpText, []byte(`{"event":"auth"}`), [4]byte{1, 2, 3, 4})
	buf := append([]byte(goodRequest), frame...)
	req, n, err := ParseUpgrade(buf, 4096)
	if err != nil || req == nil || n != len(goodRequest) {
		t.Fatalf("n=%d err=%v, want n=%d", n, err, len(goodRequest))
	}
	var d Decoder
	f, m, ok, cerr := d.Next(buf[n:], 1<<20)
	if cerr != nil || !ok || m != len(frame) || string(f.Payload) != `{"event":"auth"}` {
		t.Fatalf("frame: %+v n=%d ok=%v err=%v", f, m, ok, cerr)
	}
}

func TestParseUpgradeTooLarge(t *testing.T) {
	const max = 256
	filler := "X-Filler: " + strings.Repeat("a", 300) + "\r\n"
	partial := []byte("GET / HTTP/1.1\r\n" + filler)

	if _, n, err := ParseUpgrade(partial[:max], max); n != 0 || err != nil {
		t.Fatalf("exactly max without end: n=%d err=%v, want incomplete", n, err)
	}
	if _, n, err := ParseUpgrade(partial[:max+1], max); n != 0 || err == nil || err.Status != 431 {
		t.Fatalf("max+1 without end: n=%d err=%v, want 431", n, err)
	}
	// The whole head is buffered but ends past the limit.
	whole := []byte(reqWith("GET / HTTP/1.1", nil, filler[:len(filler)-2]))
	if _, n, err := ParseUpgrade(whole, max); n != 0 || err == nil || err.Status != 431 {
		t.Fatalf("complete but long: n=%d err=%v, want 431", n, err)
	}
	if _, n, err := ParseUpgrade(whole, len(whole)); n != len(whole) || err != nil {
		t.Fatalf("head of exactly max: n=%d err=%v", n, err)
	}
	if _, n, err := ParseUpgrade(whole, len(whole)-1); n != 0 || err == nil || err.Status != 431 {
		t.Fatalf("head of max+1: n=%d err=%v, want 431", n, err)
	}
	// maxSize <= 0 takes the default.
	if _, n, err := ParseUpgrade(bytes.Repeat([]byte("a"), DefaultMaxHeadSize+1), 0); n != 0 || err == nil || err.Status != 431 {
		t.Fatalf("default limit: n=%d err=%v", n, err)
	}
}

func TestAcceptKey(t *testing.T) {
	// RFC 6455 1.3, as printed there (not "s3pPLMBiTxaQ9kYGJzzhZRbK+xo=",
	// a garbled copy of it).
	got := string(appendAcceptKey(nil, "dGhlIHNhbXBsZSBub25jZQ=="))
	if got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept = %q", got)
	}
	// A key too long for the stack array still hashes correctly.
	long := strings.Repeat("k", 100)
	if a, b := appendAcceptKey(nil, long), appendAcceptKey(nil, long); !bytes.Equal(a, b) || len(a) != 28 {
		t.Fatalf("long key: %q", a)
	}
}

func TestAppendAccept(t *testing.T) {
	out := AppendAccept([]byte("prefix"), goodKey)
	if !bytes.HasPrefix(out, []byte("prefix")) {
		t.Fatal("dst not kept")
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out[len("prefix"):])), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" ||
		resp.Header.Get("Connection") != "Upgrade" ||
		resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("response: %d %v", resp.StatusCode, resp.Header)
	}
	if !bytes.HasSuffix(out, []byte("\r\n\r\n")) {
		t.Fatal("head not terminated")
	}
	if allocs := testing.AllocsPerRun(100, func() { out = AppendAccept(out[:0], goodKey) }); allocs != 0 {
		t.Fatalf("AppendAccept allocs = %v", allocs)
	}
}

func TestAppendHTTPError(t *testing.T) {
	tests := []struct {
		err    *HTTPError
		status string
		header map[string]string
	}{
		{&HTTPError{400, "missing Sec-WebSocket-Key"}, "400 Bad Request", nil},
		{&HTTPError{426, "unsupported websocket version"}, "426 Upgrade Required",
			map[string]string{"Sec-WebSocket-Version": "13", "Upgrade": "websocket"}},
		{&HTTPError{405, "method not allowed"}, "405 Method Not Allowed", map[string]string{"Allow": "GET"}},
		{&HTTPError{431, "request header too large"}, "431 Request Header Fields Too Large", nil},
		{&HTTPError{503, "draining"}, "503 Service Unavailable", nil},
		{&HTTPError{418, ""}, "418 Error", nil},
	}
	for _, tt := range tests {
		out := AppendHTTPError(nil, tt.err)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("%v: %v", tt.err, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.Status != tt.status || string(body) != tt.err.Reason || !resp.Close ||
			resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("%v: status %q body %q close %v header %v", tt.err, resp.Status, body, resp.Close, resp.Header)
		}
		for k, v := range tt.header {
			if resp.Header.Get(k) != v {
				t.Fatalf("%v: header %s = %q, want %q", tt.err, k, resp.Header.Get(k), v)
			}
		}
		if tt.err.Status != 426 && resp.Header.Get("Sec-WebSocket-Version") != "" {
			t.Fatalf("%v: unexpected Sec-WebSocket-Version", tt.err)
		}
	}
}

func BenchmarkParseUpgrade(b *testing.B) {
	buf := []byte(goodRequest)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, _, err := ParseUpgrade(buf, 4096); err != nil {
			b.Fatal(err)
		}
	}
}
