package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// This file holds what lets a SocketShark config port as written: ports
// given as strings, SocketShark's key spellings where mako accepts them,
// and pointed errors for the SocketShark settings mako has no key for.
// docs/config.md lists each rule.

// portInt is an int that may also be written as a quoted integer. Only
// ports take it: SocketShark hands WS_PORT, REDIS["port"] and
// METRICS["prometheus"]["port"] to asyncio's create_server/open_connection,
// which take a service string ("9000"), and its own example sets
// WS_PORT = "9000". Every other number SocketShark uses in arithmetic or
// range(), where a string fails, so mako wants a number there too.
type portInt int

// UnmarshalYAML accepts an int, or a string holding a decimal integer
// (surrounding blanks allowed, as Python's int() allows them).
func (p *portInt) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if v, err := strconv.Atoi(strings.TrimSpace(n.Value)); err == nil {
			*p = portInt(v)
			return nil
		}
		shown := n.Value
		if len(shown) > 10 {
			// The same shortening yaml.v3 applies, so describeIssue can
			// match the node.
			shown = shown[:7] + "..."
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal !!str `%s` into int", n.Line, shown)}}
	}
	var v int
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = portInt(v)
	return nil
}

var (
	intType     = reflect.TypeFor[int]()
	portIntType = reflect.TypeFor[portInt]()
	shadowMu    sync.Mutex
	shadows     = map[reflect.Type]reflect.Type{}
)

// shadowOf returns a struct type with t's fields and tags in which every
// int field tagged yaml:"port" is a portInt. Decoding into it keeps the
// decoder's strictness (unknown keys) for the whole section, which a
// yaml.Node-based unmarshaler for the section would lose.
func shadowOf(t reflect.Type) reflect.Type {
	shadowMu.Lock()
	defer shadowMu.Unlock()
	if s, ok := shadows[t]; ok {
		return s
	}
	fields := make([]reflect.StructField, t.NumField())
	for i := range fields {
		f := t.Field(i)
		if f.Type == intType && yamlName(f) == "port" {
			f.Type = portIntType
		}
		fields[i] = reflect.StructField{Name: f.Name, Type: f.Type, Tag: f.Tag}
	}
	s := reflect.StructOf(fields)
	shadows[t] = s
	return s
}

// decodeWithLoosePorts decodes a section into dst (a pointer to a struct
// already holding its defaults) through its shadow type.
func decodeWithLoosePorts(unmarshal func(any) error, dst any) error {
	v := reflect.ValueOf(dst).Elem()
	sh := reflect.New(shadowOf(v.Type())).Elem()
	for i := range v.NumField() {
		sh.Field(i).Set(v.Field(i).Convert(sh.Field(i).Type()))
	}
	err := unmarshal(sh.Addr().Interface())
	// yaml.v3 keeps decoding past type errors, so copy back either way:
	// the caller reports the error and discards the config.
	for i := range v.NumField() {
		v.Field(i).Set(sh.Field(i).Convert(v.Field(i).Type()))
	}
	return err
}

// UnmarshalYAML lets ws.port be a quoted integer.
func (w *WS) UnmarshalYAML(unmarshal func(any) error) error {
	return decodeWithLoosePorts(unmarshal, w)
}

// logLevels maps the level names accepted in log.level, in any case, to
// mako's: SocketShark's are Python logging's upper-case names.
var logLevels = map[string]string{
	"debug":   "debug",
	"info":    "info",
	"warn":    "warn",
	"warning": "warn",
	"error":   "error",
}

// normalizeSocketShark folds SocketShark's spellings into mako's fields
// once decoding is done; root is the file's node tree.
func normalizeSocketShark(cfg *Config, root *yaml.Node) *Error {
	if l, ok := logLevels[strings.ToLower(cfg.Log.Level)]; ok {
		cfg.Log.Level = l
	}
	h := &cfg.HTTP
	if h.SSLCAFile != "" {
		if h.CAFile != "" && h.CAFile != h.SSLCAFile {
			return &Error{Path: "http.ssl_cafile", Value: quote(h.SSLCAFile),
				Reason: "conflicts with http.ca_file " + quote(h.CAFile) + " (ssl_cafile is SocketShark's name for it: set one)"}
		}
		// Checked here so that a problem names the key as written.
		var k checker
		if k.readable("http.ssl_cafile", h.SSLCAFile); k.err != nil {
			return k.err
		}
		h.CAFile, h.SSLCAFile = h.SSLCAFile, ""
	}
	// SocketShark reads rate_limit_reset_header_names when it is a
	// non-empty list, else the single rate_limit_reset_header_name
	// (default X-Rate-Limit-Reset); an empty name reads no header.
	if _, given := lookup(root, "http", "rate_limit_reset_header_names"); !given || len(h.RateLimitResetHeaderNames) == 0 {
		h.RateLimitResetHeaderNames = []string{}
		if h.RateLimitResetHeaderName != "" {
			h.RateLimitResetHeaderNames = []string{h.RateLimitResetHeaderName}
		}
	}
	return nil
}

// lookup finds the value node at a key path of a mapping document.
func lookup(n *yaml.Node, path ...string) (*yaml.Node, bool) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, seg := range path {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			return nil, false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == seg {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil, false
		}
		n = next
	}
	return n, true
}

// socketSharkHints explains an unknown key that is a SocketShark setting
// mako has no key for, or that SocketShark spells differently (flattened
// top-level names included), instead of a bare "unknown key".
var socketSharkHints = map[string]string{
	"backend":                 "SocketShark's BACKEND picks its WebSocket library; mako has its own server: remove it",
	"ws_host":                 "SocketShark's WS_HOST is ws.host",
	"ws_port":                 "SocketShark's WS_PORT is ws.port",
	"ws_ping":                 "SocketShark's WS_PING is ws.ping",
	"ws_ssl":                  "SocketShark's WS_SSL has no mako key: terminate TLS at the load balancer",
	"ws.ssl":                  "SocketShark's WS_SSL has no mako key: terminate TLS at the load balancer",
	"log_level":               "SocketShark's LOG[\"level\"] is log.level",
	"log.setup_structlog":     "SocketShark's LOG[\"setup_structlog\"] has no mako key: mako always logs structured lines (log.format)",
	"log.logger_name":         "SocketShark's LOG[\"logger_name\"] has no mako key: remove it",
	"log.trace_logger_prefix": "SocketShark's LOG[\"trace_logger_prefix\"] has no mako key: remove it",
	"log.trace_level":         "SocketShark's LOG[\"trace_level\"] has no mako key: log.level debug logs what the trace logger did",
	"redis_alt.password":      "SocketShark has no Redis password: mako takes it in redis_alt.url",
	"redis.password":          "SocketShark has no Redis password: mako takes it in redis.url (redis://:PASSWORD@host)",
}

// hintFor returns the explanation for an unknown key path, or "".
func hintFor(segs []string) string {
	return socketSharkHints[strings.ToLower(strings.Join(segs, "."))]
}
