package server

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"mako/config"
)

// sessionIDs numbers sessions for the `session` attribute of every log
// line about a connection. 32 bits keep the id in the session struct's
// padding; it wraps after 4e9 connections, which is fine for telling one
// connection's lines from its neighbours'.
var sessionIDs atomic.Uint32

// brokerDesc says which broker the config picks, for the start-up line:
// "embedded", or the Redis address(es) with any password redacted.
func brokerDesc(cfg *config.Config) string {
	if cfg.Redis == nil {
		return "embedded"
	}
	d := redisDesc(cfg.Redis)
	if cfg.RedisAlt != nil {
		d += " + alt " + redisDesc(cfg.RedisAlt)
	}
	return d
}

func redisDesc(r *config.Redis) string {
	var where string
	switch {
	case r.URL != "":
		if u, err := url.Parse(r.URL); err == nil {
			where = u.Redacted()
		} else {
			where = "(unparsable url)"
		}
	case len(r.Addrs) > 0:
		where = strings.Join(r.Addrs, ",")
	default:
		where = r.Host + ":" + strconv.Itoa(r.Port)
	}
	switch {
	case r.Cluster:
		return "redis cluster " + where
	case r.Sharded:
		return "redis sharded " + where
	}
	return "redis " + where
}

// serviceNames lists the configured services, sorted.
func serviceNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Services))
	for n := range cfg.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
