package convert

import (
	"encoding/json"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The value readers below return nil (after recording an error) when a
// value cannot be taken, so build can go on and report every problem.

// port takes an integer, or a string holding one: SocketShark passes ports
// to asyncio, which takes "9000" (its example config says WS_PORT = "9000").
func (c *converter) port(s setting) *yaml.Node {
	switch v := s.v.(type) {
	case json.Number:
		if _, err := strconv.Atoi(v.String()); err == nil {
			return num(v.String())
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			// Say so: the YAML holds a number where Python had a string.
			n := num(strconv.Itoa(n))
			n.LineComment = s.comment() + " = " + py(v)
			return n
		}
	}
	c.fail("%s = %s: must be an integer port", s.ref, py(s.v))
	return nil
}

// seconds takes a number; None is 0, which in mako disables the periodic
// feature, as None does in SocketShark.
func (c *converter) seconds(s setting) *yaml.Node {
	switch v := s.v.(type) {
	case nil:
		return num("0")
	case json.Number:
		if _, err := strconv.Atoi(v.String()); err == nil {
			return num(v.String())
		}
		if f, err := strconv.ParseFloat(v.String(), 64); err == nil {
			return flt(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	c.fail("%s = %s: must be a number of seconds", s.ref, py(s.v))
	return nil
}

func (c *converter) integer(s setting) *yaml.Node {
	if v, ok := s.v.(json.Number); ok {
		if _, err := strconv.Atoi(v.String()); err == nil {
			return num(v.String())
		}
	}
	c.fail("%s = %s: must be an integer", s.ref, py(s.v))
	return nil
}

// text takes a string; None means absent (nil without an error).
func (c *converter) text(s setting) *yaml.Node {
	switch v := s.v.(type) {
	case nil:
		return nil
	case string:
		return str(v)
	}
	c.fail("%s = %s: must be a string", s.ref, py(s.v))
	return nil
}

func (c *converter) stringList(s setting) ([]string, bool) {
	l, ok := s.v.([]any)
	if !ok {
		c.fail("%s = %s: must be a list of strings", s.ref, py(s.v))
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		t, ok := x.(string)
		if !ok {
			c.fail("%s = %s: must be a list of strings", s.ref, py(s.v))
			return nil, false
		}
		out = append(out, t)
	}
	return out, true
}

// truth is Python's truthiness for the values SocketShark tests with if.
func (c *converter) truth(s setting) *yaml.Node {
	switch s.v.(type) {
	case nil, bool, json.Number:
		return boolean(truthy(s.v))
	}
	c.fail("%s = %s: must be True or False", s.ref, py(s.v))
	return nil
}

// truthy is Python's bool() of a value as dumped.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case json.Number:
		f, _ := strconv.ParseFloat(x.String(), 64)
		return f != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// put adds key to m when the setting exists and its value converts.
func put(m mapping, key string, s setting, ok bool, read func(setting) *yaml.Node) {
	if !ok {
		return
	}
	if v := read(s); v != nil {
		comment := v.LineComment
		if comment == "" {
			comment = s.comment()
		}
		m.add(key, v, comment)
	}
}

func (c *converter) build() {
	root := newMapping()
	c.root = root.n

	if s, _ := c.get("BACKEND"); s.v != "websockets" {
		c.warn("BACKEND = %s: mako is its own WebSocket server; skipped", py(s.v))
	}

	ws := newMapping()
	s, ok := c.get("WS_HOST")
	if ok && s.v == nil {
		// asyncio binds every interface for host None, as mako does for "".
		ws.add("host", str(""), s.comment()+" = None")
	} else {
		put(ws, "host", s, ok, c.text)
	}
	s, ok = c.get("WS_PORT")
	put(ws, "port", s, ok, c.port)
	if s, _ := c.get("WS_SSL"); truthy(s.v) {
		c.warn("WS_SSL: mako does not terminate TLS (ws.tls is refused at start-up); terminate wss:// at the load balancer; skipped")
	}
	ping := newMapping()
	for _, k := range []string{"interval", "timeout"} {
		s, ok := c.get("WS_PING", k)
		put(ping, k, s, ok, c.seconds)
	}
	s, _ = c.get("WS_PING")
	c.extraKeys(s, "interval", "timeout")
	if !ping.empty() {
		ws.add("ping", ping.n, "WS_PING")
	}
	root.add("ws", ws.n, "")

	if r := c.redis("REDIS"); r != nil {
		root.add("redis", r, "REDIS")
	}
	// SocketShark skips a falsy REDIS_ALT (None, {}).
	if s, _ := c.get("REDIS_ALT"); truthy(s.v) {
		if r := c.redis("REDIS_ALT"); r != nil {
			root.add("redis_alt", r, s.comment())
		}
	}

	root.add("http", c.http().n, "HTTP")
	if m := c.metrics(); !m.empty() {
		root.add("metrics", m.n, "METRICS")
	}
	if l := c.log(); !l.empty() {
		root.add("log", l.n, "LOG")
	}
	if a := c.authentication(); !a.empty() {
		root.add("authentication", a.n, "AUTHENTICATION")
	}
	if sv := c.services(); !sv.empty() {
		root.add("services", sv.n, "SERVICES")
	}
}

var redisKeys = []string{"host", "port", "db", "channel_prefix", "ping_interval", "ping_timeout"}

func (c *converter) redis(name string) *yaml.Node {
	all, _ := c.get(name)
	if _, ok := all.v.(map[string]any); !ok {
		c.fail("%s = %s: must be a dict", name, py(all.v))
		return nil
	}
	m := newMapping()
	readers := map[string]func(setting) *yaml.Node{
		"host": c.text, "port": c.port, "db": c.integer, "channel_prefix": c.text,
		"ping_interval": c.seconds, "ping_timeout": c.seconds,
	}
	for _, k := range redisKeys {
		s, ok := c.get(name, k)
		put(m, k, s, ok, readers[k])
	}
	c.extraKeys(all, redisKeys...)
	return m.n
}

func (c *converter) http() mapping {
	m := newMapping()
	if s, ok := c.get("HTTP", "ssl_cafile"); ok {
		if v := c.text(s); v != nil && v.Value != "" {
			m.add("ca_file", v, s.comment())
		}
	}
	if s, ok := c.get("HTTP", "timeout"); ok {
		if s.v == nil {
			c.warn("%s = None: mako always bounds a try; its default (15 seconds) applies", s.ref)
		} else {
			put(m, "timeout", s, ok, c.seconds)
		}
	}
	s, ok := c.get("HTTP", "tries")
	put(m, "tries", s, ok, c.integer)
	s, ok = c.get("HTTP", "wait")
	put(m, "wait", s, ok, c.seconds)

	// SocketShark reads the list when it is non-empty, else the single name.
	names, hasNames := c.get("HTTP", "rate_limit_reset_header_names")
	one, hasOne := c.get("HTTP", "rate_limit_reset_header_name")
	var headers []string
	src := names
	if hasNames && names.v != nil {
		headers, _ = c.stringList(names)
	}
	if len(headers) == 0 && hasOne {
		src = one
		switch v := one.v.(type) {
		case string:
			if v != "" {
				headers = []string{v}
			}
		case nil:
		default:
			c.fail("%s = %s: must be a string", one.ref, py(one.v))
		}
	}
	if hasNames || hasOne {
		if headers == nil {
			headers = []string{}
		}
		m.add("rate_limit_reset_header_names", strList(headers), src.comment())
		if len(headers) == 0 {
			// mako, like SocketShark, falls back to the single name
			// when the list is empty: an empty name reads no header.
			m.add("rate_limit_reset_header_name", str(""), one.comment())
		}
	}
	all, _ := c.get("HTTP")
	c.extraKeys(all, "ssl_cafile", "timeout", "tries", "wait", "rate_limit_reset_header_name", "rate_limit_reset_header_names")
	return m
}

func (c *converter) metrics() mapping {
	m := newMapping()
	all, _ := c.get("METRICS")
	providers, _ := all.v.(map[string]any)
	for _, name := range sortedKeys(providers) {
		s, _ := c.get("METRICS", name)
		switch name {
		case "prometheus":
			p := newMapping()
			if _, ok := s.v.(map[string]any); !ok {
				c.fail("%s = %s: must be a dict", s.ref, py(s.v))
				continue
			}
			// SocketShark binds to "" (every interface) when host is
			// absent; written out so mako's own default cannot differ.
			if h, ok := c.get("METRICS", name, "host"); ok {
				put(p, "host", h, ok, c.text)
			} else {
				p.add("host", str(""), h.ref+" (SocketShark default: every interface)")
			}
			port, ok := c.get("METRICS", name, "port")
			if !ok {
				c.fail("%s: needs a \"port\" (SocketShark asserts it)", s.ref)
				continue
			}
			put(p, "port", port, ok, c.port)
			c.extraKeys(s, "host", "port")
			m.add("prometheus", p.n, s.comment())
		case "log":
			// SocketShark's log provider takes no settings.
			c.extraKeys(s)
			m.add("log", &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}, s.comment())
		default:
			c.warn("%s: no such metrics provider in mako (SocketShark has prometheus and log); skipped", s.ref)
		}
	}
	return m
}

// pythonLevels maps Python logging's level names, as SocketShark looks them
// up with getattr(logging, level), to mako's.
var pythonLevels = map[string]string{
	"DEBUG": "debug", "NOTSET": "debug", "INFO": "info",
	"WARNING": "warn", "WARN": "warn", "ERROR": "error",
	"CRITICAL": "error", "FATAL": "error",
}

func (c *converter) log() mapping {
	m := newMapping()
	if s, ok := c.get("LOG", "level"); ok {
		name, _ := s.v.(string)
		lvl, known := pythonLevels[strings.ToUpper(name)]
		switch {
		case s.v == nil:
			c.warn("%s = None (SocketShark sets up no logging): mako always logs; log.level stays info", s.ref)
		case !known:
			c.fail("%s = %s: not a Python logging level name", s.ref, py(s.v))
		default:
			if u := strings.ToUpper(name); u == "CRITICAL" || u == "FATAL" {
				c.warn("%s = %s: mako's highest level is error; log.level: error", s.ref, py(s.v))
			}
			m.add("level", str(lvl), s.comment())
		}
	}
	if s, ok := c.get("LOG", "setup_structlog"); ok {
		// structlog renders JSON lines when stdout is not a terminal.
		if t := c.truth(s); t != nil {
			format := "json"
			if t.Value == "false" {
				format = "text"
				c.warn("%s = False: mako always writes structured lines; log.format: text is the closest", s.ref)
			}
			m.add("format", str(format), s.comment())
		}
	}
	for _, k := range []string{"format", "logger_name", "trace_logger_prefix", "trace_level"} {
		if s, ok := c.get("LOG", k); ok && s.isSet {
			hint := "no mako key; skipped"
			switch k {
			case "format":
				hint = "a Python logging format has no mako key (log.format is json or text); skipped"
			case "trace_level":
				hint = "no mako key (log.level: debug logs what the trace logger does); skipped"
			}
			c.warn("%s = %s: %s", s.ref, py(s.v), hint)
		}
	}
	all, _ := c.get("LOG")
	c.extraKeys(all, "setup_structlog", "level", "format", "logger_name", "trace_logger_prefix", "trace_level")
	return m
}

func (c *converter) authentication() mapping {
	m := newMapping()
	all, _ := c.get("AUTHENTICATION")
	methods, _ := all.v.(map[string]any)
	for _, name := range sortedKeys(methods) {
		s, _ := c.get("AUTHENTICATION", name)
		if name != "ticket" {
			c.warn("%s: mako knows only the ticket method; skipped", s.ref)
			continue
		}
		if _, ok := s.v.(map[string]any); !ok {
			c.fail("%s = %s: must be a dict", s.ref, py(s.v))
			continue
		}
		t := newMapping()
		u, ok := c.get("AUTHENTICATION", name, "validation_url")
		put(t, "validation_url", u, ok, c.text)
		if f, ok := c.get("AUTHENTICATION", name, "auth_fields"); ok {
			if l, ok := c.stringList(f); ok {
				t.add("auth_fields", strList(l), f.comment())
			}
		}
		c.extraKeys(s, "validation_url", "auth_fields")
		m.add("ticket", t.n, s.comment())
	}
	return m
}

// serviceKeys are SocketShark's service settings, in the order mako's
// docs list them; each is the mako key of the same name.
var serviceKeys = []string{
	"require_authentication", "authorizer", "authorizer_fields",
	"authorization_renewal_period", "authorization_renewal_jitter",
	"extra_fields", "filter_fields",
	"before_subscribe", "on_subscribe", "on_message",
	"before_unsubscribe", "on_unsubscribe", "on_authorization_change",
	"heartbeat_period", "on_heartbeat",
}

func (c *converter) services() mapping {
	m := newMapping()
	all, _ := c.get("SERVICES")
	services, _ := all.v.(map[string]any)
	for _, name := range sortedKeys(services) {
		s, _ := c.get("SERVICES", name)
		if _, ok := s.v.(map[string]any); !ok {
			c.fail("%s = %s: must be a dict", s.ref, py(s.v))
			continue
		}
		svc := newMapping()
		svc.n.Style = 0
		for _, k := range serviceKeys {
			f, ok := c.get("SERVICES", name, k)
			if !ok {
				continue
			}
			switch k {
			case "require_authentication":
				put(svc, k, f, ok, c.truth)
			case "authorizer_fields", "extra_fields", "filter_fields":
				if l, ok := c.stringList(f); ok {
					svc.add(k, strList(l), f.comment())
				}
			case "authorization_renewal_period", "authorization_renewal_jitter", "heartbeat_period":
				put(svc, k, f, ok, c.seconds)
			default:
				if f.v == nil {
					c.warn("%s = None: no URL; the callback is not called", f.ref)
					continue
				}
				put(svc, k, f, ok, c.text)
			}
		}
		c.extraKeys(s, serviceKeys...)
		if svc.empty() {
			svc.n.Style = yaml.FlowStyle
		}
		m.add(name, svc.n, s.ref)
	}
	return m
}
