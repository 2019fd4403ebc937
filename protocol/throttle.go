package protocol

import (
	"strings"
	"time"
)

// ThrottleDecision is what to do with an offered message.
type ThrottleDecision int

const (
	// SendNow: deliver the message at once.
	SendNow ThrottleDecision = iota
	// Hold: the message is kept as the key's pending message, replacing
	// (dropping) any earlier pending one; Expire hands it back.
	Hold
	// SendUntracked: deliver the message at once, but the key is not
	// tracked because the state holds MaxKeys keys that are all still inside
	// their windows or pending; the next message of the key is not throttled
	// by this one. Throttling is an optimisation for the receiver, so over
	// the cap mako sends more messages rather than losing any.
	SendUntracked
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
// Memory is bounded whatever keys publishers choose (SocketShark keeps every
// key forever): a key with nothing pending whose last send is at least the
// longest window seen on this state ago behaves exactly like a key never
// seen, so Offer and Expire forget such keys as their windows end (amortised
// O(1): keys wait in a list ordered by last send). MaxKeys caps the keys
// tracked at once; a new key beyond it gets SendUntracked. Pending keys are
// never forgotten, so no held message is lost.
//
// Time is passed in, never read, so the owner (an event loop with its own
// timer schedule) decides the clock and tests need no sleeps. The zero
// value is ready to use (no cap). When the subscription ends, drop the state
// and cancel (or ignore) its armed timers: Expire cannot tell a stale timer
// from the current one.
type ThrottleState struct {
	// MaxKeys caps the keys tracked; ≤ 0 means no cap.
	MaxKeys int

	keys      map[string]*throttleEntry
	maxWindow time.Duration // longest window offered: keys idle this long are forgotten
	// idle lists the keys with nothing pending, oldest last send first.
	idle keyList[throttleEntry, *throttleEntry]
}

type throttleEntry struct {
	key                     string
	lastSent                time.Time
	window                  time.Duration // of the held message; sets the armed timer and the next window
	armedAt                 time.Time     // when the armed timer fires; zero when none is armed
	pending                 any
	keyLinks[throttleEntry] // in the idle list while not armed
}

func (e *throttleEntry) links() *keyLinks[throttleEntry] { return &e.keyLinks }

// Offer decides what to do with msg, a message for key arriving at now
// with the given throttle window. windowEnd is when the key's current
// window ends. arm is true exactly when the caller must schedule
// Expire(key, …) at windowEnd; at most one timer per key is ever armed.
func (s *ThrottleState) Offer(key string, window time.Duration, now time.Time, msg any) (d ThrottleDecision, windowEnd time.Time, arm bool) {
	if window > s.maxWindow {
		s.maxWindow = window
	}
	s.prune(now)
	e := s.keys[key]
	switch {
	case e != nil && !e.armedAt.IsZero():
		e.pending = msg
		return Hold, e.armedAt, false
	case e != nil && now.Sub(e.lastSent) < window:
		s.idle.unlink(e)
		e.pending = msg
		e.window = window
		e.armedAt = e.lastSent.Add(window)
		return Hold, e.armedAt, true
	case e != nil:
		e.lastSent, e.window = now, window
		s.idle.unlink(e)
		s.idle.push(e)
		return SendNow, now.Add(window), false
	}
	if s.MaxKeys > 0 && len(s.keys) >= s.MaxKeys {
		return SendUntracked, now.Add(window), false
	}
	if s.keys == nil {
		s.keys = make(map[string]*throttleEntry, 1)
	}
	// A key parsed from a payload aliases it: a clone keeps a remembered
	// key from pinning the whole message.
	e = &throttleEntry{key: strings.Clone(key), lastSent: now, window: window}
	s.keys[e.key] = e
	s.idle.push(e)
	return SendNow, now.Add(window), false
}

// Expire is called by the timer Offer armed for key. It returns the
// pending message, to be sent now, and records now as the key's last send,
// which opens a new window ending at nextWindowEnd; the caller arms no
// timer for it (a message held in it arms one through Offer). ok is false
// when nothing is pending for key.
func (s *ThrottleState) Expire(key string, now time.Time) (msg any, ok bool, nextWindowEnd time.Time) {
	e := s.keys[key]
	if e == nil || e.armedAt.IsZero() {
		s.prune(now)
		return nil, false, time.Time{}
	}
	msg = e.pending
	e.pending, e.armedAt, e.lastSent = nil, time.Time{}, now
	s.idle.push(e)
	s.prune(now)
	return msg, true, now.Add(e.window)
}

// Pending reports whether key has a held message awaiting its timer.
func (s *ThrottleState) Pending(key string) bool {
	e := s.keys[key]
	return e != nil && !e.armedAt.IsZero()
}

// Len is the number of keys tracked (pending ones included).
func (s *ThrottleState) Len() int { return len(s.keys) }

// Prune forgets every key that behaves as never seen at now (nothing
// pending, last send at least the longest window ago) and returns the
// number of keys left. Offer and Expire prune as they go; Prune is for an
// owner that wants the state small while no message arrives.
func (s *ThrottleState) Prune(now time.Time) int {
	s.prune(now)
	return len(s.keys)
}

func (s *ThrottleState) prune(now time.Time) {
	for e := s.idle.head; e != nil && now.Sub(e.lastSent) >= s.maxWindow; e = s.idle.head {
		s.idle.unlink(e)
		delete(s.keys, e.key)
	}
}
