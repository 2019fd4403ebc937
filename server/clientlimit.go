package server

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"mako/config"
	"mako/protocol"
	"mako/server/proxyproto"
	"mako/server/ws"
)

// Per-client limits (issue 9): connections per client address, new
// connections per second per address, client events per second per
// connection. The address is the socket's peer, or with ws.proxy_protocol
// the client the load balancer's PROXY header names; never a header the
// client writes itself.
//
// Token buckets are kept as GCRA: one "theoretical arrival time" (tat, a
// Clock.Mono reading) per bucket. A token is there when tat - now <= tau
// (tau = (burst-1) periods); taking it moves tat one period on; the bucket
// is full again once tat <= now. One number per bucket, no timer.

// clientLimits is the server's side: the address table, the event bucket's
// parameters and the counters behind mako_client_limit_hits_total (metrics.go).
type clientLimits struct {
	ips *ipTable // nil when no per-address limit is set
	// evPeriod is one event token (0: no event limit); evTau the bucket's
	// depth beyond one token.
	evPeriod, evTau time.Duration
	maxRefused      uint16

	refusedCap, refusedRate atomic.Int64 // upgrades refused per address
	eventsRefused           atomic.Int64 // events answered ErrRateLimited
	eventCloses             atomic.Int64 // sessions closed 1008 for sustained excess
	proxyErrors             atomic.Int64 // connections closed for a bad PROXY header
}

func (cl *clientLimits) init(l *config.Limits) {
	if l.MaxConnectionsPerIP > 0 || l.ConnectionsPerSecondPerIP > 0 {
		t := &ipTable{max: int32(min(l.MaxConnectionsPerIP, math.MaxInt32))}
		t.period, t.tau = bucket(l.ConnectionsPerSecondPerIP, l.ConnectionBurstPerIP)
		for i := range t.shards {
			t.shards[i].m = make(map[ipKey]*ipEntry)
			t.shards[i].pruneAt = minPrune
		}
		cl.ips = t
	}
	cl.evPeriod, cl.evTau = bucket(l.ClientEventsPerSecond, l.ClientEventsBurst)
	cl.maxRefused = uint16(min(l.MaxRefusedEvents, math.MaxUint16))
}

// bucket converts a rate per second and a burst into GCRA's period and
// tau; rate 0 is period 0 (no limit).
func bucket(rate float64, burst int) (period, tau time.Duration) {
	if rate <= 0 {
		return 0, 0
	}
	period = max(time.Duration(float64(time.Second)/rate), 1)
	return period, period * time.Duration(max(burst, 1)-1)
}

// ipKey is a client address as the limits see it: an IPv4 address, or the
// /64 of an IPv6 address (one subscriber line or LAN gets a whole /64, so
// a finer key would let one client take 2^64 keys). The IPv4 form sets
// bits no /64 key has, so the two never collide.
type ipKey struct{ hi, lo uint64 }

func keyOf(a netip.Addr) ipKey {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return ipKey{lo: 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return ipKey{hi: binary.BigEndian.Uint64(b[:8])}
}

// ipEntry is one address's open connections and connection-rate bucket.
// It is in its shard's map while conns > 0 or its bucket is not full, so
// the table holds at most the addresses with open connections plus those
// that connected within the last burst/rate seconds (twice that between
// lazy prunes).
type ipEntry struct {
	key   ipKey
	conns int32
	tat   time.Duration
}

// ipShards spreads the table's locks: connections of one address land on
// any event loop, so the table is shared by all loops, and a lock is held
// for one map operation.
const ipShards = 64

// minPrune is the shard size below which idle entries are not looked for.
const minPrune = 64

type ipShard struct {
	mu      sync.Mutex
	m       map[ipKey]*ipEntry
	pruneAt int
	_       [40]byte // a cache line each: loops take different shards at once
}

type ipTable struct {
	shards      [ipShards]ipShard
	max         int32         // connections per address; 0 = no cap
	period, tau time.Duration // connection-rate bucket; period 0 = no rate limit
	entries     atomic.Int64
}

// ipVerdict is why an address's new connection is refused (0: it is not).
type ipVerdict uint8

const (
	ipOK ipVerdict = iota
	ipOverCap
	ipOverRate
)

func (t *ipTable) shard(k ipKey) *ipShard {
	h := (k.hi ^ k.lo*0x9e3779b97f4a7c15) * 0x9e3779b97f4a7c15
	return &t.shards[h>>(64-6)]
}

// acquire counts a new connection of k at now. Every connection takes a
// token from the rate bucket (so refused ones count against the rate too);
// one over the cap is not counted. It returns the entry the connection
// holds until release, or why it is refused.
func (t *ipTable) acquire(k ipKey, now time.Duration) (*ipEntry, ipVerdict) {
	sh := t.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil {
		if len(sh.m) >= sh.pruneAt {
			t.prune(sh, now)
		}
		e = &ipEntry{key: k}
		sh.m[k] = e
		t.entries.Add(1)
	}
	if t.period > 0 {
		tat := max(e.tat, now)
		if tat-now > t.tau {
			return nil, ipOverRate
		}
		e.tat = tat + t.period
	}
	if t.max > 0 && e.conns >= t.max {
		return nil, ipOverCap
	}
	e.conns++
	return e, ipOK
}

// release ends a connection acquire counted; the entry goes once nothing
// holds it and its bucket is full.
func (t *ipTable) release(e *ipEntry, now time.Duration) {
	sh := t.shard(e.key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e.conns--
	if e.conns <= 0 && e.tat <= now && sh.m[e.key] == e {
		delete(sh.m, e.key)
		t.entries.Add(-1)
	}
}

// prune drops the shard's idle entries (no connection, full bucket), then
// waits for the shard to double before looking again: amortised O(1) per
// new address.
func (t *ipTable) prune(sh *ipShard, now time.Duration) {
	for k, e := range sh.m {
		if e.conns <= 0 && e.tat <= now {
			delete(sh.m, k)
			t.entries.Add(-1)
		}
	}
	sh.pruneAt = max(minPrune, 2*len(sh.m))
}

// admitIP counts the session's connection under its client address; a
// refusal is answered at the upgrade (see ipRefusal).
func (sess *session) admitIP(a netip.Addr) {
	s := sess.l.s
	if s.lim.ips == nil || !a.IsValid() {
		return
	}
	sess.ip, sess.ipRefused = s.lim.ips.acquire(keyOf(a), s.clock.Mono())
}

// releaseIP uncounts the connection when the session ends.
func (sess *session) releaseIP() {
	if sess.ip != nil {
		s := sess.l.s
		s.lim.ips.release(sess.ip, s.clock.Mono())
		sess.ip = nil
	}
}

var (
	errOverCap  = &ws.HTTPError{Status: 503, Reason: "too many connections from this address"}
	errOverRate = &ws.HTTPError{Status: 429, Reason: "too many new connections from this address"}
)

// ipRefusal is the upgrade's answer for an address over its limits.
func (sess *session) ipRefusal() *ws.HTTPError {
	cl := &sess.l.s.lim
	switch sess.ipRefused {
	case ipOverCap:
		cl.refusedCap.Add(1)
		return errOverCap
	case ipOverRate:
		cl.refusedRate.Add(1)
		return errOverRate
	}
	return nil
}

// peerAddr is the socket's peer address.
func peerAddr(c interface{ RemoteAddr() net.Addr }) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}

// readProxy consumes the PROXY header that must start the connection with
// ws.proxy_protocol. It returns the bytes used (0 while incomplete); a bad
// or missing header closes the connection: the peer is not the balancer.
func (sess *session) readProxy(buf []byte) int {
	s := sess.l.s
	h, n, err := proxyproto.Parse(buf)
	if err != nil {
		s.lim.proxyErrors.Add(1)
		s.log.Warn("closing connection: bad PROXY protocol header", "session", sess.id, "cause", err.Error(), "peer", peerAddr(sess.c).String())
		sess.closeConn()
		return len(buf)
	}
	if n == 0 {
		sess.need = proxyproto.Size(buf)
		return 0
	}
	sess.proxyPending = false
	if h.Local {
		sess.admitIP(peerAddr(sess.c))
	} else {
		sess.admitIP(h.Src.Addr())
	}
	return n
}

// rateEvent takes a token for a client event. It reports refuse when the
// bucket is empty, and abuse when the session is to be closed: the event
// is then the max_refused_events-th refused since the bucket was last full
// (a client that pauses until its bucket refills starts a new count).
func (sess *session) rateEvent() (refuse, abuse bool) {
	cl := &sess.l.s.lim
	if cl.evPeriod == 0 {
		return false, false
	}
	now := sess.l.s.clock.Mono()
	tat := max(sess.evTAT, now)
	if tat == now {
		sess.evRefused = 0
	}
	if tat-now <= cl.evTau {
		sess.evTAT = tat + cl.evPeriod
		return false, false
	}
	cl.eventsRefused.Add(1)
	if sess.evRefused < math.MaxUint16 {
		sess.evRefused++
	}
	if cl.maxRefused > 0 && sess.evRefused >= cl.maxRefused {
		cl.eventCloses.Add(1)
		return true, true
	}
	return true, false
}

// refuseEvent answers an event refused by the event rate, in its turn:
// {"event":E,"status":"error","error":"Rate limit exceeded."} with the
// subscription echoed for subscription events, or without "event" for an
// invalid one (the shapes of the event's other check failures).
func (sess *session) refuseEvent(ev *protocol.ClientEvent, valid bool) {
	r := protocol.Reply{Status: "error", Error: protocol.ErrRateLimited}
	if valid {
		r.Event, r.HasEvent = ev.Event, true
		switch ev.Event {
		case "subscribe", "message", "unsubscribe":
			if name, _, ok := ev.String("subscription"); ok {
				r.Subscription = name
			}
		}
	}
	sess.reply(&r)
	sess.finish()
}
