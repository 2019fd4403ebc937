package pubsub

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Embedded is the in-process broker: one node, no dependencies. Publish hands
// the payload straight to the Hub's fan-out queue, and every subscription is
// acknowledged at once. Channels the Hub does not hold are dropped by the
// Hub, so Embedded keeps no subscription state of its own.
type Embedded struct {
	handler atomic.Pointer[Handler]
	// offer, set by the Hub, queues a message or refuses it with
	// ErrFanoutFull when the queue is full: a publisher on this broker is
	// always told, so nothing is dropped.
	offer  atomic.Pointer[offerFunc]
	closed atomic.Bool
}

// NewEmbedded returns the in-process broker.
func NewEmbedded() *Embedded { return &Embedded{} }

var errClosed = errors.New("broker closed")

func (e *Embedded) Start(h Handler) error {
	e.handler.Store(&h)
	return nil
}

func (e *Embedded) Subscribe(_ string, done func(error)) { done(nil) }

func (e *Embedded) Unsubscribe(string) {}

func (e *Embedded) Publish(_ context.Context, channel string, payload []byte) error {
	h := e.handler.Load()
	if h == nil || e.closed.Load() {
		return errClosed
	}
	// The payload is retained by the fan-out queue: the caller's buffer must
	// not be reused, so take a copy here, where its origin is unknown.
	p := make([]byte, len(payload))
	copy(p, payload)
	if o := e.offer.Load(); o != nil {
		return o.f(channel, p, time.Now())
	}
	(*h)(channel, p, time.Now())
	return nil
}

func (e *Embedded) Ready() bool { return !e.closed.Load() }

func (e *Embedded) Close() error {
	e.closed.Store(true)
	return nil
}
