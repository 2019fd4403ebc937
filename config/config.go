// Package config loads and validates mako's configuration file
// (docs/config.md). Key names are SocketShark's settings in lower case,
// nested, so a SocketShark config ports line by line; socketshark.go holds
// the rules that make SocketShark's own spellings and string ports work.
package config

import "time"

// Seconds is a duration written as a number of seconds (floats allowed), as
// in SocketShark. Zero (or null) disables a periodic feature.
type Seconds float64

// Duration converts to a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

type Config struct {
	WS             WS                  `yaml:"ws"`
	Redis          *Redis              `yaml:"redis"`
	RedisAlt       *Redis              `yaml:"redis_alt"`
	HTTP           HTTP                `yaml:"http"`
	API            *API                `yaml:"api"`
	Metrics        Metrics             `yaml:"metrics"`
	Log            Log                 `yaml:"log"`
	Debug          Debug               `yaml:"debug"`
	Authentication Authentication      `yaml:"authentication"`
	Services       map[string]*Service `yaml:"services"`
	Limits         Limits              `yaml:"limits"`
}

type WS struct {
	Host             string   `yaml:"host"`
	Port             int      `yaml:"port"`
	TLS              TLS      `yaml:"tls"`
	Ping             Ping     `yaml:"ping"`
	MaxMessageSize   int      `yaml:"max_message_size"`
	HandshakeTimeout Seconds  `yaml:"handshake_timeout"`
	Compression      bool     `yaml:"compression"`
	MaxOutboundBytes int      `yaml:"max_outbound_bytes"`
	AllowedOrigins   []string `yaml:"allowed_origins"`
	// CloseTimeout bounds a close that is not a cut (shutdown 1001, Redis
	// drain 1012, ping timeout, protocol errors): the close frame goes out
	// behind what is already queued, and the socket is closed once that
	// has left, or aborted (RST) after this many seconds.
	CloseTimeout Seconds `yaml:"close_timeout"`
	// SocketSendBuffer is SO_SNDBUF in bytes for client sockets (0: the
	// kernel's autotuning, up to net.ipv4.tcp_wmem's maximum).
	SocketSendBuffer int `yaml:"socket_send_buffer"`
	// ProxyProtocol: every connection starts with a PROXY protocol header
	// (v1 or v2) from the load balancer, whose client address is the one
	// the per-IP limits go by; a connection without a valid one is closed.
	ProxyProtocol bool `yaml:"proxy_protocol"`
}

type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type Ping struct {
	Interval Seconds `yaml:"interval"`
	Timeout  Seconds `yaml:"timeout"`
}

type Redis struct {
	URL           string   `yaml:"url"`
	Host          string   `yaml:"host"`
	Port          int      `yaml:"port"`
	DB            int      `yaml:"db"`
	Cluster       bool     `yaml:"cluster"`
	Sharded       bool     `yaml:"sharded"`
	Addrs         []string `yaml:"addrs"`
	ChannelPrefix string   `yaml:"channel_prefix"`
	PingInterval  Seconds  `yaml:"ping_interval"`
	PingTimeout   Seconds  `yaml:"ping_timeout"`
	OnLoss        string   `yaml:"on_loss"`
	DrainWindow   Seconds  `yaml:"drain_window"`
	// LossGrace is how long a Redis loss may last before on_loss: drain
	// starts closing sessions; a recovery within it closes nobody.
	LossGrace Seconds `yaml:"loss_grace"`
}

type HTTP struct {
	Timeout                   Seconds  `yaml:"timeout"`
	Tries                     int      `yaml:"tries"`
	Wait                      Seconds  `yaml:"wait"`
	CAFile                    string   `yaml:"ca_file"`
	RateLimitResetHeaderNames []string `yaml:"rate_limit_reset_header_names"`
	// SSLCAFile is SocketShark's name for CAFile (HTTP["ssl_cafile"]);
	// Parse moves it into CAFile.
	SSLCAFile string `yaml:"ssl_cafile"`
	// RateLimitResetHeaderName is SocketShark's single header name: Parse
	// uses it when rate_limit_reset_header_names is absent or empty, as
	// SocketShark does; "" then reads no header.
	RateLimitResetHeaderName string `yaml:"rate_limit_reset_header_name"`
	// Workers bounds the service calls in flight across all services.
	Workers int `yaml:"workers"`
	// MaxConcurrencyPerService bounds the calls in flight to one service, so
	// a reconnect storm queues at mako instead of flattening a backend.
	MaxConcurrencyPerService int `yaml:"max_concurrency_per_service"`
	// MaxQueuedPerService bounds the calls of one service waiting for a
	// worker; past it a call fails at once with "Service unavailable."
	// (issue 6: every queue bounded).
	MaxQueuedPerService int `yaml:"max_queued_per_service"`
	// BreakerFailures is the number of consecutive failed calls (every try
	// failed: transport error, timeout, 5xx, 429) that open a service URL's
	// circuit breaker; 0 disables the breakers (issue 9).
	BreakerFailures int `yaml:"breaker_failures"`
	// BreakerCooldown is how long an open breaker refuses calls before one
	// trial call; a failed trial doubles it, up to BreakerMaxCooldown.
	BreakerCooldown    Seconds `yaml:"breaker_cooldown"`
	BreakerMaxCooldown Seconds `yaml:"breaker_max_cooldown"`
}

type API struct {
	Host  string `yaml:"host"`
	Port  int    `yaml:"port"`
	Token string `yaml:"token"`
}

type Metrics struct {
	Prometheus *Prometheus     `yaml:"prometheus"`
	Log        *map[string]any `yaml:"log"`
}

type Prometheus struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
	// RateLimitInterval: identical lines (same level, message, service and
	// url) past the first in this many seconds are counted, not written,
	// and summed up in one line when it ends. 0 writes every line.
	RateLimitInterval Seconds `yaml:"rate_limit_interval"`
}

type Debug struct {
	Pprof bool `yaml:"pprof"`
}

type Authentication struct {
	Ticket *Ticket `yaml:"ticket"`
}

type Ticket struct {
	ValidationURL string   `yaml:"validation_url"`
	AuthFields    []string `yaml:"auth_fields"`
}

type Service struct {
	RequireAuthentication      *bool    `yaml:"require_authentication"`
	Authorizer                 string   `yaml:"authorizer"`
	AuthorizerFields           []string `yaml:"authorizer_fields"`
	AuthorizationRenewalPeriod Seconds  `yaml:"authorization_renewal_period"`
	AuthorizationRenewalJitter Seconds  `yaml:"authorization_renewal_jitter"`
	ExtraFields                []string `yaml:"extra_fields"`
	FilterFields               []string `yaml:"filter_fields"`
	BeforeSubscribe            string   `yaml:"before_subscribe"`
	OnSubscribe                string   `yaml:"on_subscribe"`
	OnMessage                  string   `yaml:"on_message"`
	BeforeUnsubscribe          string   `yaml:"before_unsubscribe"`
	OnUnsubscribe              string   `yaml:"on_unsubscribe"`
	OnAuthorizationChange      string   `yaml:"on_authorization_change"`
	HeartbeatPeriod            Seconds  `yaml:"heartbeat_period"`
	OnHeartbeat                string   `yaml:"on_heartbeat"`
}

// RequiresAuth reports require_authentication with its default (true).
func (s *Service) RequiresAuth() bool {
	return s.RequireAuthentication == nil || *s.RequireAuthentication
}

// Limits holds mako's own hardening limits (not SocketShark settings).
type Limits struct {
	// MaxQueuedEvents bounds a session's client events parsed ahead and
	// waiting behind the one in progress; when that many wait, mako stops
	// reading the connection until half have run (0: the next frame is read
	// only once the previous event is done, as SocketShark does).
	MaxQueuedEvents int `yaml:"max_queued_events"`
	// MaxInboundBytes bounds the bytes a client has sent that mako has not
	// parsed yet (it stops parsing while MaxQueuedEvents wait); beyond it the
	// connection is cut (1008). Never less than one frame of
	// ws.max_message_size.
	MaxInboundBytes int `yaml:"max_inbound_bytes"`
	// MaxSubscriptions bounds the subscriptions of one session.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// DrainTimeout bounds graceful shutdown (close callbacks included).
	DrainTimeout Seconds `yaml:"drain_timeout"`
	// MaxConnections caps open WebSocket connections (0 = no cap).
	MaxConnections int `yaml:"max_connections"`
	// MaxHeldMessages bounds the messages held for one subscription during
	// its provisional window (a slow before_subscribe); beyond it the
	// oldest are dropped and logged.
	MaxHeldMessages int `yaml:"max_held_messages"`
	// MaxFanoutQueueBytes bounds the bytes (payloads plus a fixed overhead
	// per message) waiting on each fan-out worker. Beyond it a publish
	// through the API gets 503 and a message read from the broker is
	// dropped, its channel's subscribers on this node cut (close 1013).
	MaxFanoutQueueBytes int `yaml:"max_fanout_queue_bytes"`
	// MaxGappedChannels bounds the channels one fan-out worker remembers
	// as having lost messages; beyond it every subscriber of the worker's
	// channels is cut.
	MaxGappedChannels int `yaml:"max_gapped_channels"`
	// MaxThrottleKeys bounds the throttle keys one subscription tracks;
	// beyond it a message of a new key is sent unthrottled.
	MaxThrottleKeys int `yaml:"max_throttle_keys"`
	// MaxOrderKeys bounds the order keys one subscription remembers; beyond
	// it the least recently used key is forgotten.
	MaxOrderKeys int `yaml:"max_order_keys"`
	// MaxLoopBacklog bounds the published messages queued for delivery on
	// one event loop. A fan-out batch that would pass it is not queued; the
	// sessions holding its channels are closed 1013 (messages lost) when
	// the loop gets to where it would have been, so none stays open with a
	// silent gap.
	MaxLoopBacklog int `yaml:"max_loop_backlog"`
	// MaxConnectionsPerIP caps the connections open from one client
	// address (an IPv6 client is its /64), counted from TCP accept (or the
	// PROXY header) to close; beyond it the upgrade gets 503 (0 = no cap).
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// ConnectionsPerSecondPerIP is the token-bucket rate of new connections
	// from one client address, ConnectionBurstPerIP its bucket size; a
	// connection without a token gets 429 at the upgrade (0 = no limit).
	ConnectionsPerSecondPerIP float64 `yaml:"connections_per_second_per_ip"`
	ConnectionBurstPerIP      int     `yaml:"connection_burst_per_ip"`
	// ClientEventsPerSecond is the token-bucket rate of client events on one
	// connection, ClientEventsBurst its bucket size; an event without a
	// token is answered "Rate limit exceeded." (0 = no limit).
	ClientEventsPerSecond float64 `yaml:"client_events_per_second"`
	ClientEventsBurst     int     `yaml:"client_events_burst"`
	// MaxRefusedEvents closes a connection (1008) once this many of its
	// events were refused by the event rate without its bucket filling up
	// again in between (0 = never close).
	MaxRefusedEvents int `yaml:"max_refused_events"`
}
