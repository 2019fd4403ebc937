package protocol

// OrderState tracks the highest order seen per order key on one
// subscription. The zero value is ready to use; the map is made on the
// first ordered message so unordered subscriptions cost nothing.
type OrderState struct {
	last map[string]float64
}

// Accept reports whether a message with options o is delivered. Messages
// without a usable order always are and leave the state alone; otherwise
// the order must exceed the highest one recorded for its key, and becomes
// the new highest.
func (s *OrderState) Accept(o *Options) bool {
	if !o.HasOrder {
		return true
	}
	if prev, ok := s.last[o.OrderKey]; ok && o.Order <= prev {
		return false
	}
	if s.last == nil {
		s.last = make(map[string]float64, 1)
	}
	s.last[o.OrderKey] = o.Order
	return true
}
