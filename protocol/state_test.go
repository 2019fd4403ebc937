package protocol

import (
	"testing"
	"time"
)

func TestOrderState(t *testing.T) {
	ord := func(key string, o float64) *Options { return &Options{Order: o, HasOrder: true, OrderKey: key} }
	steps := []struct {
		o    *Options
		want bool
	}{
		{&Options{}, true},        // unordered: always delivered
		{ord("", 3), true},        // first for the default key
		{ord("", 3), false},       // equal is not greater
		{ord("", 2), false},       // older
		{&Options{}, true},        // unordered does not touch the state
		{ord("", 3.5), true},      // newer
		{ord(`"k"`, 1), true},     // other key, own state
		{ord(`"k"`, 0), false},    // older for "k"
		{ord("", 3.4), false},     // default key still at 3.5
		{ord(`"k"`, -1e9), false}, // still older
		{ord(`"k"`, 2), true},
	}
	var s OrderState
	for i, st := range steps {
		if got := s.Accept(st.o); got != st.want {
			t.Fatalf("step %d: Accept(%+v) = %v, want %v", i, *st.o, got, st.want)
		}
	}
}

func TestOrderStateZeroValueUntouchedByUnordered(t *testing.T) {
	var s OrderState
	if !s.Accept(&Options{}) || s.last != nil {
		t.Fatal("unordered message allocated state")
	}
}

func TestThrottleState(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const w = 100 * time.Millisecond

	type step struct {
		expire   bool // call Expire instead of Offer
		key      string
		ms       int
		msg      string
		decision ThrottleDecision
		end      int // windowEnd (Offer) or nextWindowEnd (Expire), ms
		arm      bool
		got      string // Expire: message returned ("" = none)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first goes at once, lone message opens no timer", []step{
			{key: "", ms: 0, msg: "m1", decision: SendNow, end: 100},
			{key: "", ms: 150, msg: "m2", decision: SendNow, end: 250},
		}},
		{"held messages replace one pending; last arrives", []step{
			{key: "", ms: 0, msg: "m1", decision: SendNow, end: 100},
			{key: "", ms: 10, msg: "m2", decision: Hold, end: 100, arm: true},
			{key: "", ms: 20, msg: "m3", decision: Hold, end: 100},
			{key: "", ms: 99, msg: "m4", decision: Hold, end: 100},
			{expire: true, key: "", ms: 100, got: "m4", end: 200},
			// the reopened window holds without a timer until a message comes
			{key: "", ms: 150, msg: "m5", decision: Hold, end: 200, arm: true},
			{expire: true, key: "", ms: 200, got: "m5", end: 300},
			// the window after that lapses with nothing pending
			{expire: true, key: "", ms: 300, got: ""},
			{key: "", ms: 300, msg: "m6", decision: SendNow, end: 400},
		}},
		{"steady stream: one message per window", []step{
			{key: "", ms: 0, msg: "a", decision: SendNow, end: 100},
			{key: "", ms: 40, msg: "b", decision: Hold, end: 100, arm: true},
			{key: "", ms: 80, msg: "c", decision: Hold, end: 100},
			{expire: true, key: "", ms: 100, got: "c", end: 200},
			{key: "", ms: 120, msg: "d", decision: Hold, end: 200, arm: true},
			{key: "", ms: 160, msg: "e", decision: Hold, end: 200},
			{key: "", ms: 200, msg: "f", decision: Hold, end: 200},
			{expire: true, key: "", ms: 201, got: "f", end: 301},
		}},
		{"late timer: window counts from the actual send", []step{
			{key: "", ms: 0, msg: "a", decision: SendNow, end: 100},
			{key: "", ms: 50, msg: "b", decision: Hold, end: 100, arm: true},
			{expire: true, key: "", ms: 130, got: "b", end: 230},
			{key: "", ms: 200, msg: "c", decision: Hold, end: 230, arm: true},
		}},
		{"keys are independent", []step{
			{key: `"x"`, ms: 0, msg: "x1", decision: SendNow, end: 100},
			{key: `"y"`, ms: 10, msg: "y1", decision: SendNow, end: 110},
			{key: `"x"`, ms: 20, msg: "x2", decision: Hold, end: 100, arm: true},
			{key: `"y"`, ms: 30, msg: "y2", decision: Hold, end: 110, arm: true},
			{expire: true, key: `"x"`, ms: 100, got: "x2", end: 200},
			{expire: true, key: `"y"`, ms: 110, got: "y2", end: 210},
		}},
		{"expire of an unknown key", []step{
			{expire: true, key: "nope", ms: 0, got: ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ThrottleState
			for i, st := range tt.steps {
				if st.expire {
					msg, ok, next := s.Expire(st.key, at(st.ms))
					if st.got == "" {
						if ok || msg != nil || !next.IsZero() {
							t.Fatalf("step %d: Expire = (%v, %v, %v), want nothing", i, msg, ok, next)
						}
						continue
					}
					if !ok || msg != st.got || !next.Equal(at(st.end)) {
						t.Fatalf("step %d: Expire = (%v, %v, %v), want (%s, true, %v)", i, msg, ok, next, st.got, at(st.end))
					}
					if s.Pending(st.key) {
						t.Fatalf("step %d: still pending after Expire", i)
					}
					continue
				}
				d, end, arm := s.Offer(st.key, w, at(st.ms), st.msg)
				if d != st.decision || !end.Equal(at(st.end)) || arm != st.arm {
					t.Fatalf("step %d: Offer(%s@%dms) = (%v, %v, %v), want (%v, %v, %v)",
						i, st.msg, st.ms, d, end.Sub(t0), arm, st.decision, at(st.end).Sub(t0), st.arm)
				}
				if s.Pending(st.key) != (d == Hold) {
					t.Fatalf("step %d: Pending = %v after %v", i, s.Pending(st.key), d)
				}
			}
		})
	}
}

func TestThrottleStatePrune(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var s ThrottleState
	s.Offer("a", time.Second, t0, 1)
	s.Offer("b", time.Second, t0, 1)
	s.Offer("b", time.Second, t0.Add(time.Millisecond), 2) // pending: kept
	s.Offer("c", time.Second, t0.Add(900*time.Millisecond), 1)
	if n := s.Prune(t0.Add(time.Second)); n != 2 {
		t.Fatalf("Prune left %d keys, want 2 (b pending, c recent)", n)
	}
	if d, _, _ := s.Offer("a", time.Second, t0.Add(time.Second), 3); d != SendNow {
		t.Fatal("pruned key not treated as new")
	}
}
