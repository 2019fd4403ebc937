package ws

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// feedAll runs the incremental check over pieces; ok means every piece was
// accepted and the text ends at a rune boundary.
func feedAll(pieces ...[]byte) bool {
	var s utf8State
	for _, p := range pieces {
		if !s.feed(p) {
			return false
		}
	}
	return s.complete()
}

// utf8Alphabet holds every byte at which a range in the UTF-8 table
// (Unicode 15, table 3-7) begins or ends, and their neighbours.
var utf8Alphabet = []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
	0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff}

// TestUTF8StateExhaustive: over every sequence of up to four bytes from
// the boundary alphabet, fed whole, byte by byte, and split in two, the
// incremental check agrees with utf8.Valid, and a byte-by-byte feed fails
// at the first byte from which no continuation can be valid.
func TestUTF8StateExhaustive(t *testing.T) {
	var seq []byte
	var walk func(depth int)
	walk = func(depth int) {
		want := utf8.Valid(seq)
		if got := feedAll(seq); got != want {
			t.Fatalf("% x whole: %v, utf8.Valid %v", seq, got, want)
		}
		for i := 0; i <= len(seq); i++ {
			if got := feedAll(seq[:i], seq[i:]); got != want {
				t.Fatalf("% x split at %d: %v, utf8.Valid %v", seq, i, got, want)
			}
		}
		var s utf8State
		for i := range seq {
			ok := s.feed(seq[i : i+1])
			// A prefix can still become valid iff appending the rest of
			// its last rune (at most 3 bytes, any valid tail) can make it.
			if ok != canComplete(seq[:i+1]) {
				t.Fatalf("% x: byte %d accepted=%v, but completable=%v", seq, i, ok, !ok)
			}
			if !ok {
				break
			}
		}
		if depth == 4 {
			return
		}
		for _, c := range utf8Alphabet {
			seq = append(seq, c)
			walk(depth + 1)
			seq = seq[:len(seq)-1]
		}
	}
	walk(0)
}

// canComplete reports whether some bytes appended to p make it valid.
func canComplete(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for _, tail := range [][]byte{{0x80}, {0x80, 0x80}, {0x80, 0x80, 0x80}, {0x90}, {0x90, 0x80}, {0x90, 0x80, 0x80}, {0xa0}, {0xa0, 0x80}} {
		if utf8.Valid(append(bytes.Clone(p), tail...)) {
			return true
		}
	}
	return false
}

func TestUTF8StateRandomSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	texts := []string{
		"", "plain ascii", "café", "€uro", "😀 emoji", strings.Repeat("é€😀a", 1000),
		"a\xffb", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "caf\xc3", strings.Repeat("é", 5000) + "\xc3",
		strings.Repeat("x", 10000) + "\xe2\x82\x28" + strings.Repeat("y", 100),
	}
	for _, s := range texts {
		want := utf8.ValidString(s)
		for range 200 {
			var pieces [][]byte
			rest := []byte(s)
			for len(rest) > 0 {
				k := 1 + r.IntN(min(len(rest), 1+r.IntN(64)))
				pieces = append(pieces, rest[:k])
				rest = rest[k:]
			}
			if got := feedAll(pieces...); got != want {
				t.Fatalf("%.40q in %d pieces: %v, want %v", s, len(pieces), got, want)
			}
		}
	}
}

// bigTextHeader is the masked header of a text (or continuation) frame
// announcing n bytes, and the mask to use for its payload.
func bigTextHeader(fin bool, op Op, n int) ([]byte, [4]byte) {
	f := maskedFrame(fin, 0, op, make([]byte, n), testMask)
	return f[:len(f)-n], testMask
}

func masked(p []byte, mask [4]byte, off int) []byte {
	out := bytes.Clone(p)
	for i := range out {
		out[i] ^= mask[(off+i)%4]
	}
	return out
}

// TestDecoderUTF8FailFast: invalid text fails with 1007 as soon as the bad
// bytes are given to Next, not once the frame or message is complete.
func TestDecoderUTF8FailFast(t *testing.T) {
	t.Run("first bytes of a 1 MiB frame", func(t *testing.T) {
		var d Decoder
		hdr, mask := bigTextHeader(true, OpText, 1<<20)
		_, n, ok, err := d.Next(append(bytes.Clone(hdr), masked([]byte("\xff\xfe"), mask, 0)...), 2<<20)
		if err != errUTF8 || n != 0 || ok {
			t.Fatalf("n=%d ok=%v err=%v, want 1007", n, ok, err)
		}
		if d.InProgress() || d.msg != nil {
			t.Fatal("state kept after the error")
		}
	})
	t.Run("after valid pieces, a rune broken across pieces", func(t *testing.T) {
		var d Decoder
		hdr, mask := bigTextHeader(true, OpText, 1<<20)
		valid := []byte(strings.Repeat("é€😀", 1000) + "\xf0\x9f")
		if _, n, ok, err := d.Next(bytes.Clone(hdr), 2<<20); err != nil || ok || n != len(hdr) {
			t.Fatalf("header: n=%d ok=%v err=%v", n, ok, err)
		}
		off := 0
		for off < len(valid) {
			k := min(777, len(valid)-off)
			if _, n, ok, err := d.Next(masked(valid[off:off+k], mask, off), 2<<20); err != nil || ok || n != k {
				t.Fatalf("piece at %d: n=%d ok=%v err=%v", off, n, ok, err)
			}
			off += k
		}
		if _, _, _, err := d.Next(masked([]byte("\x98\x80x"), mask, off), 2<<20); err != nil {
			t.Fatalf("rune completed: %v", err)
		}
		off += 3
		if _, _, _, err := d.Next(masked([]byte("\xf0\x28"), mask, off), 2<<20); err != errUTF8 {
			t.Fatalf("broken rune: err=%v, want 1007", err)
		}
	})
	t.Run("second fragment", func(t *testing.T) {
		var d Decoder
		if _, n, ok, err := d.Next(text(false, "caf"), 100); err != nil || ok || n == 0 {
			t.Fatalf("first fragment: n=%d ok=%v err=%v", n, ok, err)
		}
		if _, _, _, err := d.Next(cont(false, "\xc3("), 100); err != errUTF8 {
			t.Fatalf("second fragment: err=%v, want 1007 before the last", err)
		}
	})
	t.Run("rune cut at the end of the message", func(t *testing.T) {
		var d Decoder
		hdr, mask := bigTextHeader(true, OpText, 3)
		if _, _, _, err := d.Next(append(bytes.Clone(hdr), masked([]byte("a\xe2"), mask, 0)...), 100); err != nil {
			t.Fatalf("first piece: %v", err)
		}
		if _, _, _, err := d.Next(masked([]byte("\x82"), mask, 2), 100); err != errUTF8 {
			t.Fatalf("end: err=%v, want 1007", err)
		}
	})
	t.Run("compressed: stops at the bad byte", func(t *testing.T) {
		// 4 MiB of 0xff inflates past the 1 MiB bound, but the first
		// byte already fails: 1007, before the 1009 a valid text would
		// get.
		d := Decoder{Deflate: true}
		z := deflateRaw(t, bytes.Repeat([]byte{0xff}, 4<<20))
		if _, _, _, err := d.Next(maskedFrame(true, 4, OpText, z, testMask), 1<<20); err != errUTF8 {
			t.Fatalf("err=%v, want 1007", err)
		}
		z = deflateRaw(t, bytes.Repeat([]byte{'a'}, 4<<20))
		if _, _, _, err := d.Next(maskedFrame(true, 4, OpText, z, testMask), 1<<20); err != errTooBig {
			t.Fatalf("valid text: err=%v, want 1009", err)
		}
	})
}

// TestDecoderStreamedText: a text frame given to Next in pieces comes out
// as the same message as when given whole; binary frames are not streamed.
func TestDecoderStreamedText(t *testing.T) {
	payload := []byte(strings.Repeat("é€😀ascii", 20000))
	for _, op := range []Op{OpText, OpBinary} {
		frame := maskedFrame(true, 0, op, payload, testMask)
		var d Decoder
		start, consumed := 0, 0
		var got []byte
		for end := 1; end <= len(frame) && got == nil; end += 1 + end%4001 {
			end = min(end, len(frame))
			f, n, ok, err := d.Next(frame[start:end], 1<<20)
			if err != nil {
				t.Fatalf("op %d at %d: %v", op, end, err)
			}
			if op == OpBinary && n == 0 && end < len(frame) {
				continue // binary waits for the whole frame
			}
			start += n
			consumed += n
			if ok {
				got = bytes.Clone(f.Payload)
			}
		}
		if got == nil {
			f, n, ok, err := d.Next(frame[start:], 1<<20)
			if err != nil || !ok {
				t.Fatalf("op %d last: n=%d err=%v", op, n, err)
			}
			got, consumed = bytes.Clone(f.Payload), consumed+n
		}
		if !bytes.Equal(got, payload) || consumed != len(frame) {
			t.Fatalf("op %d: got %d bytes (equal %v), consumed %d of %d", op, len(got), bytes.Equal(got, payload), consumed, len(frame))
		}
	}
}

// TestDecoderNeed: a streamed frame is wanted from its header on; others
// whole.
func TestDecoderNeed(t *testing.T) {
	var d Decoder
	tf := maskedFrame(true, 0, OpText, make([]byte, 70000), testMask)
	bf := maskedFrame(true, 0, OpBinary, make([]byte, 70000), testMask)
	if min, frame := d.Need(tf[:10]); min != 14 || frame != len(tf) {
		t.Fatalf("text: min=%d frame=%d", min, frame)
	}
	if min, frame := d.Need(bf[:10]); min != len(bf) || frame != len(bf) {
		t.Fatalf("binary: min=%d frame=%d", min, frame)
	}
	if min, frame := d.Need(tf[:1]); min != 0 || frame != 0 {
		t.Fatalf("one byte: min=%d frame=%d", min, frame)
	}
	if _, n, _, err := d.Next(tf[:100], 1<<20); err != nil || n != 100 {
		t.Fatalf("streaming: n=%d err=%v", n, err)
	}
	if min, frame := d.Need(nil); min != 1 || frame != 0 {
		t.Fatalf("in a streamed frame: min=%d frame=%d", min, frame)
	}
	zd := Decoder{Deflate: true}
	zf := maskedFrame(true, 4, OpText, make([]byte, 300), testMask)
	if min, _ := zd.Need(zf[:4]); min != len(zf) {
		t.Fatalf("compressed text: min=%d, want the whole frame", min)
	}
}

// BenchmarkDecodeText1MiB: a 1 MiB text frame decoded whole (in place), and
// taken as it arrives in 64 KiB reads (streamed: unmasked, checked and
// copied into the reassembly buffer piece by piece).
func BenchmarkDecodeText1MiB(b *testing.B) {
	payload := []byte(strings.Repeat("{\"k\":\"héllo wörld €\"}", (1<<20)/24))
	frame := maskedFrame(true, 0, OpText, payload, testMask)
	buf := make([]byte, len(frame))
	for _, piece := range []int{len(frame), 64 << 10} {
		name := "whole"
		if piece < len(frame) {
			name = "in64KiBreads"
		}
		b.Run(name, func(b *testing.B) {
			var d Decoder
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, frame)
				start := 0
				for end := min(piece, len(buf)); ; end = min(end+piece, len(buf)) {
					_, n, ok, err := d.Next(buf[start:end], 2<<20)
					if err != nil {
						b.Fatal(err)
					}
					start += n
					if ok {
						break
					}
				}
			}
		})
	}
}
