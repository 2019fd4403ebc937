package server

import "mako/protocol"

// Per-subscription order state, bounded by limits.max_order_keys and
// counted in mako_order_keys. (Throttle state is in subscription.go, next to
// its timers.)

// orderAccept is OrderState.Accept with the cap from the config and the
// key gauge kept current.
func (sub *subscription) orderAccept(o *protocol.Options) bool {
	if !o.HasOrder {
		return true
	}
	st := &sub.order
	if st.MaxKeys == 0 {
		st.MaxKeys = sub.sess.l.s.cfg.Limits.MaxOrderKeys
	}
	n, ev := st.Len(), st.Evictions
	ok := st.Accept(o)
	if d := st.Len() - n; d != 0 {
		sub.sess.l.s.metrics.orderKeys.Add(int64(d))
	}
	if d := st.Evictions - ev; d != 0 {
		sub.sess.l.s.metrics.orderKeysEvicted.Add(int64(d))
	}
	return ok
}

// dropOrderState forgets the order state of an ended subscription.
func (sub *subscription) dropOrderState() {
	if n := sub.order.Len(); n > 0 {
		sub.sess.l.s.metrics.orderKeys.Add(-int64(n))
	}
	sub.order = protocol.OrderState{}
}
