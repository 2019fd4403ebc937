package server

import (
	"fmt"
	"log/slog"

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

// lossReporter is a broker whose backend can go away (Redis).
type lossReporter interface {
	OnLoss(func())
	OnRecover(func())
}

// watchBroker applies redis.on_loss when the broker reports a loss.
// Readiness follows Broker.Ready, so /readyz and new upgrades (503) need
// nothing here; drain also closes the sessions open at the moment of loss,
// spread over drain_window, so their clients reconnect elsewhere.
func (s *Server) watchBroker() {
	lr, ok := s.hub.Broker().(lossReporter)
	if !ok || s.cfg.Redis == nil {
		return
	}
	policy, window := s.cfg.Redis.OnLoss, s.cfg.Redis.DrainWindow
	lr.OnLoss(func() {
		s.log.Warn("redis lost", "policy", policy, "sessions", s.metrics.connCount.Load())
		if policy != "drain" {
			return
		}
		for _, l := range s.loopList() {
			l.execute(func() { l.startDrain(window.Duration()) })
		}
	})
	lr.OnRecover(func() {
		s.log.Info("redis recovered", "policy", policy)
	})
}
