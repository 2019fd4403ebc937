// Package ws is the server side of RFC 6455: the HTTP upgrade and the frame
// codec, written as pure functions over byte slices.
//
// The event loop parses in place from gnet's inbound buffer (Peek, parse,
// Discard), so nothing here reads from a connection, blocks, starts a
// goroutine or keeps a reference to the caller's buffer beyond what the
// documentation of each function says.
package ws

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
)

// DefaultMaxHeadSize is the request head limit ParseUpgrade applies when it
// is given no positive limit; it matches what common proxies accept.
const DefaultMaxHeadSize = 8192

// Request is what mako needs from an upgrade request. Every string is a
// copy: the inbound buffer it was parsed from is reused by the event loop.
type Request struct {
	Path     string // request-target path, without the query ("/" for an absolute-form target without a path)
	RawQuery string // after '?', not decoded; empty when there is none
	Host     string
	Origin   string // empty when the client sent none (non-browser clients)
	Key      string // Sec-WebSocket-Key, validated as base64 of 16 bytes

	// Protocols lists the Sec-WebSocket-Protocol offers in order. mako
	// selects none, which clients must accept (RFC 6455 4.2.2).
	Protocols []string

	// DeflateOffered reports a permessage-deflate offer of any kind, even
	// one mako declines.
	DeflateOffered bool

	// Deflate reports a permessage-deflate offer (RFC 7692) that mako can
	// accept in its stateless form: no context takeover either way, a
	// 32 KiB window. Offers are taken in the client's order of preference;
	// one with a parameter mako cannot honour (server_max_window_bits below
	// 15, an unknown or repeated parameter, a bad value) is skipped. The
	// server that wants compression answers with AppendAcceptDeflate and
	// sets Decoder.Deflate; it may also ignore the offer (AppendAccept).
	Deflate bool

	// deflateWindow: the accepted offer named server_max_window_bits=15,
	// which the response must repeat (RFC 7692 7.1.2.1).
	deflateWindow bool
}

// HTTPError is a failed upgrade: the server answers with Status and Reason
// (see AppendHTTPError) and closes the connection.
//
// The values ParseUpgrade returns are shared; do not modify them.
type HTTPError struct {
	Status int
	Reason string
}

func (e *HTTPError) Error() string {
	return "ws upgrade: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// The errors are package values so that a flood of bad handshakes costs no
// allocation beyond the request itself.
var (
	errHeadTooLarge   = &HTTPError{431, "request header too large"}
	errBareLF         = &HTTPError{400, "bare LF in request head"}
	errBadRequestLine = &HTTPError{400, "malformed request line"}
	errMethod         = &HTTPError{405, "method not allowed"}
	errHTTPVersion    = &HTTPError{400, "HTTP/1.1 required"}
	errBadTarget      = &HTTPError{400, "invalid request target"}
	errBadHeader      = &HTTPError{400, "malformed header"}
	errFolding        = &HTTPError{400, "obsolete header line folding"}
	errNoHost         = &HTTPError{400, "missing Host header"}
	errDupHost        = &HTTPError{400, "duplicate Host header"}
	errNoUpgrade      = &HTTPError{400, "missing Upgrade: websocket"}
	errNoConnUpgrade  = &HTTPError{400, "missing Connection: upgrade"}
	errNoKey          = &HTTPError{400, "missing Sec-WebSocket-Key"}
	errDupKey         = &HTTPError{400, "duplicate Sec-WebSocket-Key"}
	errBadKey         = &HTTPError{400, "invalid Sec-WebSocket-Key"}
	errVersion        = &HTTPError{426, "unsupported websocket version"}
	errNoVersion      = &HTTPError{426, "missing Sec-WebSocket-Version"}
	errBody           = &HTTPError{400, "request body not allowed"}
)

// ParseUpgrade looks for a complete HTTP/1.1 upgrade request head at the
// start of buf, which may hold any prefix of it.
//
// It returns n == 0 and no error while the head is incomplete and buf holds
// at most maxSize bytes; 431 once more than maxSize bytes arrived without
// the end of the head (or the head itself is longer). On success n is the
// length of the head: bytes after it belong to the frame decoder.
//
// A bare LF fails at once rather than waiting for a CRLF CRLF that an
// LF-only client would never send.
func ParseUpgrade(buf []byte, maxSize int) (req *Request, n int, err *HTTPError) {
	if maxSize <= 0 {
		maxSize = DefaultMaxHeadSize
	}
	// RFC 9112 2.2: ignore empty lines before the request line.
	start := 0
	for start+1 < len(buf) && buf[start] == '\r' && buf[start+1] == '\n' {
		start += 2
	}
	window := buf
	if len(window) > maxSize {
		window = window[:maxSize]
	}
	end := -1
	for i := start; i < len(window); {
		j := bytes.IndexByte(window[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || window[i-1] != '\r' {
			return nil, 0, errBareLF
		}
		if i-start >= 3 && window[i-2] == '\n' && window[i-3] == '\r' {
			end = i + 1
			break
		}
		i++
	}
	if end < 0 {
		if len(buf) > maxSize {
			return nil, 0, errHeadTooLarge
		}
		return nil, 0, nil
	}
	req, err = parseHead(buf[start : end-2]) // keep the CRLF of the last header line
	if err != nil {
		return nil, 0, err
	}
	return req, end, nil
}

// parseHead parses a request line and header lines, each ending in CRLF.
func parseHead(head []byte) (*Request, *HTTPError) {
	line, rest := cutLine(head)

	// request-line = method SP request-target SP HTTP-version
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, errBadRequestLine
	}
	method := line[:sp1]
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return nil, errBadRequestLine
	}
	sp2 += sp1 + 1
	target, version := line[sp1+1:sp2], line[sp2+1:]
	if !isToken(method) || bytes.IndexByte(version, ' ') >= 0 {
		return nil, errBadRequestLine
	}
	major, minor, ok := parseVersion(version)
	if !ok {
		return nil, errBadRequestLine
	}
	if string(method) != "GET" { // methods are case-sensitive (RFC 9110 9.1)
		return nil, errMethod
	}
	if major < 1 || major == 1 && minor < 1 {
		return nil, errHTTPVersion
	}
	path, query, ok := splitTarget(target)
	if !ok {
		return nil, errBadTarget
	}

	var (
		host, origin, key, ver []byte
		seenHost, seenKey      bool
		seenVer, badVer        bool
		upgrade, connUpgrade   bool
		protos                 []string
		offered, deflate       bool
		window                 bool
	)
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		if line[0] == ' ' || line[0] == '\t' {
			return nil, errFolding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			// Also rejects whitespace before the colon (RFC 9112 5.1).
			return nil, errBadHeader
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validValue(value) {
			return nil, errBadHeader
		}
		switch {
		case equalFold(name, "host"):
			if seenHost {
				return nil, errDupHost
			}
			seenHost, host = true, value
		case equalFold(name, "upgrade"):
			upgrade = upgrade || hasToken(value, "websocket")
		case equalFold(name, "connection"):
			connUpgrade = connUpgrade || hasToken(value, "upgrade")
		case equalFold(name, "sec-websocket-key"):
			if seenKey {
				return nil, errDupKey
			}
			seenKey, key = true, value
		case equalFold(name, "sec-websocket-version"):
			if seenVer && !bytes.Equal(ver, value) {
				badVer = true
			}
			seenVer, ver = true, value
		case equalFold(name, "origin"):
			origin = value
		case equalFold(name, "sec-websocket-protocol"):
			protos = appendList(protos, value)
		case equalFold(name, "sec-websocket-extensions"):
			// The first acceptable offer wins, across header lines.
			o, ok, w := negotiateDeflate(value)
			offered = offered || o
			if ok && !deflate {
				deflate, window = true, w
			}
		case equalFold(name, "content-length"):
			// A GET upgrade has no body; one announced would be read as
			// frames. Transfer-Encoding is refused for the same reason.
			if string(value) != "0" {
				return nil, errBody
			}
		case equalFold(name, "transfer-encoding"):
			return nil, errBody
		}
	}

	switch {
	case !seenHost || len(host) == 0:
		return nil, errNoHost
	case !upgrade:
		return nil, errNoUpgrade
	case !connUpgrade:
		return nil, errNoConnUpgrade
	case !seenVer:
		return nil, errNoVersion
	case badVer || string(ver) != "13":
		return nil, errVersion
	case !seenKey || len(key) == 0:
		return nil, errNoKey
	case !validKey(key):
		return nil, errBadKey
	}
	// One allocation holds every copied field: a reconnect storm is
	// thousands of handshakes per loop turn.
	var sb strings.Builder
	sb.Grow(len(path) + len(query) + len(host) + len(origin) + len(key))
	sb.Write(path)
	sb.Write(query)
	sb.Write(host)
	sb.Write(origin)
	sb.Write(key)
	all := sb.String()
	cut := func(n int) string {
		s := all[:n]
		all = all[n:]
		return s
	}
	return &Request{
		Path:           cut(len(path)),
		RawQuery:       cut(len(query)),
		Host:           cut(len(host)),
		Origin:         cut(len(origin)),
		Key:            cut(len(key)),
		Protocols:      protos,
		DeflateOffered: offered,
		Deflate:        deflate,
		deflateWindow:  window,
	}, nil
}

// cutLine splits off the first CRLF-terminated line; the caller guarantees
// b ends with CRLF and has no bare LF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	return b[:i-1], b[i+1:]
}

func parseVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		!isDigit(v[5]) || !isDigit(v[7]) {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// splitTarget accepts origin-form and, as RFC 6455 4.1 allows, an absolute
// http(s)/ws(s) URI, whose authority is dropped (Host is authoritative).
func splitTarget(t []byte) (path, query []byte, ok bool) {
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c == '#' {
			return nil, nil, false
		}
	}
	if len(t) == 0 {
		return nil, nil, false
	}
	if t[0] != '/' {
		i := bytes.Index(t, []byte("://"))
		if i <= 0 {
			return nil, nil, false
		}
		s := t[:i]
		if !equalFold(s, "http") && !equalFold(s, "https") &&
			!equalFold(s, "ws") && !equalFold(s, "wss") {
			return nil, nil, false
		}
		t = t[i+3:]
		j := bytes.IndexAny(t, "/?")
		if j == 0 { // empty authority
			return nil, nil, false
		}
		if j < 0 {
			return []byte("/"), nil, true
		}
		t = t[j:]
		if t[0] == '?' {
			return []byte("/"), t[1:], true
		}
	}
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		return t[:q], t[q+1:], true
	}
	return t, nil, true
}

// tchar per RFC 9110 5.6.2.
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// validValue rejects control characters other than HTAB; obs-text (bytes
// >= 0x80) is allowed as RFC 9110 5.5 requires.
func validValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares an ASCII header name with a lower-case literal.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated list holds tok
// (case-insensitively). The list elements of Upgrade may carry a
// "/version" suffix (RFC 9110 7.8); "websocket/13" is not websocket's
// registered form, so a suffixed element does not match.
func hasToken(list []byte, tok string) bool {
	for len(list) > 0 {
		var elem []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			elem, list = list[:i], list[i+1:]
		} else {
			elem, list = list, nil
		}
		if equalFold(trimOWS(elem), tok) {
			return true
		}
	}
	return false
}

func appendList(dst []string, list []byte) []string {
	for len(list) > 0 {
		var elem []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			elem, list = list[:i], list[i+1:]
		} else {
			elem, list = list, nil
		}
		if elem = trimOWS(elem); len(elem) > 0 {
			dst = append(dst, string(elem))
		}
	}
	return dst
}

// validKey checks RFC 6455 4.2.1 item 5: base64 of a 16-byte nonce.
func validKey(k []byte) bool {
	if len(k) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], k)
	return err == nil && n == 16
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AppendAccept appends the 101 response completing the handshake for key
// (as ParseUpgrade returned it). No subprotocol or extension is selected.
func AppendAccept(dst []byte, key string) []byte {
	dst = appendAcceptHead(dst, key)
	return append(dst, "\r\n\r\n"...)
}

// deflateResponse is the only permessage-deflate mako agrees to: every
// message compressed on its own, so that no socket keeps a compressor or
// a window and one compressed frame serves every subscriber. The server
// may add client_no_context_takeover to any offer (RFC 7692 7.1.1.2).
const deflateResponse = "\r\nSec-WebSocket-Extensions: permessage-deflate; " +
	"server_no_context_takeover; client_no_context_takeover"

// AppendAcceptDeflate is AppendAccept for req, selecting permessage-deflate
// when req.Deflate is set (clear it to refuse compression). After writing
// it with the extension, set Decoder.Deflate and send messages either
// plain or with AppendCompressedFrame.
func AppendAcceptDeflate(dst []byte, req *Request) []byte {
	dst = appendAcceptHead(dst, req.Key)
	if req.Deflate {
		dst = append(dst, deflateResponse...)
		if req.deflateWindow {
			dst = append(dst, "; server_max_window_bits=15"...)
		}
	}
	return append(dst, "\r\n\r\n"...)
}

func appendAcceptHead(dst []byte, key string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	return appendAcceptKey(dst, key)
}

func appendAcceptKey(dst []byte, key string) []byte {
	// A fixed array keeps the hashing off the heap for any valid key.
	var in [64]byte
	var sum [sha1.Size]byte
	if len(key)+len(acceptGUID) <= len(in) {
		n := copy(in[:], key)
		n += copy(in[n:], acceptGUID)
		sum = sha1.Sum(in[:n])
	} else {
		sum = sha1.Sum([]byte(key + acceptGUID))
	}
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// AppendHTTPError appends a complete response for a failed upgrade: the
// reason as a text/plain body and Connection: close, since the server
// closes after writing it. 426 carries Sec-WebSocket-Version: 13 (RFC 6455
// 4.4) and 405 carries Allow: GET (RFC 9110 15.5.6).
func AppendHTTPError(dst []byte, e *HTTPError) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(e.Status)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(e.Reason)), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	switch e.Status {
	case 426:
		dst = append(dst, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"...)
	case 405:
		dst = append(dst, "Allow: GET\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, e.Reason...)
}

// statusText covers the statuses an upgrade can fail with; a table avoids
// linking net/http into the hot package for one function.
func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}
