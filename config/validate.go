package config

import (
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxSeconds keeps Seconds.Duration far from time.Duration overflow
// (about 292 years) while allowing any sensible period.
const maxSeconds = 1e9

// checker keeps only the first problem: start-up stops with one line, and
// the order of checks below is the order in which problems are reported.
type checker struct{ err *Error }

func (c *checker) fail(path, value, reason string) {
	if c.err == nil {
		c.err = &Error{Path: path, Value: value, Reason: reason}
	}
}

func quote(s string) string { return strconv.Quote(s) }

func secs(s Seconds) string { return strconv.FormatFloat(float64(s), 'g', -1, 64) }

func (c *checker) seconds(path string, s Seconds) {
	f := float64(s)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		c.fail(path, secs(s), "must be a finite number of seconds")
	case f < 0:
		c.fail(path, secs(s), "must not be negative")
	case f > maxSeconds:
		c.fail(path, secs(s), "must be at most 1e9 seconds")
	}
}

// rate is a token-bucket rate per second: 0 turns the limit off; at most
// 1e9, so one token is at least a nanosecond.
func (c *checker) rate(path string, r float64) {
	if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 || r > 1e9 {
		c.fail(path, strconv.FormatFloat(r, 'g', -1, 64), "must be 0..1e9 per second")
	}
}

func (c *checker) intRange(path string, v, lo, hi int) {
	if v < lo || v > hi {
		c.fail(path, strconv.Itoa(v), "must be "+strconv.Itoa(lo)+".."+strconv.Itoa(hi))
	}
}

// port accepts 0, which lets the OS pick a free port (tests rely on it).
func (c *checker) port(path string, v int) {
	if v < 0 || v > 65535 {
		c.fail(path, strconv.Itoa(v), "must be 1..65535 (or 0 for a random port)")
	}
}

func (c *checker) nonNegative(path string, v int) {
	if v < 0 {
		c.fail(path, strconv.Itoa(v), "must not be negative")
	}
}

func (c *checker) atLeast(path string, v, lo int) {
	if v < lo {
		c.fail(path, strconv.Itoa(v), "must be at least "+strconv.Itoa(lo))
	}
}

func (c *checker) oneOf(path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.fail(path, quote(v), "must be one of "+strings.Join(allowed, ", "))
	}
}

// httpURL accepts an empty value: every service URL is optional.
func (c *checker) httpURL(path, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		c.fail(path, displayURL(s), "not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		c.fail(path, displayURL(s), "must be an http:// or https:// URL")
	case u.Host == "":
		c.fail(path, displayURL(s), "must have a host")
	}
}

func (c *checker) readable(path, file string) {
	if file == "" {
		return
	}
	// Stat first: opening a FIFO would block start-up, and reading a device
	// like /dev/zero would never end; the TLS code reads the file later.
	st, err := os.Stat(file)
	if err == nil && !st.Mode().IsRegular() {
		c.fail(path, quote(file), "not a regular file")
		return
	}
	if err == nil {
		var f *os.File
		if f, err = os.Open(file); err == nil {
			f.Close()
		}
	}
	if err != nil {
		c.fail(path, quote(file), "cannot read: "+errText(err))
	}
}

func (c *checker) nonEmptyItems(path string, items []string) {
	for i, s := range items {
		if strings.TrimSpace(s) == "" {
			c.fail(path+"["+strconv.Itoa(i)+"]", quote(s), "must not be empty")
		}
	}
}

// Validate checks the whole configuration and returns the first problem as
// an *Error whose message is one line: key path, value, what is wrong.
func (c *Config) Validate() error {
	var k checker
	c.validateWS(&k)
	c.validateRedis(&k, "redis", c.Redis)
	c.validateRedis(&k, "redis_alt", c.RedisAlt)
	c.validateHTTP(&k)
	if c.API != nil {
		k.port("api.port", c.API.Port)
	}
	if p := c.Metrics.Prometheus; p != nil {
		k.intRange("metrics.prometheus.port", p.Port, 1, 65535)
	}
	k.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	k.oneOf("log.format", c.Log.Format, "json", "text")
	k.seconds("log.rate_limit_interval", c.Log.RateLimitInterval)
	if t := c.Authentication.Ticket; t != nil {
		if t.ValidationURL == "" {
			k.fail("authentication.ticket.validation_url", `""`, "must be set when authentication.ticket is present")
		}
		k.httpURL("authentication.ticket.validation_url", t.ValidationURL)
		k.nonEmptyItems("authentication.ticket.auth_fields", t.AuthFields)
	}
	c.validateServices(&k)
	k.nonNegative("limits.max_queued_events", c.Limits.MaxQueuedEvents)
	k.nonNegative("limits.max_inbound_bytes", c.Limits.MaxInboundBytes)
	// 0 would refuse every subscribe: a config that cannot be meant.
	k.atLeast("limits.max_subscriptions", c.Limits.MaxSubscriptions, 1)
	k.seconds("limits.drain_timeout", c.Limits.DrainTimeout)
	k.nonNegative("limits.max_connections", c.Limits.MaxConnections)
	k.nonNegative("limits.max_held_messages", c.Limits.MaxHeldMessages)
	k.atLeast("limits.max_fanout_queue_bytes", c.Limits.MaxFanoutQueueBytes, 1)
	k.atLeast("limits.max_gapped_channels", c.Limits.MaxGappedChannels, 1)
	k.atLeast("limits.max_throttle_keys", c.Limits.MaxThrottleKeys, 1)
	k.atLeast("limits.max_order_keys", c.Limits.MaxOrderKeys, 1)
	k.atLeast("limits.max_loop_backlog", c.Limits.MaxLoopBacklog, 1)
	k.nonNegative("limits.max_connections_per_ip", c.Limits.MaxConnectionsPerIP)
	k.rate("limits.connections_per_second_per_ip", c.Limits.ConnectionsPerSecondPerIP)
	k.atLeast("limits.connection_burst_per_ip", c.Limits.ConnectionBurstPerIP, 1)
	k.rate("limits.client_events_per_second", c.Limits.ClientEventsPerSecond)
	k.atLeast("limits.client_events_burst", c.Limits.ClientEventsBurst, 1)
	k.intRange("limits.max_refused_events", c.Limits.MaxRefusedEvents, 0, 65535)
	if k.err != nil {
		return k.err
	}
	return nil
}

func (c *Config) validateWS(k *checker) {
	w := &c.WS
	k.port("ws.port", w.Port)
	switch {
	case (w.TLS.Cert == "") != (w.TLS.Key == ""):
		if w.TLS.Cert == "" {
			k.fail("ws.tls.cert", `""`, "must be set when ws.tls.key is set")
		} else {
			k.fail("ws.tls.key", `""`, "must be set when ws.tls.cert is set")
		}
	default:
		k.readable("ws.tls.cert", w.TLS.Cert)
		k.readable("ws.tls.key", w.TLS.Key)
	}
	k.seconds("ws.ping.interval", w.Ping.Interval)
	k.seconds("ws.ping.timeout", w.Ping.Timeout)
	if w.Ping.Interval > 0 && w.Ping.Timeout <= 0 {
		k.fail("ws.ping.timeout", secs(w.Ping.Timeout), "must be greater than 0 when ws.ping.interval is set")
	}
	// 125 is the largest control-frame payload: smaller makes no sense.
	k.intRange("ws.max_message_size", w.MaxMessageSize, 125, 1<<30)
	k.seconds("ws.handshake_timeout", w.HandshakeTimeout)
	// 0 would cut every client with anything queued behind one frame.
	k.atLeast("ws.max_outbound_bytes", w.MaxOutboundBytes, 1)
	k.seconds("ws.close_timeout", w.CloseTimeout)
	k.nonNegative("ws.socket_send_buffer", w.SocketSendBuffer)
	k.nonEmptyItems("ws.allowed_origins", w.AllowedOrigins)
}

func (c *Config) validateRedis(k *checker, p string, r *Redis) {
	if r == nil {
		return
	}
	if r.URL != "" {
		if _, _, _, reason := parseRedisURL(r.URL); reason != "" {
			k.fail(p+".url", displayURL(r.URL), reason)
		}
	}
	k.intRange(p+".port", r.Port, 1, 65535)
	k.nonNegative(p+".db", r.DB)
	if r.Cluster && len(r.Addrs) == 0 {
		k.fail(p+".addrs", "[]", "must list the cluster seed nodes when "+p+".cluster is true")
	}
	if r.Sharded && !r.Cluster {
		k.fail(p+".sharded", "true", "requires "+p+".cluster: true")
	}
	for i, a := range r.Addrs {
		path := p + ".addrs[" + strconv.Itoa(i) + "]"
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			k.fail(path, quote(a), "must be host:port")
		}
	}
	k.seconds(p+".ping_interval", r.PingInterval)
	k.seconds(p+".ping_timeout", r.PingTimeout)
	if r.PingInterval > 0 && r.PingTimeout <= 0 {
		k.fail(p+".ping_timeout", secs(r.PingTimeout), "must be greater than 0 when "+p+".ping_interval is set")
	}
	k.oneOf(p+".on_loss", r.OnLoss, "drain", "resubscribe")
	k.seconds(p+".drain_window", r.DrainWindow)
	k.seconds(p+".loss_grace", r.LossGrace)
}

func (c *Config) validateHTTP(k *checker) {
	h := &c.HTTP
	k.seconds("http.timeout", h.Timeout)
	k.atLeast("http.tries", h.Tries, 1)
	k.seconds("http.wait", h.Wait)
	k.readable("http.ca_file", h.CAFile)
	k.nonEmptyItems("http.rate_limit_reset_header_names", h.RateLimitResetHeaderNames)
	k.atLeast("http.workers", h.Workers, 1)
	k.atLeast("http.max_concurrency_per_service", h.MaxConcurrencyPerService, 1)
	k.atLeast("http.max_queued_per_service", h.MaxQueuedPerService, 0)
	k.atLeast("http.breaker_failures", h.BreakerFailures, 0)
	k.seconds("http.breaker_cooldown", h.BreakerCooldown)
	k.seconds("http.breaker_max_cooldown", h.BreakerMaxCooldown)
	if h.BreakerFailures > 0 && h.BreakerCooldown <= 0 {
		k.fail("http.breaker_cooldown", secs(h.BreakerCooldown), "must be greater than 0 when http.breaker_failures is set")
	}
	if h.BreakerFailures > 0 && h.BreakerMaxCooldown < h.BreakerCooldown {
		k.fail("http.breaker_max_cooldown", secs(h.BreakerMaxCooldown), "must be at least http.breaker_cooldown")
	}
}

func (c *Config) validateServices(k *checker) {
	for _, name := range c.ServiceNames() {
		switch {
		case name == "":
			k.fail("services", `""`, "service name must not be empty")
			continue
		case strings.Contains(name, "."):
			// A subscription "svc.topic" is split at the first ".", so such
			// a service could never be reached.
			k.fail("services", quote(name), `service name must not contain "."`)
			continue
		}
		s := c.Services[name]
		if s == nil {
			continue
		}
		p := "services." + name + "."
		k.httpURL(p+"authorizer", s.Authorizer)
		k.seconds(p+"authorization_renewal_period", s.AuthorizationRenewalPeriod)
		k.seconds(p+"authorization_renewal_jitter", s.AuthorizationRenewalJitter)
		if s.AuthorizationRenewalPeriod > 0 && s.AuthorizationRenewalJitter > s.AuthorizationRenewalPeriod {
			k.fail(p+"authorization_renewal_jitter", secs(s.AuthorizationRenewalJitter),
				"must not exceed "+p+"authorization_renewal_period ("+secs(s.AuthorizationRenewalPeriod)+")")
		}
		for _, u := range []struct{ key, val string }{
			{"before_subscribe", s.BeforeSubscribe},
			{"on_subscribe", s.OnSubscribe},
			{"on_message", s.OnMessage},
			{"before_unsubscribe", s.BeforeUnsubscribe},
			{"on_unsubscribe", s.OnUnsubscribe},
			{"on_authorization_change", s.OnAuthorizationChange},
			{"on_heartbeat", s.OnHeartbeat},
		} {
			k.httpURL(p+u.key, u.val)
		}
		// heartbeat_period without on_heartbeat (or the reverse) is allowed:
		// the feature is simply off until both are set.
		k.seconds(p+"heartbeat_period", s.HeartbeatPeriod)
	}
}

// ServiceNames returns the configured service names, sorted.
func (c *Config) ServiceNames() []string {
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
