package pubsub

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// MultiRedis is the redis + redis_alt broker used while moving publishers
// from one Redis to another: every channel is subscribed on all servers
// (each with its own prefix) and messages from any of them reach the
// Handler. A publisher writing the same message to both servers therefore
// delivers it twice; the migration is meant to move publishers, not to
// duplicate them.
//
// Publish, Ready, OnLoss and OnRecover follow the primary only: the
// alternate server is a migration aid, and losing it (for instance when it is
// switched off at the end of the migration) must not drain every session.
// The alternate brokers keep reconnecting and resubscribing on their own.
type MultiRedis struct {
	primary *Redis
	alts    []*Redis
	log     *slog.Logger
}

var _ Broker = (*MultiRedis)(nil)

// NewMulti combines a primary broker with alternates (redis_alt).
func NewMulti(log *slog.Logger, primary *Redis, alts ...*Redis) *MultiRedis {
	if log == nil {
		log = slog.Default()
	}
	return &MultiRedis{primary: primary, alts: alts, log: log}
}

// Start starts every broker with the same handler; each strips its own
// prefix, so h sees the same channel name whichever server carried it.
func (m *MultiRedis) Start(h Handler) error {
	if err := m.primary.Start(h); err != nil {
		return err
	}
	for _, a := range m.alts {
		if err := a.Start(h); err != nil {
			return err
		}
	}
	return nil
}

// Subscribe reports done once every server has resolved the subscription,
// so a message published on either server after done(nil) is delivered. The
// result is the primary's: an alternate's failure is logged, and that
// broker keeps the channel desired and subscribes it when it can.
func (m *MultiRedis) Subscribe(channel string, done func(error)) {
	var (
		mu      sync.Mutex
		left    = 1 + len(m.alts)
		primErr error
	)
	finish := func(primary bool, name string) func(error) {
		return func(err error) {
			if !primary && err != nil {
				m.log.Warn("redis_alt subscribe failed", "broker", name, "channel", channel, "err", err)
			}
			mu.Lock()
			if primary {
				primErr = err
			}
			left--
			last := left == 0
			mu.Unlock()
			if last {
				done(primErr)
			}
		}
	}
	m.primary.Subscribe(channel, finish(true, m.primary.opts.Name))
	for _, a := range m.alts {
		a.Subscribe(channel, finish(false, a.opts.Name))
	}
}

func (m *MultiRedis) Unsubscribe(channel string) {
	m.primary.Unsubscribe(channel)
	for _, a := range m.alts {
		a.Unsubscribe(channel)
	}
}

// Publish goes to the primary only.
func (m *MultiRedis) Publish(ctx context.Context, channel string, payload []byte) error {
	return m.primary.Publish(ctx, channel, payload)
}

func (m *MultiRedis) Ready() bool { return m.primary.Ready() }

// OnLoss / OnRecover register on the primary (see the type comment).
func (m *MultiRedis) OnLoss(f func())    { m.primary.OnLoss(f) }
func (m *MultiRedis) OnRecover(f func()) { m.primary.OnRecover(f) }

// Outages counts the primary's outages.
func (m *MultiRedis) Outages() uint64 { return m.primary.Outages() }

func (m *MultiRedis) Close() error {
	errs := []error{m.primary.Close()}
	for _, a := range m.alts {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}
