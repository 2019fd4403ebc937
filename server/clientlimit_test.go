package server

import (
	"net/netip"
	"testing"
	"time"

	"mako/config"
)

func testTable(cap int, rate float64, burst int) *ipTable {
	var cl clientLimits
	cl.init(&config.Limits{MaxConnectionsPerIP: cap, ConnectionsPerSecondPerIP: rate, ConnectionBurstPerIP: burst})
	return cl.ips
}

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// The address table is bounded by the addresses with open connections plus
// those whose rate bucket has not refilled: an address whose connections
// are gone and whose bucket is full is forgotten, at release or by the
// lazy prune when new addresses arrive.
func TestIPTableBounded(t *testing.T) {
	tab := testTable(0, 1, 5) // a bucket refills within 5 s
	const n = 20000
	var now time.Duration
	for i := range n {
		e, v := tab.acquire(keyOf(addr(i)), now)
		if v != ipOK {
			t.Fatalf("address %d refused: %d", i, v)
		}
		tab.release(e, now)
	}
	if got := tab.entries.Load(); got != n {
		t.Fatalf("entries = %d, want %d (buckets not yet full)", got, n)
	}
	// Once their buckets are full, new waves of addresses prune them: the
	// table holds at most twice the live addresses (a shard is swept when
	// it has doubled since its last sweep), where without pruning it would
	// hold every wave.
	peak := int64(0)
	for wave := 1; wave <= 4; wave++ {
		now += 5 * time.Second
		for i := range n {
			e, _ := tab.acquire(keyOf(addr(wave*n+i)), now)
			tab.release(e, now)
			peak = max(peak, tab.entries.Load())
		}
	}
	if bound := int64(2*n + ipShards*minPrune); peak > bound {
		t.Fatalf("peak entries %d > %d: idle entries were not pruned", peak, bound)
	}
	// Without a rate, an entry goes with its last connection.
	tab = testTable(3, 0, 1)
	var held []*ipEntry
	for range 3 {
		e, v := tab.acquire(keyOf(addr(1)), 0)
		if v != ipOK {
			t.Fatalf("refused under the cap: %d", v)
		}
		held = append(held, e)
	}
	if _, v := tab.acquire(keyOf(addr(1)), 0); v != ipOverCap {
		t.Fatalf("over the cap: verdict %d", v)
	}
	for _, e := range held {
		tab.release(e, 0)
	}
	if got := tab.entries.Load(); got != 0 {
		t.Fatalf("entries after the last close = %d, want 0", got)
	}
}

// keyOf: an IPv4 address and its IPv4-mapped form are one client; an IPv6
// client is its /64; no IPv6 /64 collides with an IPv4 address.
func TestKeyOf(t *testing.T) {
	k := func(s string) ipKey { return keyOf(netip.MustParseAddr(s)) }
	switch {
	case k("10.0.0.1") != k("::ffff:10.0.0.1"):
		t.Fatal("mapped IPv4 differs from IPv4")
	case k("2001:db8::1") != k("2001:db8::ffff:1"):
		t.Fatal("same /64, different keys")
	case k("2001:db8::1") == k("2001:db8:0:1::1"):
		t.Fatal("different /64, same key")
	case k("::") == k("0.0.0.0") || k("::1") == k("0.0.0.1"):
		t.Fatal("IPv6 and IPv4 keys collide")
	}
}

// BenchmarkIPTable is the cost per connection of the per-address limits:
// one acquire and one release, from every CPU at once, over 1,000
// addresses (shards contend as loops would).
func BenchmarkIPTable(b *testing.B) {
	tab := testTable(1000, 1e6, 1000)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e, v := tab.acquire(keyOf(addr(i%1000)), time.Duration(i))
			if v == ipOK {
				tab.release(e, time.Duration(i))
			}
			i++
		}
	})
}
