package protocol

// keyList is the intrusive, doubly linked recency list the per-key states
// (OrderState, ThrottleState) keep: oldest at head, newest at tail, so
// evicting or pruning the oldest key is O(1) and allocates nothing. E embeds
// keyLinks[E] and returns it from links.
type keyList[E any, P interface {
	*E
	links() *keyLinks[E]
}] struct {
	head, tail *E
}

type keyLinks[E any] struct{ prev, next *E }

// push appends e as the newest.
func (l *keyList[E, P]) push(e *E) {
	n := P(e).links()
	n.prev, n.next = l.tail, nil
	if l.tail != nil {
		P(l.tail).links().next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// unlink removes e; a no-op when e is not in the list.
func (l *keyList[E, P]) unlink(e *E) {
	n := P(e).links()
	if n.prev == nil && l.head != e {
		return
	}
	if n.prev != nil {
		P(n.prev).links().next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		P(n.next).links().prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

// touch makes e the newest.
func (l *keyList[E, P]) touch(e *E) {
	if l.tail != e {
		l.unlink(e)
		l.push(e)
	}
}
