package protocol

import "strings"

// OrderState tracks the highest order seen per order key on one
// subscription. The zero value is ready to use (no cap); the map is made on
// the first ordered message so unordered subscriptions cost nothing.
//
// Order keys are chosen by publishers and an order never expires, so
// without a cap a subscription would remember every key it ever saw
// (SocketShark does). MaxKeys caps the keys remembered: a new key beyond it
// evicts the least recently used one. The cost is explicit: an evicted key
// is as good as never seen, so its next message is accepted whatever its
// order, and a stale message of that key arriving after the eviction gets
// through. The alternative, refusing new keys, would drop fresh messages;
// mako prefers a rare stale message on a key idle for longest to a lost
// one. Evictions counts them.
type OrderState struct {
	// MaxKeys caps the keys remembered; ≤ 0 means no cap.
	MaxKeys int
	// Evictions counts keys forgotten to stay within MaxKeys.
	Evictions uint64

	last map[string]*orderEntry
	// lru lists the keys, least recently used first.
	lru keyList[orderEntry, *orderEntry]
}

type orderEntry struct {
	key   string
	order float64
	keyLinks[orderEntry]
}

func (e *orderEntry) links() *keyLinks[orderEntry] { return &e.keyLinks }

// Accept reports whether a message with options o is delivered. Messages
// without a usable order always are and leave the state alone; otherwise
// the order must exceed the highest one recorded for its key, and becomes
// the new highest. A rejected message still marks its key as used.
func (s *OrderState) Accept(o *Options) bool {
	if !o.HasOrder {
		return true
	}
	if e := s.last[o.OrderKey]; e != nil {
		s.lru.touch(e)
		if o.Order <= e.order {
			return false
		}
		e.order = o.Order
		return true
	}
	if s.last == nil {
		s.last = make(map[string]*orderEntry, 1)
	}
	var e *orderEntry
	if s.MaxKeys > 0 && len(s.last) >= s.MaxKeys {
		// Reuse the evicted entry: a stream of new keys allocates nothing.
		e = s.lru.head
		s.lru.unlink(e)
		delete(s.last, e.key)
		s.Evictions++
	} else {
		e = new(orderEntry)
	}
	// A key parsed from a payload aliases it: a clone keeps a remembered
	// key from pinning the whole message.
	e.key, e.order = strings.Clone(o.OrderKey), o.Order
	s.last[e.key] = e
	s.lru.push(e)
	return true
}

// Len is the number of keys remembered.
func (s *OrderState) Len() int { return len(s.last) }
