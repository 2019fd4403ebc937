package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// v2 builds a version 2 header: command (0 LOCAL, 1 PROXY), family and
// transport byte, the address block and TLVs.
func v2(cmd, famTrans byte, addr []byte, tlvs ...[]byte) []byte {
	b := append([]byte(nil), v2Sig...)
	b = append(b, 0x20|cmd, famTrans)
	body := append([]byte(nil), addr...)
	for _, t := range tlvs {
		body = append(body, t...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func tlv(typ byte, val []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

func inet4(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func inet6(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

const get = "GET / HTTP/1.1\r\n"

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	longTLV := tlv(0x05, bytes.Repeat([]byte("u"), 20000))
	cases := []struct {
		name  string
		in    []byte
		want  Header
		n     int
		err   error
		after string // what must follow the header
	}{
		{name: "v1 tcp4", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.9 56324 443\r\n" + get),
			want: Header{Version: 1, Src: ap("10.0.0.1:56324"), Dst: ap("10.0.0.9:443")}, after: get},
		{name: "v1 tcp6", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n" + get),
			want: Header{Version: 1, Src: ap("[2001:db8::1]:65535"), Dst: ap("[2001:db8::2]:0")}, after: get},
		{name: "v1 tcp6 mapped", in: []byte("PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n"),
			want: Header{Version: 1, Src: ap("[::ffff:10.0.0.1]:1"), Dst: ap("[::1]:2")}},
		{name: "v1 unknown", in: []byte("PROXY UNKNOWN\r\n" + get), want: Header{Version: 1, Local: true}, after: get},
		{name: "v1 unknown with addresses", in: []byte("PROXY UNKNOWN ffff:f...f:ffff 1 2 3\r\n"), want: Header{Version: 1, Local: true}},
		{name: "v1 longest", in: []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			want: Header{Version: 1, Src: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Dst: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{name: "v1 partial", in: []byte("PROXY TCP4 10.0.0.1 10.0"), want: Header{Version: 1}},
		{name: "v1 partial prefix", in: []byte("PRO")},
		{name: "v1 partial CR", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.9 1 2\r"), want: Header{Version: 1}},
		{name: "v1 bare LF", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.9 1 2\n"), err: ErrV1Syntax},
		{name: "v1 CR inside", in: []byte("PROXY TCP4 10.0.0.1\r 10.0"), err: ErrV1Syntax},
		{name: "v1 too long", in: append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 100)...), err: ErrV1TooLong},
		{name: "v1 tcp4 with v6", in: []byte("PROXY TCP4 ::1 ::1 1 2\r\n"), err: ErrV1Address},
		{name: "v1 tcp6 with v4", in: []byte("PROXY TCP6 10.0.0.1 10.0.0.2 1 2\r\n"), err: ErrV1Address},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), err: ErrV1Address},
		{name: "v1 leading zero octet", in: []byte("PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n"), err: ErrV1Address},
		{name: "v1 port too big", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n"), err: ErrV1Port},
		{name: "v1 port leading zero", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n"), err: ErrV1Port},
		{name: "v1 port sign", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 +1 2\r\n"), err: ErrV1Port},
		{name: "v1 double space", in: []byte("PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n"), err: ErrV1Syntax},
		{name: "v1 missing port", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n"), err: ErrV1Syntax},
		{name: "v1 udp", in: []byte("PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n"), err: ErrV1Syntax},
		{name: "v1 lower case", in: []byte("proxy TCP4 10.0.0.1 10.0.0.2 1 2\r\n"), err: ErrMissing},
		{name: "plain upgrade", in: []byte(get), err: ErrMissing},
		{name: "empty", in: nil},

		{name: "v2 proxy tcp4", in: append(v2(1, 0x11, inet4("10.0.0.1", "10.0.0.9", 56324, 443)), get...),
			want: Header{Version: 2, Src: ap("10.0.0.1:56324"), Dst: ap("10.0.0.9:443")}, after: get},
		{name: "v2 proxy tcp6", in: v2(1, 0x21, inet6("2001:db8::1", "2001:db8::2", 1, 2)),
			want: Header{Version: 2, Src: ap("[2001:db8::1]:1"), Dst: ap("[2001:db8::2]:2")}},
		{name: "v2 TLVs skipped", in: append(v2(1, 0x11, inet4("10.0.0.1", "10.0.0.9", 1, 2), tlv(0x01, []byte("http/1.1")), tlv(0x04, nil)), get...),
			want: Header{Version: 2, Src: ap("10.0.0.1:1"), Dst: ap("10.0.0.9:2")}, after: get},
		{name: "v2 large TLV", in: append(v2(1, 0x11, inet4("10.0.0.1", "10.0.0.9", 1, 2), longTLV), get...),
			want: Header{Version: 2, Src: ap("10.0.0.1:1"), Dst: ap("10.0.0.9:2")}, after: get},
		{name: "v2 local", in: append(v2(0, 0x00, nil), get...), want: Header{Version: 2, Local: true}, after: get},
		{name: "v2 local with addresses", in: v2(0, 0x11, inet4("10.0.0.1", "10.0.0.9", 1, 2)), want: Header{Version: 2, Local: true}},
		{name: "v2 unspec", in: v2(1, 0x00, nil), want: Header{Version: 2, Local: true}},
		{name: "v2 unix", in: v2(1, 0x31, make([]byte, 216)), want: Header{Version: 2, Local: true}},
		{name: "v2 partial sig", in: v2Sig[:5]},
		{name: "v2 partial fixed", in: v2(1, 0x11, nil)[:14], want: Header{Version: 2}},
		{name: "v2 partial body", in: v2(1, 0x11, inet4("10.0.0.1", "10.0.0.9", 1, 2))[:20], want: Header{Version: 2}},
		{name: "v2 version 1", in: append(append([]byte(nil), v2Sig...), 0x11, 0x11, 0, 0), err: ErrV2Version},
		{name: "v2 command 2", in: append(append([]byte(nil), v2Sig...), 0x22, 0x11, 0, 0), err: ErrV2Command},
		{name: "v2 udp", in: v2(1, 0x12, inet4("10.0.0.1", "10.0.0.9", 1, 2)), err: ErrV2Transport},
		{name: "v2 short inet", in: v2(1, 0x11, make([]byte, 11)), err: ErrV2Length},
		{name: "v2 short inet6", in: v2(1, 0x21, make([]byte, 35)), err: ErrV2Length},
		{name: "v2 bad sig", in: []byte("\r\n\r\n\x00\r\nQUIT\r"), err: ErrMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := Parse(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if h != tc.want {
				t.Fatalf("header = %+v, want %+v", h, tc.want)
			}
			if n > 0 && string(tc.in[n:]) != tc.after {
				t.Fatalf("after the header: %q, want %q", tc.in[n:], tc.after)
			}
		})
	}
}

// TestParseIncremental: every strict prefix of a valid header is "need
// more", never an error, so a header split across TCP segments is read.
func TestParseIncremental(t *testing.T) {
	for _, full := range [][]byte{
		[]byte("PROXY TCP4 10.0.0.1 10.0.0.9 56324 443\r\n"),
		[]byte("PROXY UNKNOWN\r\n"),
		v2(1, 0x21, inet6("2001:db8::1", "2001:db8::2", 1, 2), tlv(0x02, []byte("example.com"))),
		v2(0, 0x00, nil),
	} {
		for i := range len(full) {
			if _, n, err := Parse(full[:i]); n != 0 || err != nil {
				t.Fatalf("%q[:%d]: n=%d err=%v, want need-more", full, i, n, err)
			}
		}
		if _, n, err := Parse(full); n != len(full) || err != nil {
			t.Fatalf("%q: n=%d err=%v", full, n, err)
		}
	}
}

func TestSize(t *testing.T) {
	h := v2(1, 0x11, inet4("10.0.0.1", "10.0.0.9", 1, 2), tlv(0x05, make([]byte, 30000)))
	if got := Size(h[:15]); got != 0 {
		t.Fatalf("Size of 15 bytes = %d, want 0", got)
	}
	if got := Size(h[:16]); got != len(h) {
		t.Fatalf("Size = %d, want %d", got, len(h))
	}
	if got := Size([]byte("PROXY TCP4 10.0.0.1 10.0.0.9 1 2\r\n")); got != 0 {
		t.Fatalf("Size of v1 = %d", got)
	}
}

// FuzzParse: Parse never panics, never claims more than it was given, and
// agrees with itself on a prefix: a header found in buf is found, with the
// same result, in buf followed by anything, and every shorter prefix of it
// is "need more".
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 10.0.0.1 10.0.0.9 56324 443\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(1, 0x11, inet4("10.0.0.1", "10.0.0.9", 1, 2), tlv(1, []byte("h2"))))
	f.Add(v2(1, 0x21, inet6("::1", "::2", 1, 2)))
	f.Add(v2(0, 0, nil))
	f.Fuzz(func(t *testing.T, buf []byte) {
		h, n, err := Parse(buf)
		if n < 0 || n > len(buf) || err != nil && n != 0 {
			t.Fatalf("n=%d err=%v len=%d", n, err, len(buf))
		}
		if n == 0 {
			return
		}
		if h.Version != 1 && h.Version != 2 || h.Local && (h.Src.IsValid() || h.Dst.IsValid()) || !h.Local && !h.Src.IsValid() {
			t.Fatalf("inconsistent header %+v", h)
		}
		h2, n2, err2 := Parse(append(buf[:n:n], "trailing bytes"...))
		if h2 != h || n2 != n || err2 != nil {
			t.Fatalf("with trailing bytes: %+v %d %v, want %+v %d", h2, n2, err2, h, n)
		}
		if _, m, err := Parse(buf[:n-1]); m != 0 || err != nil {
			t.Fatalf("prefix of a header: n=%d err=%v", m, err)
		}
	})
}
