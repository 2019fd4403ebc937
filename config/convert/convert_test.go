package convert

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"mako/config"
)

// python3 is required, not optional: CI has it, and these tests are what
// guards `mako convert-config`.
func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to test convert-config:", err)
	}
	return p
}

// convertFile runs a testdata module from a temporary copy of testdata,
// next to a ca.pem its HTTP["ssl_cafile"] may name (config.Parse checks
// that the file is readable).
func convertFile(t *testing.T, name string) (*Result, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("not parsed by the check\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(context.Background(), python(t), path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(res.YAML, name)
	if err != nil {
		t.Fatalf("the result does not pass mako check: %v\n%s", err, res.YAML)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("python left files next to the config: %v", entries)
	}
	return res, cfg
}

func ptr[T any](v T) *T { return &v }

// TestEverySetting converts a module that sets every SocketShark setting
// and checks where each value lands.
func TestEverySetting(t *testing.T) {
	res, c := convertFile(t, "every_setting.py")
	dir := filepath.Dir(c.HTTP.CAFile)
	want := config.Default()
	want.WS.Host, want.WS.Port = "0.0.0.0", 9100
	want.WS.Ping = config.Ping{Interval: 20, Timeout: 7.5}
	want.HTTP.CAFile = filepath.Join(dir, "ca.pem")
	want.HTTP.Timeout, want.HTTP.Tries, want.HTTP.Wait = 4, 5, 0.25
	want.HTTP.RateLimitResetHeaderNames = []string{"Retry-After", "X-Rate-Limit-Reset"}
	redis := func(host string, port, db int, ping, timeout config.Seconds) *config.Redis {
		return &config.Redis{Host: host, Port: port, DB: db, ChannelPrefix: "shark.", PingInterval: ping, PingTimeout: timeout,
			OnLoss: "drain", DrainWindow: 30, LossGrace: 5}
	}
	want.Redis = redis("redis.internal", 6380, 2, 3, 1.5)
	want.RedisAlt = redis("redis-old.internal", 6381, 0, 0, 2)
	want.Metrics.Prometheus = &config.Prometheus{Host: "127.0.0.2", Port: 9191}
	want.Metrics.Log = ptr(map[string]any{})
	want.Log = config.Log{Level: "warn", Format: "json", RateLimitInterval: 1}
	want.Authentication.Ticket = &config.Ticket{ValidationURL: "http://auth.internal/ticket/", AuthFields: []string{"session_id", "user_id"}}
	want.Services = map[string]*config.Service{
		"books": {
			RequireAuthentication:      ptr(false),
			Authorizer:                 "http://auth.internal/authorizer/",
			AuthorizerFields:           []string{"capabilities"},
			AuthorizationRenewalPeriod: 600,
			AuthorizationRenewalJitter: 60,
			ExtraFields:                []string{"organization_id"},
			FilterFields:               []string{"user_id"},
			BeforeSubscribe:            "http://books/before_subscribe/",
			OnSubscribe:                "http://books/on_subscribe/",
			OnMessage:                  "http://books/on_message/",
			BeforeUnsubscribe:          "http://books/before_unsubscribe/",
			OnUnsubscribe:              "http://books/on_unsubscribe/",
			OnAuthorizationChange:      "http://books/on_authorization_change/",
			HeartbeatPeriod:            45,
			OnHeartbeat:                "http://books/on_heartbeat/",
		},
		"open": {},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("converted config\n got %+v\nwant %+v\n%s", c, want, res.YAML)
		for _, p := range [][2]any{{c.WS, want.WS}, {c.HTTP, want.HTTP}, {*c.Redis, *want.Redis}, {*c.RedisAlt, *want.RedisAlt},
			{c.Log, want.Log}, {*c.Services["books"], *want.Services["books"]}} {
			if !reflect.DeepEqual(p[0], p[1]) {
				t.Errorf("got  %+v\nwant %+v", p[0], p[1])
			}
		}
	}
	// Every setting without a mako key is named, and only those.
	wantWarn := []string{
		`WS_SSL: mako does not terminate TLS`,
		`LOG["format"] = "%(asctime)s %(message)s": a Python logging format has no mako key`,
		`LOG["logger_name"] = "shark": no mako key`,
		`LOG["trace_logger_prefix"] = "tr": no mako key`,
		`LOG["trace_level"] = "DEBUG": no mako key`,
		`HERE: not a SocketShark setting`,
	}
	checkWarnings(t, res.Warnings, wantWarn)
	// One comment per key naming the SocketShark setting.
	for _, line := range []string{
		`port: 9100 # WS_PORT = "9100"`,
		`interval: 20 # WS_PING["interval"]`,
		`db: 2 # REDIS["db"]`,
		`ping_interval: 0 # REDIS_ALT["ping_interval"]`,
		`rate_limit_reset_header_names: [Retry-After, X-Rate-Limit-Reset] # HTTP["rate_limit_reset_header_names"]`,
		`level: warn # LOG["level"]`,
		`auth_fields: [session_id, user_id] # AUTHENTICATION["ticket"]["auth_fields"]`,
		`on_heartbeat: http://books/on_heartbeat/ # SERVICES["books"]["on_heartbeat"]`,
		`open: {} # SERVICES["open"]`,
	} {
		if !strings.Contains(string(res.YAML), line) {
			t.Errorf("output lacks %q:\n%s", line, res.YAML)
		}
	}
	commentsPerKey(t, res.YAML)
}

// commentsPerKey: every key line of the output names its source.
func commentsPerKey(t *testing.T, y []byte) {
	t.Helper()
	for _, line := range strings.Split(string(y), "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" || line == "ws:" {
			continue
		}
		if !strings.Contains(line, " # ") {
			t.Errorf("line without a source comment: %q", line)
		}
	}
}

func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("no warning containing %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// TestLikeExample: the settings of SocketShark's example config.
func TestLikeExample(t *testing.T) {
	res, c := convertFile(t, "like_example.py")
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	if c.WS.Port != 9000 || c.WS.Host != "127.0.0.1" || c.Redis == nil || c.Redis.Host != "localhost" || c.Redis.Port != 6379 ||
		c.Metrics.Prometheus == nil || *c.Metrics.Prometheus != (config.Prometheus{Host: "", Port: 9090}) {
		t.Errorf("ws %+v redis %+v prometheus %+v", c.WS, c.Redis, c.Metrics.Prometheus)
	}
	s := c.Services["orders"]
	if s == nil || !s.RequiresAuth() || s.OnHeartbeat != "http://orders.example/on_heartbeat/" || s.HeartbeatPeriod != 30 {
		t.Errorf("service = %+v", s)
	}
	commentsPerKey(t, res.YAML)
}

// TestEmptyModule: SocketShark's defaults alone, written out explicitly
// where mako's defaults could differ (Redis is on: SocketShark always
// uses it).
func TestEmptyModule(t *testing.T) {
	res, c := convertFile(t, "empty.py")
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	if c.Redis == nil || c.Redis.Host != "localhost" || c.Redis.Port != 6379 || c.WS.Port != 9000 || c.HTTP.Tries != 3 {
		t.Errorf("redis %+v ws %+v", c.Redis, c.WS)
	}
	if !strings.Contains(string(res.YAML), `port: 9000 # WS_PORT (SocketShark default) = "9000"`) {
		t.Errorf("output:\n%s", res.YAML)
	}
}

// TestRealExample runs on SocketShark's own example config when its source
// is on this machine (CI has no copy; the modules above cover the same
// settings).
func TestRealExample(t *testing.T) {
	repo := "/work/.mirror/closeio+socketshark/repo"
	if _, err := os.Stat(repo); err != nil {
		t.Skip("no SocketShark checkout here")
	}
	src, err := exec.Command("git", "-C", repo, "show", "HEAD:example_config.py").Output()
	if err != nil {
		t.Skip("cannot read example_config.py:", err)
	}
	path := filepath.Join(t.TempDir(), "example_config.py")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(context.Background(), python(t), path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(res.YAML); err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
}

func TestLoadErrors(t *testing.T) {
	py := python(t)
	for _, tc := range []struct{ file, want string }{
		{"broken.py", "ModuleNotFoundError: No module named 'socketshark_plugin_that_does_not_exist'"},
		{"nope.py", "No such file"},
	} {
		_, err := Load(context.Background(), py, filepath.Join("testdata", tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %v, want %q", tc.file, err, tc.want)
		}
	}
	if _, err := Load(context.Background(), "/nonexistent/python3", "testdata/empty.py"); err == nil {
		t.Error("a missing interpreter must fail")
	}
}

// TestMapping: one row per SocketShark setting form, converted and then
// read back through config.Parse (what `mako check` and `mako -c` do).
func TestMapping(t *testing.T) {
	cases := []struct {
		name, module string
		get          func(*config.Config) any
		want         any
	}{
		{"WS_PORT int", `{"WS_PORT": 9100}`, func(c *config.Config) any { return c.WS.Port }, 9100},
		{"WS_PORT string", `{"WS_PORT": "9101"}`, func(c *config.Config) any { return c.WS.Port }, 9101},
		{"WS_PORT string blanks", `{"WS_PORT": " 9102 "}`, func(c *config.Config) any { return c.WS.Port }, 9102},
		{"WS_HOST empty = every interface", `{"WS_HOST": ""}`, func(c *config.Config) any { return c.WS.Host }, ""},
		{"WS_HOST None = every interface", `{"WS_HOST": null}`, func(c *config.Config) any { return c.WS.Host }, ""},
		{"WS_PING partial keeps timeout", `{"WS_PING": {"interval": 5}}`, func(c *config.Config) any { return c.WS.Ping }, config.Ping{Interval: 5, Timeout: 15}},
		{"WS_PING None disables", `{"WS_PING": {"interval": null}}`, func(c *config.Config) any { return c.WS.Ping.Interval }, config.Seconds(0)},
		{"WS_SSL empty is no TLS", `{"WS_SSL": {}}`, func(c *config.Config) any { return c.WS.TLS }, config.TLS{}},
		{"REDIS partial keeps defaults", `{"REDIS": {"host": "r"}}`, func(c *config.Config) any {
			return [3]any{c.Redis.Host, c.Redis.Port, c.Redis.PingInterval}
		}, [3]any{"r", 6379, config.Seconds(10)}},
		{"REDIS port string", `{"REDIS": {"port": "6390"}}`, func(c *config.Config) any { return c.Redis.Port }, 6390},
		{"REDIS db", `{"REDIS": {"db": 3}}`, func(c *config.Config) any { return c.Redis.DB }, 3},
		{"REDIS channel_prefix", `{"REDIS": {"channel_prefix": "p:"}}`, func(c *config.Config) any { return c.Redis.ChannelPrefix }, "p:"},
		{"REDIS ping_timeout float", `{"REDIS": {"ping_timeout": 0.5}}`, func(c *config.Config) any { return c.Redis.PingTimeout }, config.Seconds(0.5)},
		{"REDIS_ALT None", `{"REDIS_ALT": null}`, func(c *config.Config) any { return c.RedisAlt == nil }, true},
		{"REDIS_ALT empty is off", `{"REDIS_ALT": {}}`, func(c *config.Config) any { return c.RedisAlt == nil }, true},
		{"REDIS_ALT", `{"REDIS_ALT": {"host": "old", "port": "6400"}}`, func(c *config.Config) any { return [2]any{c.RedisAlt.Host, c.RedisAlt.Port} }, [2]any{"old", 6400}},
		{"HTTP ssl_cafile None", `{"HTTP": {"ssl_cafile": null}}`, func(c *config.Config) any { return c.HTTP.CAFile }, ""},
		{"HTTP ssl_cafile", `{"HTTP": {"ssl_cafile": "convert.go"}}`, func(c *config.Config) any { return c.HTTP.CAFile }, "convert.go"},
		{"HTTP timeout tries wait", `{"HTTP": {"timeout": 2.5, "tries": 1, "wait": 0}}`, func(c *config.Config) any {
			return [3]any{c.HTTP.Timeout, c.HTTP.Tries, c.HTTP.Wait}
		}, [3]any{config.Seconds(2.5), 1, config.Seconds(0)}},
		{"HTTP header name (deprecated) alone", `{"HTTP": {"rate_limit_reset_header_name": "X-A"}}`, func(c *config.Config) any { return c.HTTP.RateLimitResetHeaderNames }, []string{"X-A"}},
		{"HTTP header names win", `{"HTTP": {"rate_limit_reset_header_name": "X-A", "rate_limit_reset_header_names": ["X-B"]}}`, func(c *config.Config) any { return c.HTTP.RateLimitResetHeaderNames }, []string{"X-B"}},
		{"HTTP empty header name", `{"HTTP": {"rate_limit_reset_header_name": ""}}`, func(c *config.Config) any { return c.HTTP.RateLimitResetHeaderNames }, []string{}},
		{"METRICS log", `{"METRICS": {"log": {}}}`, func(c *config.Config) any { return c.Metrics.Log != nil && c.Metrics.Prometheus == nil }, true},
		{"METRICS prometheus string port", `{"METRICS": {"prometheus": {"port": "9300", "host": "::1"}}}`, func(c *config.Config) any { return *c.Metrics.Prometheus }, config.Prometheus{Host: "::1", Port: 9300}},
		{"LOG level INFO", `{"LOG": {"level": "INFO"}}`, func(c *config.Config) any { return c.Log.Level }, "info"},
		{"LOG level DEBUG", `{"LOG": {"level": "DEBUG"}}`, func(c *config.Config) any { return c.Log.Level }, "debug"},
		{"LOG level NOTSET", `{"LOG": {"level": "NOTSET"}}`, func(c *config.Config) any { return c.Log.Level }, "debug"},
		{"LOG level WARN", `{"LOG": {"level": "WARN"}}`, func(c *config.Config) any { return c.Log.Level }, "warn"},
		{"LOG level ERROR", `{"LOG": {"level": "ERROR"}}`, func(c *config.Config) any { return c.Log.Level }, "error"},
		{"LOG level CRITICAL", `{"LOG": {"level": "CRITICAL"}}`, func(c *config.Config) any { return c.Log.Level }, "error"},
		{"LOG level None", `{"LOG": {"level": null}}`, func(c *config.Config) any { return c.Log.Level }, "info"},
		{"LOG setup_structlog False", `{"LOG": {"setup_structlog": false}}`, func(c *config.Config) any { return c.Log.Format }, "text"},
		{"AUTHENTICATION ticket", `{"AUTHENTICATION": {"ticket": {"validation_url": "http://a/t/", "auth_fields": ["s"]}}}`, func(c *config.Config) any { return *c.Authentication.Ticket }, config.Ticket{ValidationURL: "http://a/t/", AuthFields: []string{"s"}}},
		{"SERVICES require_authentication 0", `{"SERVICES": {"s": {"require_authentication": 0}}}`, func(c *config.Config) any { return c.Services["s"].RequiresAuth() }, false},
		{"SERVICES url None", `{"SERVICES": {"s": {"on_message": null}}}`, func(c *config.Config) any { return c.Services["s"].OnMessage }, ""},
		{"SERVICES heartbeat float", `{"SERVICES": {"s": {"heartbeat_period": 0.5, "on_heartbeat": "http://h/"}}}`, func(c *config.Config) any { return c.Services["s"].HeartbeatPeriod }, config.Seconds(0.5)},
		{"BACKEND websockets", `{"BACKEND": "websockets"}`, func(c *config.Config) any { return c.WS.Port }, 9000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decode([]byte(tc.module))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(s)
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Parse(res.YAML, "converted")
			if err != nil {
				t.Fatalf("%v\n%s", err, res.YAML)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v\n%s", got, tc.want, res.YAML)
			}
			commentsPerKey(t, res.YAML)
		})
	}
}

// TestWarnings: one warning per setting mako has no key for; none for a
// setting at SocketShark's default.
func TestWarnings(t *testing.T) {
	cases := []struct {
		module string
		want   []string
	}{
		{`{"BACKEND": "websockets", "LOG": {"format": "%(message)s", "logger_name": "socketshark"}, "WS_SSL": {}}`, nil},
		{`{"BACKEND": "other"}`, []string{`BACKEND = "other": mako is its own WebSocket server`}},
		{`{"WS_SSL": {"cert": "c", "key": "k"}}`, []string{`WS_SSL: mako does not terminate TLS`}},
		{`{"WS_PING": {"interval": 1, "jitter": 2}}`, []string{`WS_PING["jitter"]: not read by SocketShark`}},
		{`{"HTTP": {"timeout": null}}`, []string{`HTTP["timeout"] = None: mako always bounds a try`}},
		{`{"HTTP": {"proxy": "x"}}`, []string{`HTTP["proxy"]: not read by SocketShark`}},
		{`{"REDIS": {"password": "x"}}`, []string{`REDIS["password"]: not read by SocketShark`}},
		{`{"METRICS": {"statsd": {}}}`, []string{`METRICS["statsd"]: no such metrics provider`}},
		{`{"METRICS": {"log": {"x": 1}}}`, []string{`METRICS["log"]["x"]: not read by SocketShark`}},
		{`{"LOG": {"level": "CRITICAL"}}`, []string{`LOG["level"] = "CRITICAL": mako's highest level is error`}},
		{`{"LOG": {"level": null}}`, []string{`LOG["level"] = None`}},
		{`{"LOG": {"setup_structlog": false}}`, []string{`LOG["setup_structlog"] = False`}},
		{`{"LOG": {"trace_level": "DEBUG", "trace_logger_prefix": "t"}}`, []string{`LOG["trace_level"] = "DEBUG"`, `LOG["trace_logger_prefix"] = "t"`}},
		{`{"LOG": {"format": "%(levelname)s"}}`, []string{`LOG["format"] = "%(levelname)s"`}},
		{`{"AUTHENTICATION": {"oauth": {}}}`, []string{`AUTHENTICATION["oauth"]: mako knows only the ticket method`}},
		{`{"AUTHENTICATION": {"ticket": {"validation_url": "http://a/", "auth_fields": [], "cache": 1}}}`, []string{`AUTHENTICATION["ticket"]["cache"]: not read by SocketShark`}},
		{`{"SERVICES": {"s": {"on_message": null, "priority": 1}}}`, []string{`SERVICES["s"]["on_message"] = None`, `SERVICES["s"]["priority"]: not read by SocketShark`}},
		{`{"DEBUG": true}`, []string{`DEBUG: not a SocketShark setting`}},
	}
	for _, tc := range cases {
		s, err := decode([]byte(tc.module))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Convert(s)
		if err != nil {
			t.Errorf("%s: %v", tc.module, err)
			continue
		}
		t.Run(tc.module, func(t *testing.T) { checkWarnings(t, res.Warnings, tc.want) })
	}
}

// TestConvertErrors: values mako cannot take are refused with the setting
// named, all of them at once.
func TestConvertErrors(t *testing.T) {
	cases := []struct{ module, want string }{
		{`{"WS_PORT": "ninety"}`, `WS_PORT = "ninety": must be an integer port`},
		{`{"WS_PORT": 9000.5}`, `WS_PORT = 9000.5: must be an integer port`},
		{`{"REDIS": {"port": null}}`, `REDIS["port"] = None: must be an integer port`},
		{`{"HTTP": {"tries": "3"}}`, `HTTP["tries"] = "3": must be an integer`},
		{`{"HTTP": {"wait": "3"}}`, `HTTP["wait"] = "3": must be a number of seconds`},
		{`{"HTTP": null}`, `HTTP = None: SocketShark updates its default dict with it`},
		{`{"WS_PING": {"interval": {"__python_repr__": "inf"}}}`, `WS_PING["interval"] = inf: must be a number of seconds`},
		{`{"LOG": {"level": "LOUD"}}`, `LOG["level"] = "LOUD": not a Python logging level name`},
		{`{"METRICS": {"prometheus": {"host": "h"}}}`, `METRICS["prometheus"]: needs a "port"`},
		{`{"AUTHENTICATION": {"ticket": {"auth_fields": "user_id"}}}`, `AUTHENTICATION["ticket"]["auth_fields"] = "user_id": must be a list of strings`},
		{`{"SERVICES": {"s": null}}`, `SERVICES["s"] = None: must be a dict`},
		{`{"SERVICES": {"s": {"require_authentication": "no"}}}`, `SERVICES["s"]["require_authentication"] = "no": must be True or False`},
		{`{"WS_PORT": "x", "HTTP": {"tries": 1.5}}`, "WS_PORT = \"x\": must be an integer port\nHTTP[\"tries\"] = 1.5: must be an integer"},
	}
	for _, tc := range cases {
		s, err := decode([]byte(tc.module))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Convert(s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Convert(%s) = %v, want %q", tc.module, err, tc.want)
		}
	}
}

// TestDefaultsMatchMako documents which SocketShark defaults equal mako's
// and pins the defaults file against accidental edits.
func TestDefaultsMatchMako(t *testing.T) {
	d := Defaults()
	want := []string{"AUTHENTICATION", "BACKEND", "HTTP", "LOG", "METRICS", "REDIS", "REDIS_ALT", "SERVICES", "WS_HOST", "WS_PING", "WS_PORT", "WS_SSL"}
	if got := sortedKeys(d); !slices.Equal(got, want) {
		t.Fatalf("settings %v, want %v", got, want)
	}
	res, err := Convert(Settings{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(res.YAML, "defaults")
	if err != nil {
		t.Fatal(err)
	}
	m := config.Default()
	if c.WS.Host != m.WS.Host || c.WS.Port != m.WS.Port || c.WS.Ping != m.WS.Ping || c.HTTP.Timeout != m.HTTP.Timeout ||
		c.HTTP.Tries != m.HTTP.Tries || c.HTTP.Wait != m.HTTP.Wait || !slices.Equal(c.HTTP.RateLimitResetHeaderNames, m.HTTP.RateLimitResetHeaderNames) ||
		c.Log != m.Log {
		t.Errorf("SocketShark's defaults differ from mako's:\n%+v\n%+v", c, m)
	}
}

// TestLoadChattyModule: what the module prints does not corrupt the dump,
// and a value JSON cannot carry reaches Convert as its repr.
func TestLoadChattyModule(t *testing.T) {
	s, err := Load(context.Background(), python(t), "testdata/chatty.py")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := s["WS_PORT"]; !ok || py(p) != "9200" {
		t.Errorf("WS_PORT = %v", p)
	}
	_, err = Convert(s)
	if err == nil || !strings.Contains(err.Error(), `WS_PING["interval"] = inf: must be a number of seconds`) {
		t.Errorf("Convert: %v", err)
	}
}
