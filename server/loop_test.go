package server

import (
	"math/rand/v2"
	"testing"
)

// Releasing subscriptions while a message is part-delivered (the delivery
// paused between chunks with cursor cur) keeps every remaining subscription
// on its side of the cursor: the delivered ones are not visited again and
// the undelivered ones are not skipped. Slots stay exact throughout.
func TestChanEntryRemoveKeepsCursorSides(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		e := newChanEntry()
		n := 1 + rng.IntN(40)
		all := make([]*subscription, n)
		for i := range all {
			all[i] = &subscription{slot: -1, vid: -1, variant: string(rune('a' + rng.IntN(3)))}
			e.add(all[i])
		}
		e.cur = rng.IntN(n + 1)
		visited := map[*subscription]bool{}
		for _, s := range e.subs[:e.cur] {
			visited[s] = true
		}
		live := map[*subscription]bool{}
		for _, s := range all {
			live[s] = true
		}
		for _, i := range rng.Perm(n)[:rng.IntN(n+1)] {
			if !e.remove(all[i]) {
				t.Fatal("remove of a held subscription failed")
			}
			if e.remove(all[i]) {
				t.Fatal("second remove succeeded")
			}
			delete(live, all[i])
			for j, s := range e.subs {
				if int(s.slot) != j {
					t.Fatalf("slot %d holds a sub with slot %d", j, s.slot)
				}
				if visited[s] != (j < e.cur) {
					t.Fatalf("sub at %d (cursor %d): visited %v", j, e.cur, visited[s])
				}
			}
			if len(e.subs) != len(live) {
				t.Fatalf("%d subs, want %d", len(e.subs), len(live))
			}
		}
		refs := 0
		for _, r := range e.vrefs {
			refs += int(r)
		}
		if refs != len(live) || len(e.vids) > len(live) {
			t.Fatalf("variant refs %d, ids %d for %d subs", refs, len(e.vids), len(live))
		}
	}
}
