// Package proxyproto reads the PROXY protocol header (versions 1 and 2,
// haproxy.org/download/2.9/doc/proxy-protocol.txt) a load balancer puts in
// front of a proxied TCP stream to say whom the connection is for.
//
// Like package ws it is a pure function over a byte slice: the event loop
// parses in place from gnet's inbound buffer, so nothing here reads from a
// connection, blocks or keeps a reference to the caller's buffer.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// MaxV1Len is the longest version 1 header, CRLF included (spec 2.1).
const MaxV1Len = 107

// v2Sig starts every version 2 header (spec 2.2).
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

var v1Prefix = []byte("PROXY ")

// Header is what a PROXY header says about the connection.
type Header struct {
	// Local: the header gives no client address (v1 UNKNOWN, v2 LOCAL or an
	// unsupported address family), so the connection's own peer address
	// stands: the balancer speaks for itself (a health check, say).
	Local bool
	// Src and Dst are the client's and the balancer's listening address
	// when Local is false. An IPv4-mapped IPv6 address is returned as is.
	Src, Dst netip.AddrPort
	// Version is 1 or 2.
	Version int
}

// Errors name the cause of a refused header; a caller logs them and closes
// the connection (a header is either exactly right or the peer is not the
// balancer it should be).
var (
	ErrMissing     = errors.New("no PROXY protocol header")
	ErrV1TooLong   = errors.New("PROXY v1 header longer than 107 bytes")
	ErrV1Syntax    = errors.New("malformed PROXY v1 header")
	ErrV1Address   = errors.New("bad address in PROXY v1 header")
	ErrV1Port      = errors.New("bad port in PROXY v1 header")
	ErrV2Version   = errors.New("PROXY v2 header with a version other than 2")
	ErrV2Command   = errors.New("PROXY v2 header with an unknown command")
	ErrV2Transport = errors.New("PROXY v2 header for a datagram transport")
	ErrV2Length    = errors.New("PROXY v2 header too short for its address family")
)

// Parse reads a PROXY header at the start of buf, which may hold any prefix
// of it followed by anything (the proxied stream).
//
// It returns n == 0 and no error while buf is a strict prefix of a header
// (Size tells how many bytes a version 2 header needs once its fixed part
// is in); an error as soon as buf cannot start a header; on success n is
// the header's length, and the proxied stream starts at buf[n:].
func Parse(buf []byte) (h Header, n int, err error) {
	switch {
	case hasPrefix(buf, v2Sig):
		if len(buf) < len(v2Sig) {
			return h, 0, nil
		}
		return parseV2(buf)
	case hasPrefix(buf, v1Prefix):
		if len(buf) < len(v1Prefix) {
			return h, 0, nil
		}
		return parseV1(buf)
	}
	return h, 0, ErrMissing
}

// Size is the length of the version 2 header buf starts with, once its 16
// fixed bytes are there; 0 otherwise (a version 1 header never needs more
// than MaxV1Len bytes).
func Size(buf []byte) int {
	if len(buf) < 16 || !bytes.HasPrefix(buf, v2Sig) {
		return 0
	}
	return 16 + int(binary.BigEndian.Uint16(buf[14:16]))
}

// hasPrefix reports whether buf and p agree on their common length: buf
// may still become p (or is p followed by more).
func hasPrefix(buf, p []byte) bool {
	m := min(len(buf), len(p))
	return bytes.Equal(buf[:m], p[:m])
}

// parseV1 reads "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
// "PROXY UNKNOWN[ anything]\r\n" (spec 2.1): single spaces, decimal ports
// without leading zeros, addresses in the family's canonical text form.
func parseV1(buf []byte) (h Header, n int, err error) {
	h.Version = 1
	window := buf[:min(len(buf), MaxV1Len)]
	end := bytes.IndexByte(window, '\n')
	if end < 0 {
		if len(buf) >= MaxV1Len {
			return h, 0, ErrV1TooLong
		}
		// A CR may only come right before the LF.
		if i := bytes.IndexByte(window, '\r'); i >= 0 && i != len(window)-1 {
			return h, 0, ErrV1Syntax
		}
		return h, 0, nil
	}
	if end == 0 || buf[end-1] != '\r' {
		return h, 0, ErrV1Syntax
	}
	line := buf[len(v1Prefix) : end-1]
	n = end + 1
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The sender knows no address: the rest is to be ignored.
		h.Local = true
		return h, n, nil
	case "TCP4", "TCP6":
	default:
		return h, 0, ErrV1Syntax
	}
	f := bytes.Split(rest, []byte(" "))
	if len(f) != 4 {
		return h, 0, ErrV1Syntax
	}
	v6 := string(proto) == "TCP6"
	src, ok1 := v1Addr(f[0], v6)
	dst, ok2 := v1Addr(f[1], v6)
	if !ok1 || !ok2 {
		return h, 0, ErrV1Address
	}
	sp, ok1 := v1Port(f[2])
	dp, ok2 := v1Port(f[3])
	if !ok1 || !ok2 {
		return h, 0, ErrV1Port
	}
	h.Src, h.Dst = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, n, nil
}

func v1Addr(b []byte, v6 bool) (netip.Addr, bool) {
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" || a.Is6() != v6 {
		return netip.Addr{}, false
	}
	return a, true
}

func v1Port(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(v), err == nil
}

// parseV2 reads the binary header (spec 2.2): signature, version/command,
// family/transport, length, addresses, then TLVs, which are skipped.
func parseV2(buf []byte) (h Header, n int, err error) {
	h.Version = 2
	if len(buf) >= 13 {
		switch vc := buf[12]; {
		case vc>>4 != 2:
			return h, 0, ErrV2Version
		case vc&0xf > 1:
			return h, 0, ErrV2Command
		}
	}
	if len(buf) >= 14 && buf[13]&0xf == 2 {
		return h, 0, ErrV2Transport
	}
	size := Size(buf)
	if size == 0 || len(buf) < size {
		return h, 0, nil
	}
	body := buf[16:size]
	if buf[12]&0xf == 0 {
		// LOCAL: the balancer's own connection; addresses are ignored.
		h.Local = true
		return h, size, nil
	}
	switch buf[13] >> 4 {
	case 1: // AF_INET
		if len(body) < 12 {
			return h, 0, ErrV2Length
		}
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case 2: // AF_INET6
		if len(body) < 36 {
			return h, 0, ErrV2Length
		}
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	default:
		// AF_UNSPEC or AF_UNIX: no IP address to go by; the spec lets
		// the receiver use the connection's own addresses.
		h.Local = true
	}
	return h, size, nil
}
