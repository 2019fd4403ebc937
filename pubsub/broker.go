// Package pubsub carries messages from publishers (Redis, the publish API, the
// embedded broker) to the event loops that hold subscribers.
//
// Two seams meet here. A Broker moves raw payloads between processes: the
// embedded broker (one node, no dependencies) or Redis. The Hub sits in front
// of it: it counts local interest per channel so the broker is asked to
// subscribe on a channel's first local subscriber and to unsubscribe after its
// last, and it fans inbound messages out through workers sharded by channel
// hash so one channel's messages are handled by one worker, in order.
package pubsub

import (
	"context"
	"time"
)

// Handler receives every message a Broker reads. It is called from the
// broker's reader goroutine and must not block: the Hub's handler only
// enqueues onto a fan-out worker. The Hub retains payload, and the decoded
// message aliases it (protocol.DecodePublishedShared), so a Broker must never
// modify or reuse a payload's memory after handing it over.
type Handler func(channel string, payload []byte, receivedAt time.Time)

// Broker is the transport seam between mako nodes and publishers.
//
// Subscribe and Unsubscribe are called by the Hub only, at most once per
// transition (first local subscriber / last one gone), and never concurrently
// for the same channel. Subscribe must not block the caller: it reports the
// broker's acknowledgement through done, from any goroutine, exactly once.
// A message on the channel may reach the Handler only after done(nil) — or
// before, which is harmless: the Hub drops what nobody holds.
type Broker interface {
	// Start begins delivering inbound messages to h. Called once, before
	// any Subscribe.
	Start(h Handler) error
	Subscribe(channel string, done func(error))
	Unsubscribe(channel string)
	// Publish sends payload on channel to every node (including this one).
	Publish(ctx context.Context, channel string, payload []byte) error
	// Ready reports whether the broker can currently deliver (false while a
	// Redis connection is lost).
	Ready() bool
	Close() error
}
