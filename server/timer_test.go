package server

import (
	"testing"
	"time"
)

func TestScheduleOrderAndReschedule(t *testing.T) {
	var s schedule
	base := 1000 * time.Second
	var fired []string
	mk := func(name string) *timer {
		tm := new(timer)
		*tm = newTimer(func() { fired = append(fired, name) })
		return tm
	}
	a, b, c := mk("a"), mk("b"), mk("c")
	s.set(a, base+3*time.Second)
	s.set(b, base+1*time.Second)
	s.set(c, base+2*time.Second)
	s.set(a, base+500*time.Millisecond) // reschedule earlier
	s.stop(c)
	s.stop(c) // stopping twice is harmless
	if s.due(base) {
		t.Fatal("nothing is due at base")
	}
	if !s.due(base + time.Second) {
		t.Fatal("a and b are due at +1s")
	}
	s.run(base + time.Second)
	if got := len(fired); got != 2 || fired[0] != "a" || fired[1] != "b" {
		t.Fatalf("fired = %v, want [a b]", fired)
	}
	if s.due(base + time.Hour) {
		t.Fatal("c was stopped; nothing should remain")
	}
}

func TestScheduleTimerReschedulesItself(t *testing.T) {
	var s schedule
	base := time.Duration(0)
	n := 0
	tm := new(timer)
	*tm = newTimer(func() {
		n++
		if n < 3 {
			s.set(tm, tm.at+time.Second)
		}
	})
	s.set(tm, base)
	s.run(base + 10*time.Second)
	if n != 3 {
		t.Fatalf("fired %d times, want 3 (a periodic timer firing within one run)", n)
	}
}

func TestEncodeTextFrame(t *testing.T) {
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = 'x'
		}
		buf, frame := encodeTextFrame([]byte("junk"), func(b []byte) []byte { return append(b, payload...) })
		if string(buf[:4]) != "junk" {
			t.Fatalf("size %d: prefix clobbered", size)
		}
		hl := len(frame) - size
		if frame[0] != 0x81 || string(frame[hl:]) != string(payload) {
			t.Fatalf("size %d: bad frame header % x", size, frame[:hl])
		}
		switch {
		case size < 126 && (hl != 2 || int(frame[1]) != size):
			t.Fatalf("size %d: header % x", size, frame[:hl])
		case size >= 126 && size < 65536 && (hl != 4 || frame[1] != 126):
			t.Fatalf("size %d: header % x", size, frame[:hl])
		case size >= 65536 && (hl != 10 || frame[1] != 127):
			t.Fatalf("size %d: header % x", size, frame[:hl])
		}
	}
}
