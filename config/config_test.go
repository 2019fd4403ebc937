package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src), "test.yaml")
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "---\n", "{}"} {
		cfg := mustParse(t, src)
		want := Default()
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("Parse(%q) = %+v, want defaults %+v", src, cfg, want)
		}
	}
	c := Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"ws.host", c.WS.Host, "127.0.0.1"},
		{"ws.port", c.WS.Port, 9000},
		{"ws.ping.interval", c.WS.Ping.Interval, Seconds(15)},
		{"ws.ping.timeout", c.WS.Ping.Timeout, Seconds(15)},
		{"ws.max_message_size", c.WS.MaxMessageSize, 1048576},
		{"ws.handshake_timeout", c.WS.HandshakeTimeout, Seconds(10)},
		{"ws.compression", c.WS.Compression, true},
		{"ws.max_outbound_bytes", c.WS.MaxOutboundBytes, 1048576},
		{"ws.allowed_origins", len(c.WS.AllowedOrigins), 0},
		{"redis", c.Redis == nil, true},
		{"redis_alt", c.RedisAlt == nil, true},
		{"api", c.API == nil, true},
		{"metrics.prometheus", c.Metrics.Prometheus == nil, true},
		{"http.timeout", c.HTTP.Timeout, Seconds(15)},
		{"http.tries", c.HTTP.Tries, 3},
		{"http.wait", c.HTTP.Wait, Seconds(3)},
		{"http.rate_limit_reset_header_names", c.HTTP.RateLimitResetHeaderNames, []string{"X-Rate-Limit-Reset"}},
		{"http.workers", c.HTTP.Workers, 1024},
		{"http.max_concurrency_per_service", c.HTTP.MaxConcurrencyPerService, 256},
		{"http.max_queued_per_service", c.HTTP.MaxQueuedPerService, 10000},
		{"http.breaker_failures", c.HTTP.BreakerFailures, 5},
		{"http.breaker_cooldown", c.HTTP.BreakerCooldown, Seconds(5)},
		{"http.breaker_max_cooldown", c.HTTP.BreakerMaxCooldown, Seconds(60)},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"limits.max_queued_events", c.Limits.MaxQueuedEvents, 64},
		{"limits.max_subscriptions", c.Limits.MaxSubscriptions, 1000},
		{"limits.drain_timeout", c.Limits.DrainTimeout, Seconds(30)},
		{"log.rate_limit_interval", c.Log.RateLimitInterval, Seconds(1)},
		{"limits.max_connections", c.Limits.MaxConnections, 0},
		{"limits.max_inbound_bytes", c.Limits.MaxInboundBytes, 4194304},
		{"ws.close_timeout", c.WS.CloseTimeout, Seconds(5)},
		{"ws.socket_send_buffer", c.WS.SocketSendBuffer, 0},
		{"limits.max_loop_backlog", c.Limits.MaxLoopBacklog, 100000},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// Defaults must not share backing arrays between calls.
	Default().HTTP.RateLimitResetHeaderNames[0] = "changed"
	if Default().HTTP.RateLimitResetHeaderNames[0] != "X-Rate-Limit-Reset" {
		t.Error("Default shares its slices")
	}
}

func TestSectionDefaults(t *testing.T) {
	cfg := mustParse(t, "redis: {}\nredis_alt: {url: 'redis://h:1/2'}\napi: {}\nmetrics: {prometheus: {}, log: {}}\n")
	wantRedis := Redis{Host: "localhost", Port: 6379, PingInterval: 10, PingTimeout: 5, OnLoss: "drain", DrainWindow: 30, LossGrace: 5}
	if !reflect.DeepEqual(*cfg.Redis, wantRedis) {
		t.Errorf("redis = %+v, want %+v", *cfg.Redis, wantRedis)
	}
	wantRedis.URL = "redis://h:1/2"
	if !reflect.DeepEqual(*cfg.RedisAlt, wantRedis) {
		t.Errorf("redis_alt = %+v, want %+v", *cfg.RedisAlt, wantRedis)
	}
	if *cfg.API != (API{Host: "127.0.0.1", Port: 9001}) {
		t.Errorf("api = %+v", *cfg.API)
	}
	if *cfg.Metrics.Prometheus != (Prometheus{Port: 9090}) {
		t.Errorf("metrics.prometheus = %+v", *cfg.Metrics.Prometheus)
	}
	if cfg.Metrics.Log == nil {
		t.Error("metrics.log: {} should be present")
	}
	// Explicit null sections mean "absent".
	cfg = mustParse(t, "redis: null\napi:\nmetrics: {prometheus: null}\nauthentication: {ticket: ~}\n")
	if cfg.Redis != nil || cfg.API != nil || cfg.Metrics.Prometheus != nil || cfg.Authentication.Ticket != nil {
		t.Errorf("null sections should stay nil: %+v", cfg)
	}
	// A null struct section keeps its defaults.
	cfg = mustParse(t, "ws: null\nhttp:\n")
	if cfg.WS.Port != 9000 || cfg.HTTP.Tries != 3 {
		t.Errorf("null ws/http lost defaults: %+v %+v", cfg.WS, cfg.HTTP)
	}
}

func TestExplicitZerosKept(t *testing.T) {
	src := `
ws:
  port: 0
  ping: {interval: 0, timeout: 0}
  handshake_timeout: 0
  compression: false
redis:
  ping_interval: 0
  ping_timeout: 0
  drain_window: 0
  port: 1
api: {port: 0}
http: {timeout: 0, wait: 0, rate_limit_reset_header_names: [], rate_limit_reset_header_name: ""}
limits: {max_queued_events: 0, drain_timeout: 0}
`
	c := mustParse(t, src)
	if c.WS.Port != 0 || c.WS.Ping.Interval != 0 || c.WS.Ping.Timeout != 0 || c.WS.HandshakeTimeout != 0 ||
		c.WS.Compression {
		t.Errorf("ws zeros lost: %+v", c.WS)
	}
	if c.Redis.PingInterval != 0 || c.Redis.PingTimeout != 0 || c.Redis.DrainWindow != 0 || c.Redis.Port != 1 {
		t.Errorf("redis zeros lost: %+v", c.Redis)
	}
	if c.API.Port != 0 || c.API.Host != "127.0.0.1" {
		t.Errorf("api = %+v", c.API)
	}
	if c.HTTP.Timeout != 0 || c.HTTP.Wait != 0 || len(c.HTTP.RateLimitResetHeaderNames) != 0 || c.HTTP.Tries != 3 {
		t.Errorf("http = %+v", c.HTTP)
	}
	if c.Limits.MaxQueuedEvents != 0 || c.Limits.DrainTimeout != 0 {
		t.Errorf("limits = %+v", c.Limits)
	}
}

func TestNullDurationIsZero(t *testing.T) {
	c := mustParse(t, `
ws:
  ping: {interval: null, timeout: 5}
  handshake_timeout: ~
redis: {drain_window: null, ping_interval: }
http: {wait: null}
services:
  books: {heartbeat_period: null, authorization_renewal_period: null}
limits: {drain_timeout: null}
`)
	if c.WS.Ping.Interval != 0 || c.WS.Ping.Timeout != 5 || c.WS.HandshakeTimeout != 0 {
		t.Errorf("ws = %+v", c.WS)
	}
	if c.Redis.DrainWindow != 0 || c.Redis.PingInterval != 0 || c.Redis.PingTimeout != 5 {
		t.Errorf("redis = %+v", c.Redis)
	}
	if c.HTTP.Wait != 0 || c.HTTP.Timeout != 15 {
		t.Errorf("http = %+v", c.HTTP)
	}
	if c.Limits.DrainTimeout != 0 {
		t.Errorf("limits = %+v", c.Limits)
	}
	if s := c.Services["books"]; s.HeartbeatPeriod != 0 || s.AuthorizationRenewalPeriod != 0 {
		t.Errorf("service = %+v", s)
	}
	// A null non-duration scalar counts as absent.
	c = mustParse(t, "ws: {port: null, host: null}\nlog: {level: null}\n")
	if c.WS.Port != 9000 || c.WS.Host != "127.0.0.1" || c.Log.Level != "info" {
		t.Errorf("null scalars should keep defaults: %+v %+v", c.WS, c.Log)
	}
}

func TestYAMLAndJSON(t *testing.T) {
	yml := `
ws: {host: 0.0.0.0, port: 8000, ping: {interval: 0.5, timeout: 2}}
redis: {url: "redis://:secret@r1:6380/3", on_loss: resubscribe}
authentication:
  ticket: {validation_url: "http://auth/ticket/", auth_fields: [session_id, user_id]}
services:
  books:
    authorizer: http://auth/authorizer/
    authorizer_fields: [capabilities]
    authorization_renewal_period: 300
    authorization_renewal_jitter: 30
    extra_fields: [organization_id]
    filter_fields: [user_id]
    on_subscribe: https://books/on_subscribe/
    heartbeat_period: 30
    on_heartbeat: http://books/heartbeat/
  empty: {}
  nulled:
`
	json := `{"ws": {"host": "0.0.0.0", "port": 8000, "ping": {"interval": 0.5, "timeout": 2}},
  "redis": {"url": "redis://:secret@r1:6380/3", "on_loss": "resubscribe"},
  "authentication": {"ticket": {"validation_url": "http://auth/ticket/", "auth_fields": ["session_id", "user_id"]}},
  "services": {"books": {"authorizer": "http://auth/authorizer/", "authorizer_fields": ["capabilities"],
    "authorization_renewal_period": 300, "authorization_renewal_jitter": 30,
    "extra_fields": ["organization_id"], "filter_fields": ["user_id"],
    "on_subscribe": "https://books/on_subscribe/", "heartbeat_period": 30,
    "on_heartbeat": "http://books/heartbeat/"},
   "empty": {}, "nulled": null}}`
	a, b := mustParse(t, yml), mustParse(t, json)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("YAML and JSON differ:\n%+v\n%+v", a, b)
	}
	if a.WS.Ping.Interval.Duration().Milliseconds() != 500 {
		t.Errorf("interval = %v", a.WS.Ping.Interval)
	}
	if got := a.ServiceNames(); !reflect.DeepEqual(got, []string{"books", "empty", "nulled"}) {
		t.Errorf("ServiceNames = %v", got)
	}
	for _, n := range []string{"empty", "nulled"} {
		s := a.Services[n]
		if s == nil || !reflect.DeepEqual(*s, Service{}) || !s.RequiresAuth() {
			t.Errorf("service %s = %+v, want empty requiring auth", n, s)
		}
	}
	bk := a.Services["books"]
	if bk.AuthorizationRenewalJitter != 30 || bk.OnHeartbeat != "http://books/heartbeat/" || bk.ExtraFields[0] != "organization_id" {
		t.Errorf("books = %+v", bk)
	}
	addr, db, pw, err := a.Redis.Address()
	if addr != "r1:6380" || db != 3 || pw != "secret" || err != nil {
		t.Errorf("Address = %q %d %q %v", addr, db, pw, err)
	}
}

func TestExampleFile(t *testing.T) {
	cfg, err := Load("../deploy/mako.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis != nil {
		t.Error("example must use the embedded broker")
	}
	if cfg.WS.Host != "127.0.0.1" || cfg.WS.Port != 9000 {
		t.Errorf("ws = %+v", cfg.WS)
	}
	if cfg.API == nil || cfg.API.Host != "127.0.0.1" || cfg.API.Port != 9001 || cfg.API.Token != "" {
		t.Errorf("api = %+v", cfg.API)
	}
	if cfg.Authentication.Ticket == nil || cfg.Authentication.Ticket.ValidationURL != "http://127.0.0.1:9002/auth/ticket/" {
		t.Errorf("ticket = %+v", cfg.Authentication.Ticket)
	}
	if got := cfg.ServiceNames(); !reflect.DeepEqual(got, []string{"demo"}) {
		t.Fatalf("services = %v", got)
	}
	d := cfg.Services["demo"]
	if d.RequiresAuth() || d.Authorizer != "" || d.OnSubscribe != "" || d.BeforeSubscribe != "" || d.OnMessage != "" {
		t.Errorf("demo = %+v", d)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: cannot read: no such file") {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("ws:\n  port: 70000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err == nil || err.Error() != p+": ws.port: 70000: must be 1..65535 (or 0 for a random port)" {
		t.Errorf("got %v", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Path != "ws.port" || ce.File != p {
		t.Errorf("not an *Error with path: %#v", err)
	}
}

// TestDecodeErrors covers unknown keys, type errors and syntax errors: each
// must be one line naming the file, and the key path where there is one.
func TestDecodeErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"wss: {}\n", "test.yaml:1: wss: unknown key (did you mean ws?)"},
		{"ws:\n  pingg: {}\n", "test.yaml:2: ws.pingg: unknown key (did you mean ping?)"},
		{"ws:\n  ping:\n    intervall: 3\n", "test.yaml:3: ws.ping.intervall: unknown key (did you mean interval?)"},
		{"services:\n  books:\n    authorizor: http://a/\n", "test.yaml:3: services.books.authorizor: unknown key (did you mean authorizer?)"},
		{"redis:\n  urll: redis://x\n", "test.yaml:2: redis.urll: unknown key (did you mean url?)"},
		{"api: {tokn: x}\n", "test.yaml:1: api.tokn: unknown key (did you mean token?)"},
		{"metrics: {prometheus: {prt: 1}}\n", "test.yaml:1: metrics.prometheus.prt: unknown key (did you mean port?)"},
		{"zzzzzzzz: 1\n", "test.yaml:1: zzzzzzzz: unknown key"},
		{`{"ws": {"ping": {"interval": 1, "bogus": 2}}}`, "test.yaml:1: ws.ping.bogus: unknown key"},
		{"ws:\n  port: \"abc\"\n", `test.yaml:2: ws.port: "abc": must be an integer`},
		{"ws:\n  port: [1]\n", "test.yaml:2: ws.port: a list: must be an integer"},
		{"ws:\n  ping:\n    interval: soon\n", `test.yaml:3: ws.ping.interval: "soon": must be a number of seconds`},
		{"ws:\n  compression: maybe\n", `test.yaml:2: ws.compression: "maybe": must be true or false`},
		{"ws:\n  allowed_origins: http://x\n", `test.yaml:2: ws.allowed_origins: "http://x": must be a list of strings`},
		{`{"ws": {"host": "h", "port": "a-very-long-port-value"}}`, `test.yaml:1: ws.port: "a-very-long-port-value": must be an integer`},
		{"services: [a, b]\n", "test.yaml:1: services: a list: must be a mapping"},
		{"ws: 3\n", `test.yaml:1: ws: "3": must be a mapping`},
		{"ws:\n  port: x\n  host: [1]\n", `test.yaml:2: ws.port: "x": must be an integer (and 1 more)`},
		{"ws: {port: 1}\nws: {port: 2}\n", `test.yaml:2: mapping key "ws" already defined at line 1`},
		{"ws: [\n", "test.yaml:1: did not find expected node content"},
		{"a: 1\n---\nb: 2\n", "test.yaml: must hold exactly one YAML document"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "test.yaml")
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tt.src, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q)\n got %q\nwant %q", tt.src, err.Error(), tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q): multi-line error %q", tt.src, err.Error())
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope.pem")

	tests := []struct{ src, want string }{
		// ws
		{"ws: {port: 70000}", "ws.port: 70000: must be 1..65535 (or 0 for a random port)"},
		{"ws: {port: -1}", "ws.port: -1: must be 1..65535 (or 0 for a random port)"},
		{"ws: {tls: {cert: " + cert + "}}", `ws.tls.key: "": must be set when ws.tls.cert is set`},
		{"ws: {tls: {key: " + cert + "}}", `ws.tls.cert: "": must be set when ws.tls.key is set`},
		{"ws: {tls: {cert: " + missing + ", key: " + cert + "}}", `ws.tls.cert: "` + missing + `": cannot read: no such file or directory`},
		{"ws: {tls: {cert: " + cert + ", key: " + dir + "}}", `ws.tls.key: "` + dir + `": not a regular file`},
		{"http: {ca_file: /dev/zero}", `http.ca_file: "/dev/zero": not a regular file`},
		{"ws: {ping: {interval: -1}}", "ws.ping.interval: -1: must not be negative"},
		{"ws: {ping: {interval: .nan}}", "ws.ping.interval: NaN: must be a finite number of seconds"},
		{"ws: {ping: {interval: .inf}}", "ws.ping.interval: +Inf: must be a finite number of seconds"},
		{"ws: {ping: {interval: 1e12}}", "ws.ping.interval: 1e+12: must be at most 1e9 seconds"},
		{"ws: {ping: {timeout: -0.5}}", "ws.ping.timeout: -0.5: must not be negative"},
		{"ws: {ping: {interval: 5, timeout: 0}}", "ws.ping.timeout: 0: must be greater than 0 when ws.ping.interval is set"},
		{"ws: {max_message_size: 124}", "ws.max_message_size: 124: must be 125..1073741824"},
		{"ws: {max_message_size: 1073741825}", "ws.max_message_size: 1073741825: must be 125..1073741824"},
		{"ws: {handshake_timeout: -1}", "ws.handshake_timeout: -1: must not be negative"},
		{"ws: {max_outbound_bytes: -1}", "ws.max_outbound_bytes: -1: must be at least 1"},
		{"ws: {max_outbound_bytes: 0}", "ws.max_outbound_bytes: 0: must be at least 1"},
		{"ws: {allowed_origins: ['https://a', '']}", `ws.allowed_origins[1]: "": must not be empty`},
		// redis
		{"redis: {port: 0}", "redis.port: 0: must be 1..65535"},
		{"redis: {db: -1}", "redis.db: -1: must not be negative"},
		{"redis: {url: 'http://x'}", `redis.url: "http://x": scheme must be redis, rediss or unix`},
		{"redis: {url: 'redis://'}", `redis.url: "redis://": must have a host`},
		{"redis: {url: 'redis://h:99999'}", `redis.url: "redis://h:99999": port must be 1..65535`},
		{"redis: {url: 'redis://u:pw@h/x'}", `redis.url: "redis://xxxxx@h/x": database must be a non-negative integer`},
		{"redis: {url: 'redis://u:p%zz@h'}", `redis.url: "<unparseable URL>": not a valid URL`},
		{"redis: {url: 'unix://'}", `redis.url: "unix://": must have a socket path`},
		{"redis: {cluster: true}", "redis.addrs: []: must list the cluster seed nodes when redis.cluster is true"},
		{"redis: {sharded: true}", "redis.sharded: true: requires redis.cluster: true"},
		{"redis: {cluster: true, addrs: ['a:1', 'b']}", `redis.addrs[1]: "b": must be host:port`},
		{"redis: {cluster: true, addrs: ['a:0']}", `redis.addrs[0]: "a:0": must be host:port`},
		{"redis: {ping_interval: -1}", "redis.ping_interval: -1: must not be negative"},
		{"redis: {ping_timeout: 0}", "redis.ping_timeout: 0: must be greater than 0 when redis.ping_interval is set"},
		{"redis: {on_loss: flush}", `redis.on_loss: "flush": must be one of drain, resubscribe`},
		{"redis: {drain_window: -3}", "redis.drain_window: -3: must not be negative"},
		{"redis_alt: {on_loss: x}", `redis_alt.on_loss: "x": must be one of drain, resubscribe`},
		{"redis_alt: {sharded: true}", "redis_alt.sharded: true: requires redis_alt.cluster: true"},
		// http
		{"http: {timeout: -1}", "http.timeout: -1: must not be negative"},
		{"http: {tries: 0}", "http.tries: 0: must be at least 1"},
		{"http: {wait: -1}", "http.wait: -1: must not be negative"},
		{"http: {ca_file: " + missing + "}", `http.ca_file: "` + missing + `": cannot read: no such file or directory`},
		{"http: {rate_limit_reset_header_names: ['']}", `http.rate_limit_reset_header_names[0]: "": must not be empty`},
		{"http: {workers: 0}", "http.workers: 0: must be at least 1"},
		{"http: {max_queued_per_service: -1}", "http.max_queued_per_service: -1: must be at least 0"},
		{"http: {max_concurrency_per_service: 0}", "http.max_concurrency_per_service: 0: must be at least 1"},
		{"http: {breaker_failures: -1}", "http.breaker_failures: -1: must be at least 0"},
		{"http: {breaker_cooldown: -1}", "http.breaker_cooldown: -1: must not be negative"},
		{"http: {breaker_cooldown: 0}", "http.breaker_cooldown: 0: must be greater than 0 when http.breaker_failures is set"},
		{"http: {breaker_cooldown: 90}", "http.breaker_max_cooldown: 60: must be at least http.breaker_cooldown"},
		// api, metrics, log
		{"api: {port: 65536}", "api.port: 65536: must be 1..65535 (or 0 for a random port)"},
		{"metrics: {prometheus: {port: 0}}", "metrics.prometheus.port: 0: must be 1..65535"},
		{"log: {level: verbose}", `log.level: "verbose": must be one of debug, info, warn, error`},
		{"log: {format: xml}", `log.format: "xml": must be one of json, text`},
		// authentication
		{"authentication: {ticket: {}}", `authentication.ticket.validation_url: "": must be set when authentication.ticket is present`},
		{"authentication: {ticket: {validation_url: 'ftp://a/'}}", `authentication.ticket.validation_url: "ftp://a/": must be an http:// or https:// URL`},
		{"authentication: {ticket: {validation_url: 'auth/ticket'}}", `authentication.ticket.validation_url: "auth/ticket": must be an http:// or https:// URL`},
		{"authentication: {ticket: {validation_url: 'http:///x'}}", `authentication.ticket.validation_url: "http:///x": must have a host`},
		{"authentication: {ticket: {validation_url: 'http://a/', auth_fields: ['']}}", `authentication.ticket.auth_fields[0]: "": must not be empty`},
		// services
		{"services: {'': {}}", `services: "": service name must not be empty`},
		{"services: {'a.b': {}}", `services: "a.b": service name must not contain "."`},
		{"services: {b: {authorizer: 'x'}}", `services.b.authorizer: "x": must be an http:// or https:// URL`},
		{"services: {b: {before_subscribe: 'http://'}}", `services.b.before_subscribe: "http://": must have a host`},
		{"services: {b: {on_subscribe: ':'}}", `services.b.on_subscribe: ":": not a valid URL`},
		{"services: {b: {on_message: 'ws://a'}}", `services.b.on_message: "ws://a": must be an http:// or https:// URL`},
		{"services: {b: {before_unsubscribe: 'x'}}", `services.b.before_unsubscribe: "x": must be an http:// or https:// URL`},
		{"services: {b: {on_unsubscribe: 'x'}}", `services.b.on_unsubscribe: "x": must be an http:// or https:// URL`},
		{"services: {b: {on_authorization_change: 'x'}}", `services.b.on_authorization_change: "x": must be an http:// or https:// URL`},
		{"services: {b: {on_heartbeat: 'x'}}", `services.b.on_heartbeat: "x": must be an http:// or https:// URL`},
		{"services: {b: {on_heartbeat: 'http://u:pw@h:1:2/'}}", `services.b.on_heartbeat: "<unparseable URL>": not a valid URL`},
		{"services: {b: {heartbeat_period: -1}}", "services.b.heartbeat_period: -1: must not be negative"},
		{"services: {b: {authorization_renewal_period: -1}}", "services.b.authorization_renewal_period: -1: must not be negative"},
		{"services: {b: {authorization_renewal_period: 10, authorization_renewal_jitter: 11}}",
			"services.b.authorization_renewal_jitter: 11: must not exceed services.b.authorization_renewal_period (10)"},
		{"services: {b: {authorization_renewal_jitter: -1}}", "services.b.authorization_renewal_jitter: -1: must not be negative"},
		// limits
		{"limits: {max_queued_events: -1}", "limits.max_queued_events: -1: must not be negative"},
		{"limits: {max_subscriptions: -1}", "limits.max_subscriptions: -1: must be at least 1"},
		{"limits: {max_subscriptions: 0}", "limits.max_subscriptions: 0: must be at least 1"},
		{"limits: {drain_timeout: -1}", "limits.drain_timeout: -1: must not be negative"},
		{"limits: {max_connections: -1}", "limits.max_connections: -1: must not be negative"},
		{"limits: {max_inbound_bytes: -1}", "limits.max_inbound_bytes: -1: must not be negative"},
		{"ws: {close_timeout: -1}", "ws.close_timeout: -1: must not be negative"},
		{"ws: {socket_send_buffer: -1}", "ws.socket_send_buffer: -1: must not be negative"},
		{"limits: {max_loop_backlog: 0}", "limits.max_loop_backlog: 0: must be at least 1"},
		// Reported in a fixed order: the first problem wins.
		{"services: {z: {authorizer: 'x'}, a: {authorizer: 'y'}}", `services.a.authorizer: "y": must be an http:// or https:// URL`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src), "v.yaml")
		want := "v.yaml: " + tt.want
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tt.src, want)
			continue
		}
		if err.Error() != want {
			t.Errorf("Parse(%q)\n got %q\nwant %q", tt.src, err.Error(), want)
		}
	}

	valid := []string{
		"ws: {port: 0, max_message_size: 125, tls: {cert: " + cert + ", key: " + cert + "}}",
		"ws: {ping: {interval: 0, timeout: 0}}",
		"redis: {ping_interval: 0, ping_timeout: 0, drain_window: 0, on_loss: resubscribe}",
		"redis: {cluster: true, sharded: true, addrs: ['r1:7000', '[::1]:7001']}",
		"redis: {url: 'rediss://u:p@h:7000/5'}",
		"redis: {url: 'unix:///tmp/redis.sock?db=2'}",
		"http: {tries: 1, wait: 0, timeout: 0, ca_file: " + cert + "}",
		"api: {port: 0, token: s3cret}",
		"log: {level: debug, format: text}",
		"authentication: {ticket: {validation_url: 'https://a:8443/t/'}}",
		"services: {b: {heartbeat_period: 30}}",
		"services: {b: {on_heartbeat: 'http://h/'}}",
		"services: {b: {authorization_renewal_period: 10, authorization_renewal_jitter: 10}}",
		"services: {b: {authorization_renewal_jitter: 10}}",
		"services: {b: {require_authentication: false}}",
	}
	for _, src := range valid {
		if _, err := Parse([]byte(src), "v.yaml"); err != nil {
			t.Errorf("Parse(%q): %v", src, err)
		}
	}
}

func TestValidateDirect(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c.Services = map[string]*Service{"books": nil, "x": {}}
	if err := c.Validate(); err != nil {
		t.Fatalf("nil service entry: %v", err)
	}
	c.HTTP.Tries = 0
	if err := c.Validate(); err == nil || err.Error() != "http.tries: 0: must be at least 1" {
		t.Errorf("got %v", err)
	}
}

func TestRedisAddress(t *testing.T) {
	tests := []struct {
		r        Redis
		addr     string
		db       int
		password string
		tls      bool
		str      string
		err      string
	}{
		{r: Redis{Host: "localhost", Port: 6379}, addr: "localhost:6379", str: "redis://localhost:6379/0"},
		{r: Redis{Host: "r", Port: 7000, DB: 4}, addr: "r:7000", db: 4, str: "redis://r:7000/4"},
		{r: Redis{Host: "::1", Port: 7000}, addr: "[::1]:7000", str: "redis://[::1]:7000/0"},
		// An explicit url wins over host/port/db.
		{r: Redis{URL: "redis://u:pw@h:1/2", Host: "x", Port: 9, DB: 9}, addr: "h:1", db: 2, password: "pw", str: "redis://xxxxx@h:1/2"},
		{r: Redis{URL: "redis://:pw@h"}, addr: "h:6379", password: "pw", str: "redis://xxxxx@h"},
		{r: Redis{URL: "rediss://h?db=7"}, addr: "h:6379", db: 7, tls: true, str: "rediss://h?db=7"},
		{r: Redis{URL: "redis://user@h/"}, addr: "h:6379", str: "redis://xxxxx@h/"},
		{r: Redis{URL: "unix:///run/redis.sock?db=1"}, addr: "/run/redis.sock", db: 1, str: "unix:///run/redis.sock?db=1"},
		{r: Redis{URL: "http://h"}, err: `redis url "http://h": scheme must be redis, rediss or unix`, str: "http://h"},
		{r: Redis{URL: "redis://u:pw@h/-1"}, err: `redis url "redis://xxxxx@h/-1": database must be a non-negative integer`, str: "redis://xxxxx@h/-1"},
	}
	for _, tt := range tests {
		addr, db, pw, err := tt.r.Address()
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%+v: err %v, want %q", tt.r, err, tt.err)
			}
		} else if err != nil || addr != tt.addr || db != tt.db || pw != tt.password {
			t.Errorf("%+v: got %q %d %q %v, want %q %d %q", tt.r, addr, db, pw, err, tt.addr, tt.db, tt.password)
		}
		if tt.r.TLS() != tt.tls {
			t.Errorf("%+v: TLS = %v", tt.r, tt.r.TLS())
		}
		if s := tt.r.String(); s != tt.str {
			t.Errorf("%+v: String = %q, want %q", tt.r, s, tt.str)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"redis://:secret@h:6379/0", "redis://xxxxx@h:6379/0"},
		{"redis://user:secret@h/1", "redis://xxxxx@h/1"},
		{"rediss://user@h", "rediss://xxxxx@h"},
		{"https://a:b@example.com/x?y=1", "https://xxxxx@example.com/x?y=1"},
		{"http://example.com/path@x", "http://example.com/path@x"},
		{"user:secret@h:6379", "<unparseable URL>"},
		{"redis://u:p%zz@h", "<unparseable URL>"},
		{"::not a url", "<unparseable URL>"},
		{"", ""},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) leaks the secret: %q", tt.in, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"ws: {port: 9000}\n",
		"ws:\n  pingg: 1\n",
		"services:\n  empty:\n  books: {authorizer: 'http://a/'}\n",
		`{"redis": {"url": "redis://:p@h/1"}, "api": {}}`,
		"a: &x {b: *x}\n",
		"ws: &a {port: 1}\nredis: *a\n",
		"<<: {ws: {}}\n",
		"ws: {ping: {interval: null}}\nservices: {x: {heartbeat_period: ~}}\n",
		"- 1\n- 2\n",
		"ws: [\n",
		"a: 1\n---\nb: 2\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err.Error())
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without error")
		}
		for _, r := range []*Redis{cfg.Redis, cfg.RedisAlt} {
			if r != nil {
				_, _, _, _ = r.Address()
				_ = r.String()
			}
		}
		_ = cfg.ServiceNames()
	})
}

// FuzzLoad loads arbitrary bytes from a file, as mako does at start-up: it
// must match Parse on the same bytes, fail with one line naming the file,
// or give a configuration that validates again unchanged.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../deploy/mako.example.yaml", "../deploy/mako.redis.yaml", "../deploy/bench/mako.bench.yaml", "../deploy/container/mako.container.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("ws: {port: '9000', max_message_size: 1e3}\n"))
	f.Add([]byte("services:\n  books: {authorizer: 'http://a/', heartbeat_period: .5}\n"))
	f.Add([]byte("\xef\xbb\xbfws: {port: 1}\n"))
	f.Add([]byte("ws:\n\tport: 1\n"))
	path := filepath.Join(f.TempDir(), "mako.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		pcfg, perr := Parse(data, path)
		if (err == nil) != (perr == nil) || err != nil && err.Error() != perr.Error() {
			t.Fatalf("Load: %v; Parse: %v", err, perr)
		}
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, path) {
				t.Fatalf("error %q: not one line naming the file", msg)
			}
			return
		}
		if !reflect.DeepEqual(cfg, pcfg) {
			t.Fatal("Load and Parse differ")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded config does not validate again: %v", err)
		}
		if !reflect.DeepEqual(cfg, pcfg) {
			t.Fatal("validating a loaded config again changed it")
		}
	})
}
