package pubsub

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mako/config"
)

// RedisOptions configures a Redis broker. RedisOptionsFromConfig derives it
// from the redis (or redis_alt) block of the configuration file; the fields
// below the blank line are tuning knobs with defaults, not config keys.
type RedisOptions struct {
	// Name labels log lines and errors ("redis", "redis_alt").
	Name string
	// Addr is host:port of a standalone server.
	Addr     string
	Username string
	Password string
	DB       int
	TLS      *tls.Config
	// Cluster: Addrs are seed nodes of a Redis Cluster.
	Cluster bool
	// Sharded (with Cluster): SSUBSCRIBE on the slot owner, SPUBLISH.
	Sharded bool
	Addrs   []string
	// ChannelPrefix is prepended to every subscription name to form the
	// Redis channel, and stripped from inbound channel names.
	ChannelPrefix string
	// PingInterval is how often the pub/sub connection is pinged (0: never);
	// no pong within PingTimeout counts as losing Redis.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// BatchWindow is how long subscription changes are collected before one
	// SUBSCRIBE/UNSUBSCRIBE goes out; BatchMax flushes earlier and caps the
	// channels per command.
	BatchWindow time.Duration
	BatchMax    int
	// ReconnectMin/Max bound the jittered exponential reconnect backoff.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// CommandTimeout bounds a SUBSCRIBE/UNSUBSCRIBE round trip; a timeout
	// counts as a broken connection.
	CommandTimeout time.Duration
}

func (o *RedisOptions) setDefaults() {
	if o.Name == "" {
		o.Name = "redis"
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 5 * time.Second
	}
	if o.BatchWindow <= 0 {
		o.BatchWindow = 300 * time.Microsecond
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 500
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 50 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 5 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = max(o.PingTimeout, time.Second)
	}
}

// RedisOptionsFromConfig resolves a redis config block. A non-empty url
// wins over host/port/db: url is the single-string form operators copy from
// elsewhere, host/port/db the SocketShark form. In cluster mode addrs are
// the seeds; with no addrs the url or host:port serves as the only seed.
func RedisOptionsFromConfig(c *config.Redis) (RedisOptions, error) {
	if c == nil {
		return RedisOptions{}, fmt.Errorf("redis: no configuration")
	}
	o := RedisOptions{
		Cluster:       c.Cluster,
		Sharded:       c.Sharded,
		Addrs:         append([]string(nil), c.Addrs...),
		ChannelPrefix: c.ChannelPrefix,
		PingInterval:  c.PingInterval.Duration(),
		PingTimeout:   c.PingTimeout.Duration(),
		DB:            c.DB,
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return o, fmt.Errorf("redis.url: %q: %v", c.URL, err)
		}
		switch u.Scheme {
		case "redis":
		case "rediss":
			o.TLS = &tls.Config{ServerName: u.Hostname()}
		default:
			return o, fmt.Errorf("redis.url: %q: scheme must be redis:// or rediss://", c.URL)
		}
		if u.Host == "" {
			return o, fmt.Errorf("redis.url: %q: no host", c.URL)
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return o, fmt.Errorf("redis.url: %q: bad port %q", c.URL, port)
		}
		o.Addr = net.JoinHostPort(u.Hostname(), port)
		if u.User != nil {
			o.Username = u.User.Username()
			o.Password, _ = u.User.Password()
			if _, hasPass := u.User.Password(); !hasPass {
				// redis://secret@host is the legacy password-only form.
				o.Password, o.Username = o.Username, ""
			}
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			n, err := strconv.Atoi(db)
			if err != nil || n < 0 {
				return o, fmt.Errorf("redis.url: %q: bad db %q", c.URL, db)
			}
			o.DB = n
		} else {
			o.DB = 0
		}
		if v := u.Query().Get("db"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("redis.url: %q: bad db %q", c.URL, v)
			}
			o.DB = n
		}
	} else {
		host, port := c.Host, c.Port
		if host == "" {
			host = "localhost"
		}
		if port == 0 {
			port = 6379
		}
		if port < 1 || port > 65535 {
			return o, fmt.Errorf("redis.port: %d: out of range", port)
		}
		o.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if o.DB < 0 {
		return o, fmt.Errorf("redis.db: %d: negative", o.DB)
	}
	if o.Sharded && !o.Cluster {
		return o, fmt.Errorf("redis.sharded: needs cluster: true")
	}
	if o.Cluster {
		if o.DB != 0 {
			return o, fmt.Errorf("redis.db: %d: Redis Cluster has only db 0", o.DB)
		}
		if len(o.Addrs) == 0 {
			o.Addrs = []string{o.Addr}
		}
		for _, a := range o.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return o, fmt.Errorf("redis.addrs: %q: %v", a, err)
			}
		}
	}
	if o.PingInterval < 0 {
		return o, fmt.Errorf("redis.ping_interval: negative")
	}
	if o.PingTimeout < 0 {
		return o, fmt.Errorf("redis.ping_timeout: negative")
	}
	return o, nil
}
