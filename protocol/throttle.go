package protocol

import "time"

// ThrottleDecision is what to do with an offered message.
type ThrottleDecision int

const (
	// SendNow: deliver the message at once.
	SendNow ThrottleDecision = iota
	// Hold: the message is kept as the key's pending message, replacing
	// (dropping) any earlier pending one; Expire hands it back.
	Hold
)

// ThrottleState throttles one subscription's messages per throttle key. It
// keeps SocketShark's model: per key, the time the last message was sent
// and at most one pending message with an armed timer.
//
//   - A message arriving when the key's last send is at least its window
//     ago (or never happened) is sent now.
//   - Otherwise it is held, and the first held message arms a timer for
//     lastSent+window. Later arrivals before it fires replace the pending
//     message.
//   - When the timer fires, Expire returns the pending message; sending it
//     opens a new window, so a steady stream yields one message per window
//     and the last message always arrives. No timer is needed for a window
//     in which nothing is held: it simply lapses.
//
// Time is passed in, never read, so the owner (an event loop with its own
// timer schedule) decides the clock and tests need no sleeps. The zero
// value is ready to use. When the subscription ends, drop the state and
// cancel (or ignore) its armed timers: Expire cannot tell a stale timer
// from the current one.
type ThrottleState struct {
	keys map[string]throttleEntry
}

type throttleEntry struct {
	lastSent time.Time
	window   time.Duration // of the held message; sets the armed timer and the next window
	armedAt  time.Time     // when the armed timer fires; zero when none is armed
	pending  any
}

// Offer decides what to do with msg, a message for key arriving at now
// with the given throttle window. windowEnd is when the key's current
// window ends. arm is true exactly when the caller must schedule
// Expire(key, …) at windowEnd; at most one timer per key is ever armed.
func (s *ThrottleState) Offer(key string, window time.Duration, now time.Time, msg any) (d ThrottleDecision, windowEnd time.Time, arm bool) {
	if s.keys == nil {
		s.keys = make(map[string]throttleEntry, 1)
	}
	e, seen := s.keys[key]
	switch {
	case seen && !e.armedAt.IsZero():
		e.pending = msg
		s.keys[key] = e
		return Hold, e.armedAt, false
	case seen && now.Sub(e.lastSent) < window:
		e.pending = msg
		e.window = window
		e.armedAt = e.lastSent.Add(window)
		s.keys[key] = e
		return Hold, e.armedAt, true
	}
	s.keys[key] = throttleEntry{lastSent: now, window: window}
	return SendNow, now.Add(window), false
}

// Expire is called by the timer Offer armed for key. It returns the
// pending message, to be sent now, and records now as the key's last send,
// which opens a new window ending at nextWindowEnd; the caller arms no
// timer for it (a message held in it arms one through Offer). ok is false
// when nothing is pending for key.
func (s *ThrottleState) Expire(key string, now time.Time) (msg any, ok bool, nextWindowEnd time.Time) {
	e, seen := s.keys[key]
	if !seen || e.armedAt.IsZero() {
		return nil, false, time.Time{}
	}
	msg = e.pending
	s.keys[key] = throttleEntry{lastSent: now, window: e.window}
	return msg, true, now.Add(e.window)
}

// Pending reports whether key has a held message awaiting its timer.
func (s *ThrottleState) Pending(key string) bool {
	e, ok := s.keys[key]
	return ok && !e.armedAt.IsZero()
}

// Prune forgets keys with nothing pending whose last send is at least
// maxWindow ago; for such keys Offer behaves as if they were never seen
// (provided no window is longer than maxWindow). It bounds memory when
// publishers use many throttle keys, and returns the number of keys left.
func (s *ThrottleState) Prune(now time.Time, maxWindow time.Duration) int {
	for k, e := range s.keys {
		if e.armedAt.IsZero() && now.Sub(e.lastSent) >= maxWindow {
			delete(s.keys, k)
		}
	}
	return len(s.keys)
}
