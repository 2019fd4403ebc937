package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestSocketSharkSpellings: each way a SocketShark setting may be written
// in mako's YAML when ported by hand (docs/config.md, "Porting by hand").
func TestSocketSharkSpellings(t *testing.T) {
	type got struct {
		WSPort, RedisPort, AltPort, PromPort, APIPort int
		Level, CAFile                                 string
		Headers                                       []string
	}
	read := func(c *Config) got {
		g := got{WSPort: c.WS.Port, RedisPort: -1, AltPort: -1, PromPort: -1, APIPort: -1,
			Level: c.Log.Level, CAFile: c.HTTP.CAFile, Headers: c.HTTP.RateLimitResetHeaderNames}
		if c.Redis != nil {
			g.RedisPort = c.Redis.Port
		}
		if c.RedisAlt != nil {
			g.AltPort = c.RedisAlt.Port
		}
		if c.Metrics.Prometheus != nil {
			g.PromPort = c.Metrics.Prometheus.Port
		}
		if c.API != nil {
			g.APIPort = c.API.Port
		}
		return g
	}
	def := got{WSPort: 9000, RedisPort: -1, AltPort: -1, PromPort: -1, APIPort: -1, Level: "info", Headers: []string{"X-Rate-Limit-Reset"}}
	with := func(f func(*got)) got {
		g := def
		f(&g)
		return g
	}
	cases := []struct {
		name, src string
		want      got
	}{
		// WS_PORT = "9000" in SocketShark's example: ports are handed to
		// the socket layer, which takes a string.
		{"ws.port string", `ws: {port: "9000"}`, def},
		{"ws.port string other", `ws: {port: "9100"}`, with(func(g *got) { g.WSPort = 9100 })},
		{"ws.port single-quoted, blanks", "ws: {port: ' 9101 '}", with(func(g *got) { g.WSPort = 9101 })},
		{"ws.port block style", "ws:\n  port: \"9102\"\n", with(func(g *got) { g.WSPort = 9102 })},
		{"redis.port string", `redis: {port: "6380"}`, with(func(g *got) { g.RedisPort = 6380 })},
		{"redis_alt.port string", `redis_alt: {port: "6381"}`, with(func(g *got) { g.AltPort = 6381 })},
		{"metrics.prometheus.port string", `metrics: {prometheus: {port: "9091"}}`, with(func(g *got) { g.PromPort = 9091 })},
		{"api.port string", `api: {port: "9002"}`, with(func(g *got) { g.APIPort = 9002 })},
		{"JSON port string", `{"ws": {"port": "9103"}}`, with(func(g *got) { g.WSPort = 9103 })},
		// LOG["level"] is Python logging's upper-case name.
		{"log.level INFO", `log: {level: INFO}`, def},
		{"log.level DEBUG", `log: {level: DEBUG}`, with(func(g *got) { g.Level = "debug" })},
		{"log.level Error", `log: {level: Error}`, with(func(g *got) { g.Level = "error" })},
		{"log.level WARNING", `log: {level: WARNING}`, with(func(g *got) { g.Level = "warn" })},
		{"log.level warning", `log: {level: warning}`, with(func(g *got) { g.Level = "warn" })},
		{"log.level WARN", `log: {level: WARN}`, with(func(g *got) { g.Level = "warn" })},
		// HTTP["ssl_cafile"] is http.ca_file.
		{"http.ssl_cafile", `http: {ssl_cafile: config.go}`, with(func(g *got) { g.CAFile = "config.go" })},
		{"http.ssl_cafile equal to ca_file", `http: {ssl_cafile: config.go, ca_file: config.go}`, with(func(g *got) { g.CAFile = "config.go" })},
		{"http.ssl_cafile null", `http: {ssl_cafile: null}`, def},
		// HTTP["rate_limit_reset_header_names"] or [rate_limit_reset_header_name].
		{"header name alone", `http: {rate_limit_reset_header_name: X-A}`, with(func(g *got) { g.Headers = []string{"X-A"} })},
		{"header names win", `http: {rate_limit_reset_header_name: X-A, rate_limit_reset_header_names: [X-B, X-C]}`, with(func(g *got) { g.Headers = []string{"X-B", "X-C"} })},
		{"empty names fall back to the default name", `http: {rate_limit_reset_header_names: []}`, def},
		{"empty names fall back to the name", `http: {rate_limit_reset_header_names: [], rate_limit_reset_header_name: X-A}`, with(func(g *got) { g.Headers = []string{"X-A"} })},
		{"empty name reads no header", `http: {rate_limit_reset_header_names: [], rate_limit_reset_header_name: ""}`, with(func(g *got) { g.Headers = []string{} })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.src), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if g := read(c); !reflect.DeepEqual(g, tc.want) {
				t.Errorf("got %+v\nwant %+v", g, tc.want)
			}
		})
	}
}

func TestSocketSharkSpellingErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{`ws: {port: "90a0"}`, `t.yaml:1: ws.port: "90a0": must be an integer`},
		{`ws: {port: ""}`, `t.yaml:1: ws.port: "": must be an integer`},
		{`ws: {port: "http"}`, `t.yaml:1: ws.port: "http": must be an integer`},
		{`ws: {port: "70000"}`, `ws.port: 70000: must be 1..65535`},
		{"redis:\n  port: \"a very long port value\"\n", `t.yaml:2: redis.port: "a very long port value": must be an integer`},
		{`metrics: {prometheus: {port: "0"}}`, `metrics.prometheus.port: 0: must be 1..65535`},
		{`ws: {port: [1]}`, `ws.port: a list: must be an integer`},
		// Only ports take strings: SocketShark computes with the others.
		{`ws: {max_message_size: "2048"}`, `ws.max_message_size: "2048": must be an integer`},
		{`http: {tries: "3"}`, `http.tries: "3": must be an integer`},
		{`redis: {db: "1"}`, `redis.db: "1": must be an integer`},
		{`log: {level: CRITICAL}`, `log.level: "CRITICAL": must be one of debug, info, warn, error`},
		{`log: {level: "%(levelname)s"}`, `log.level: "%(levelname)s": must be one of`},
		{`http: {ssl_cafile: config.go, ca_file: load.go}`, `http.ssl_cafile: "config.go": conflicts with http.ca_file "load.go"`},
		{`http: {ssl_cafile: /nonexistent/ca.pem}`, `t.yaml: http.ssl_cafile: "/nonexistent/ca.pem": cannot read`},
		{`ws: {ssl: {cert: a, key: b}}`, `ws.ssl: unknown key (SocketShark's WS_SSL has no mako key`},
		{`WS_PORT: 9000`, `WS_PORT: unknown key (SocketShark's WS_PORT is ws.port)`},
		{`backend: websockets`, `backend: unknown key (SocketShark's BACKEND`},
		{`log: {trace_level: INFO}`, `log.trace_level: unknown key (SocketShark's LOG["trace_level"] has no mako key`},
		{`log: {logger_name: socketshark}`, `log.logger_name: unknown key (SocketShark's LOG["logger_name"]`},
		{`log: {setup_structlog: true}`, `log.setup_structlog: unknown key (SocketShark's LOG["setup_structlog"]`},
		{`log: {format: "%(message)s"}`, `log.format: "%(message)s": must be one of json, text`},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.src), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

// TestShadowKeepsStrictness: a section decoded through its shadow type
// still rejects unknown keys and still reports every field's type error.
func TestShadowKeepsStrictness(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"ws: {port: \"9000\", hots: x}", "ws.hots: unknown key (did you mean host?)"},
		{"redis: {port: \"1\", on_los: drain}", "redis.on_los: unknown key (did you mean on_loss?)"},
		{"api: {port: \"1\", tokn: x}", "api.tokn: unknown key (did you mean token?)"},
		{"metrics: {prometheus: {port: \"1\", hst: x}}", "metrics.prometheus.hst: unknown key (did you mean host?)"},
		{"ws: {port: \"9000\", ping: {interval: x}}", `ws.ping.interval: "x": must be a number of seconds`},
	} {
		_, err := Parse([]byte(tc.src), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.src, err, tc.want)
		}
	}
	// Every field of the shadowed sections survives the round trip.
	c := mustParse(t, `ws: {host: h, port: "1", ping: {interval: 2, timeout: 3}, max_message_size: 4096, handshake_timeout: 5,
  compression: false, max_outbound_bytes: 6, allowed_origins: [o], close_timeout: 7, socket_send_buffer: 8}`)
	want := WS{Host: "h", Port: 1, Ping: Ping{2, 3}, MaxMessageSize: 4096, HandshakeTimeout: 5, MaxOutboundBytes: 6,
		AllowedOrigins: []string{"o"}, CloseTimeout: 7, SocketSendBuffer: 8}
	if !reflect.DeepEqual(c.WS, want) {
		t.Errorf("ws = %+v, want %+v", c.WS, want)
	}
}
