package server

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mako/config"
	"mako/pubsub"
)

// newBroker picks the broker the config asks for: embedded without redis,
// Redis (with redis_alt as a second source) otherwise.
func newBroker(cfg *config.Config, log *slog.Logger) (pubsub.Broker, error) {
	if cfg.Redis == nil {
		return pubsub.NewEmbedded(), nil
	}
	primary, err := newRedis(cfg.Redis, log.With("redis", "primary"))
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if cfg.RedisAlt == nil {
		return primary, nil
	}
	alt, err := newRedis(cfg.RedisAlt, log.With("redis", "alt"))
	if err != nil {
		return nil, fmt.Errorf("redis_alt: %w", err)
	}
	return pubsub.NewMulti(log, primary, alt), nil
}

func newRedis(c *config.Redis, log *slog.Logger) (*pubsub.Redis, error) {
	o, err := pubsub.RedisOptionsFromConfig(c)
	if err != nil {
		return nil, err
	}
	return pubsub.NewRedis(o, log)
}

// lossReporter is a broker whose backend can go away (Redis). OnRecover
// must fire only once every desired channel is subscribed again (confirmed
// by the backend), so that stopping a drain never leaves an open session
// deaf.
type lossReporter interface {
	OnLoss(func())
	OnRecover(func())
}

// lossWatch is the server's view of broker outages. gen is odd while the
// broker is lost and even otherwise; loop tasks carry the gen they were
// posted for, so a late task of an ended outage cannot start or stop a
// drain of another one.
type lossWatch struct {
	gen atomic.Uint64
	mu  sync.Mutex
	at  time.Duration // Clock.Mono at the loss
	// closedAt is metrics.drainClosed at the loss, to log how many
	// sessions this outage's drain closed.
	closedAt int64
}

// watchBroker applies redis.on_loss when the broker reports a loss.
// Readiness follows Broker.Ready, so /readyz and new upgrades (503) need
// nothing here. drain closes the sessions open once redis.loss_grace has
// passed without recovery, spread over drain_window, so their clients
// reconnect elsewhere; a recovery (every channel resubscribed) within the
// grace closes nobody, and one during the drain stops it. Every outage is
// counted and logged as a gap: messages published meanwhile are lost for
// this node, as with any Redis pub/sub.
//
// The grace runs on each loop's schedule (one timer per loop, on the
// injectable clock), not on a goroutine or timer per connection.
func (s *Server) watchBroker() {
	lr, ok := s.hub.Broker().(lossReporter)
	if !ok || s.cfg.Redis == nil {
		return
	}
	r := s.cfg.Redis
	policy, window, grace := r.OnLoss, r.DrainWindow.Duration(), r.LossGrace.Duration()
	w := &s.loss
	lr.OnLoss(func() {
		w.mu.Lock()
		if w.gen.Load()%2 == 1 {
			w.mu.Unlock()
			return
		}
		w.at = s.clock.Mono()
		w.closedAt = s.metrics.drainClosed.Load()
		gen := w.gen.Add(1)
		start := w.at + grace
		w.mu.Unlock()
		s.log.Warn("redis lost", "policy", policy, "sessions", s.metrics.connCount.Load(), "grace", grace)
		if policy != "drain" {
			return
		}
		for _, l := range s.loopList() {
			l.execute(func() { l.armDrain(gen, start, window) })
		}
	})
	lr.OnRecover(func() {
		w.mu.Lock()
		if w.gen.Load()%2 == 0 {
			w.mu.Unlock()
			return
		}
		gap := max(s.clock.Mono()-w.at, 0)
		closed := s.metrics.drainClosed.Load() - w.closedAt
		gen := w.gen.Add(1)
		w.mu.Unlock()
		s.metrics.redisGaps.Add(1)
		s.metrics.redisGapNanos.Add(int64(gap))
		s.log.Warn("redis recovered: messages published during the gap were not delivered by this node",
			"policy", policy, "gap", gap, "drain_closed", closed, "sessions", s.metrics.connCount.Load())
		if policy != "drain" {
			return
		}
		for _, l := range s.loopList() {
			l.execute(func() {
				if l.stopDrain(gen) {
					s.log.Info("drain stopped: redis is back", "loop", l.id, "sessions", len(l.sessions))
				}
			})
		}
	})
}
