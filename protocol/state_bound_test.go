package protocol

import (
	"strconv"
	"testing"
	"time"
)

// TestThrottleStateBounded offers 100,000 distinct keys under traffic
// patterns that defeat pruning on a timer (keys used once, windows that
// never end in time, keys kept pending) and checks that the state never
// tracks more than the bound the pattern allows.
func TestThrottleStateBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	const n = 100_000
	tests := []struct {
		name    string
		maxKeys int
		window  time.Duration
		step    time.Duration // clock advance per offer
		hold    bool          // offer every key twice, so it stays pending
		bound   int           // most keys tracked at any moment
		untrack int           // SendUntracked decisions expected
	}{
		// Windows end while keys keep coming: idle keys go as their windows
		// end, without any cap (100 offers per window).
		{"keys used once, windows ending", 0, 100 * time.Millisecond, time.Millisecond, false, 101, 0},
		// Windows never end during the test: only the cap bounds the state;
		// the keys beyond it go out untracked (never held, never lost).
		{"keys used once, long windows, capped", 1000, time.Hour, time.Millisecond, false, 1000, n - 1000},
		// Every key pending: pending keys are never forgotten, so the cap
		// makes the rest untracked.
		{"keys held pending, capped", 1000, time.Hour, time.Millisecond, true, 1000, n - 1000},
		// A tiny cap with windows that end: pruning frees room, so keys are
		// tracked again once older windows end.
		{"cap smaller than a window's keys", 10, 10 * time.Millisecond, time.Millisecond, false, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ThrottleState{MaxKeys: tt.maxKeys}
			now := t0
			untracked, peak := 0, 0
			for i := 0; i < n; i++ {
				key := "k" + strconv.Itoa(i)
				d, _, _ := s.Offer(key, tt.window, now, i)
				switch d {
				case SendUntracked:
					untracked++
				case Hold:
					t.Fatalf("offer %d: first message of a new key held", i)
				}
				if tt.hold && d == SendNow {
					if d2, _, arm := s.Offer(key, tt.window, now, i); d2 != Hold || !arm {
						t.Fatalf("offer %d: second message = %v arm=%v, want an armed hold", i, d2, arm)
					}
				}
				peak = max(peak, s.Len())
				now = now.Add(tt.step)
			}
			if peak > tt.bound {
				t.Fatalf("state tracked %d keys, bound %d", peak, tt.bound)
			}
			if untracked != tt.untrack {
				t.Fatalf("%d untracked sends, want %d", untracked, tt.untrack)
			}
			if tt.window < time.Hour {
				if left := s.Prune(now.Add(tt.window)); left != 0 {
					t.Fatalf("%d keys left after every window ended", left)
				}
			}
		})
	}
}

// TestThrottleStatePruneKeepsSemantics checks that forgetting idle keys is
// invisible: a key is forgotten only when the longest window offered has
// passed, so a later message with a longer window is still held.
func TestThrottleStatePruneKeepsSemantics(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var s ThrottleState
	s.Offer("long", time.Second, at(0), "l1")    // maxWindow is now 1s
	s.Offer("a", 100*time.Millisecond, at(0), 1) // a's own window ends at 100ms
	s.Offer("b", 100*time.Millisecond, at(300), 1)
	// 500ms after a's send: past a's window but not the longest one, so a
	// is remembered and a message with a 1s window is held.
	if d, end, arm := s.Offer("a", time.Second, at(500), 2); d != Hold || !arm || !end.Equal(at(1000)) {
		t.Fatalf("Offer(a, 1s) at 500ms = %v %v %v, want an armed hold until 1000ms", d, end, arm)
	}
	// Every idle key older than the longest window goes; the pending one
	// stays whatever its age.
	if n := s.Prune(at(1300)); n != 1 || !s.Pending("a") {
		t.Fatalf("after pruning at 1300ms: %d keys, a pending %v; want only a", n, s.Pending("a"))
	}
	if msg, ok, _ := s.Expire("a", at(1300)); !ok || msg != 2 {
		t.Fatalf("Expire(a) = %v %v, want the held message", msg, ok)
	}
	if n := s.Prune(at(2299)); n != 1 {
		t.Fatalf("a forgotten %v before the longest window after its send ended", at(2299).Sub(at(1300)))
	}
	if n := s.Prune(at(2300)); n != 0 {
		t.Fatalf("%d keys left after every window ended", n)
	}
}

// TestOrderStateBounded feeds 100,000 distinct order keys through a capped
// state: it never remembers more than the cap, evicts the least recently
// used key, and a key kept in use survives the flood.
func TestOrderStateBounded(t *testing.T) {
	ord := func(key string, o float64) *Options { return &Options{Order: o, HasOrder: true, OrderKey: key} }
	tests := []struct {
		name     string
		maxKeys  int
		hotEvery int // re-use the hot key every this many new keys (0 = never)
		hotKept  bool
	}{
		{"no reuse", 1000, 0, false},
		{"hot key touched within the cap survives", 1000, 500, true},
		{"hot key touched less often than the cap is evicted", 1000, 3000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := OrderState{MaxKeys: tt.maxKeys}
			hot := 1.0
			if !s.Accept(ord("hot", hot)) {
				t.Fatal("first hot message refused")
			}
			for i := 0; i < 100_000; i++ {
				if !s.Accept(ord("k"+strconv.Itoa(i), 1)) {
					t.Fatalf("key %d: first message refused", i)
				}
				if tt.hotEvery > 0 && (i+1)%tt.hotEvery == 0 {
					hot++
					s.Accept(ord("hot", hot))
				}
				if s.Len() > tt.maxKeys {
					t.Fatalf("key %d: %d keys remembered, cap %d", i, s.Len(), tt.maxKeys)
				}
			}
			// Every key added beyond the cap evicted one.
			if want := uint64(hotAdds(tt.hotEvery, tt.maxKeys) + 100_000 - s.Len()); s.Evictions != want {
				t.Fatalf("%d evictions, want %d", s.Evictions, want)
			}
			// An old order of the hot key is refused only while it is remembered.
			if got := s.Accept(ord("hot", 0)); got == tt.hotKept {
				t.Fatalf("stale hot message accepted=%v, want %v", got, !tt.hotKept)
			}
		})
	}
}

// hotAdds is how many times the hot key was added (first use, plus each
// re-use after an eviction) in TestOrderStateBounded.
func hotAdds(every, maxKeys int) int {
	if every == 0 || every < maxKeys {
		return 1
	}
	return 1 + 100_000/every
}
