package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration problem, rendered as the single line that stops
// start-up: "[file[:line]: ]path: value: reason".
type Error struct {
	File   string // config file name; empty when Validate is called directly
	Line   int    // 0 when unknown (validation errors are not tied to lines)
	Path   string // dotted key path, e.g. "services.books.authorizer"
	Value  string // the offending value as written in messages (quoted, redacted); may be empty
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	if e.Value != "" {
		b.WriteString(e.Value + ": ")
	}
	b.WriteString(e.Reason)
	// The caller prints this as the one line before exiting; a stray newline
	// from a YAML message must not split it.
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// Default returns the configuration an empty file yields. The optional
// sections (redis, redis_alt, api, metrics.prometheus, authentication.ticket)
// are nil: their own defaults apply only when the section is present.
func Default() *Config {
	return &Config{
		WS: WS{
			Host:             "127.0.0.1",
			Port:             9000,
			Ping:             Ping{Interval: 15, Timeout: 15},
			MaxMessageSize:   1 << 20,
			HandshakeTimeout: 10,
			Compression:      true,
			MaxOutboundBytes: 1 << 20,
			CloseTimeout:     5,
		},
		HTTP: HTTP{
			Timeout:                   15,
			Tries:                     3,
			Wait:                      3,
			RateLimitResetHeaderNames: []string{"X-Rate-Limit-Reset"},
			RateLimitResetHeaderName:  "X-Rate-Limit-Reset",
			Workers:                   1024,
			MaxConcurrencyPerService:  256,
			MaxQueuedPerService:       10000,
			BreakerFailures:           5,
			BreakerCooldown:           5,
			BreakerMaxCooldown:        60,
		},
		Log: Log{Level: "info", Format: "json", RateLimitInterval: 1},
		Limits: Limits{
			MaxQueuedEvents:  64,
			MaxInboundBytes:  4 << 20,
			MaxHeldMessages:  1000,
			MaxLoopBacklog:   100000,
			MaxSubscriptions: 1000,
			DrainTimeout:     30,
			// 16 MiB on each of the 4 fan-out workers: about 80,000
			// 200-byte messages, a few hundred milliseconds of a busy
			// Redis stream, before mako sheds load.
			MaxFanoutQueueBytes: 16 << 20,
			MaxGappedChannels:   1024,
			MaxThrottleKeys:     1000,
			MaxOrderKeys:        1000,
			// Per-IP limits are off: behind a load balancer without
			// ws.proxy_protocol every client has the balancer's address.
			ConnectionBurstPerIP:  20,
			ClientEventsPerSecond: 100,
			ClientEventsBurst:     1000,
			MaxRefusedEvents:      100,
		},
	}
}

// The obsolete-style unmarshaler is used on purpose: its callback decodes
// with the same decoder, so KnownFields stays in force inside the section,
// whereas (*yaml.Node).Decode would silently drop strictness.

// UnmarshalYAML fills the section defaults before decoding, so they apply
// only when the section is present in the file.
func (r *Redis) UnmarshalYAML(unmarshal func(any) error) error {
	*r = Redis{
		Host:         "localhost",
		Port:         6379,
		PingInterval: 10,
		PingTimeout:  5,
		OnLoss:       "drain",
		DrainWindow:  30,
		LossGrace:    5,
	}
	return decodeWithLoosePorts(unmarshal, r)
}

// UnmarshalYAML fills the section defaults before decoding.
func (a *API) UnmarshalYAML(unmarshal func(any) error) error {
	*a = API{Host: "127.0.0.1", Port: 9001}
	return decodeWithLoosePorts(unmarshal, a)
}

// UnmarshalYAML fills the section defaults before decoding.
func (p *Prometheus) UnmarshalYAML(unmarshal func(any) error) error {
	*p = Prometheus{Port: 9090}
	return decodeWithLoosePorts(unmarshal, p)
}

// Load reads, decodes and validates the configuration file at path. Relative
// file names inside it (TLS files, ca_file) are relative to the working
// directory, not to the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Reason: "cannot read: " + errText(err)}
	}
	return Parse(data, path)
}

// Parse decodes and validates a configuration; name is used in messages.
//
// Absent keys keep their defaults; explicit values, zeros included, win.
// A null duration means 0 (feature disabled), as config.md says; any other
// null scalar counts as absent. A null service entry is a service with no
// callbacks.
func Parse(data []byte, name string) (*Config, error) {
	cfg := Default()

	// The node tree only serves to name key paths in errors and to spot
	// null durations; the strict decode below is what fills cfg.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		return validated(cfg, name)
	case err != nil:
		return nil, syntaxError(err, name)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Reason: "must hold exactly one YAML document"}
	}

	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return nil, typeError(te, &root, name)
		}
		return nil, syntaxError(err, name)
	}

	zeroNullSeconds(&root, reflect.ValueOf(cfg))
	if e := normalizeSocketShark(cfg, &root); e != nil {
		e.File = name
		return nil, e
	}
	for k, s := range cfg.Services {
		if s == nil {
			cfg.Services[k] = &Service{}
		}
	}
	return validated(cfg, name)
}

func validated(cfg *Config, name string) (*Config, error) {
	if err := cfg.Validate(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
		}
		return nil, err
	}
	return cfg, nil
}

// errText drops the file name an *os.PathError repeats, since our message
// already names the key and the value.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxError(err error, name string) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Reason: m[2]}
	}
	return &Error{File: name, Reason: msg}
}

var (
	unknownRE = regexp.MustCompile("^field (.*) not found in type .*$")
	typeRE    = regexp.MustCompile("^cannot unmarshal (!!?[^ ]*)(?: `(.*)`)? into (.*)$")
)

// typeError turns the first of yaml.v3's "line N: ..." messages into one
// line naming the key path; the rest are summarised so the line stays short.
func typeError(te *yaml.TypeError, root *yaml.Node, name string) error {
	e := describeIssue(te.Errors[0], root, name)
	if len(te.Errors) > 1 {
		e.Reason += fmt.Sprintf(" (and %d more)", len(te.Errors)-1)
	}
	return e
}

func describeIssue(issue string, root *yaml.Node, name string) *Error {
	e := &Error{File: name, Reason: issue}
	m := lineRE.FindStringSubmatch(issue)
	if m == nil {
		return e
	}
	e.Line, _ = strconv.Atoi(m[1])
	e.Reason = m[2]
	var locs []loc
	indexNodes(root, nil, &locs)

	if u := unknownRE.FindStringSubmatch(m[2]); u != nil {
		e.Reason = "unknown key"
		for _, l := range locs {
			if l.line == e.Line && l.isKey && l.segs[len(l.segs)-1] == u[1] {
				e.Path = strings.Join(l.segs, ".")
				if h := hintFor(l.segs); h != "" {
					e.Reason += " (" + h + ")"
				} else if s := suggest(l.segs); s != "" {
					e.Reason += " (did you mean " + s + "?)"
				}
				return e
			}
		}
		e.Path = u[1]
		return e
	}
	if t := typeRE.FindStringSubmatch(m[2]); t != nil {
		tag, shown, into := t[1], t[2], t[3]
		e.Reason = "must be " + describeType(into)
		for _, l := range locs {
			if l.line != e.Line || !matchesNode(l.node, tag, shown) {
				continue
			}
			e.Path = strings.Join(l.segs, ".")
			switch l.node.Kind {
			case yaml.ScalarNode:
				e.Value = strconv.Quote(l.node.Value)
			case yaml.SequenceNode:
				e.Value = "a list"
			case yaml.MappingNode:
				e.Value = "a mapping"
			}
			return e
		}
		if shown != "" {
			e.Value = strconv.Quote(shown)
		}
	}
	return e
}

func matchesNode(n *yaml.Node, tag, shown string) bool {
	switch tag {
	case "!!seq":
		return n.Kind == yaml.SequenceNode
	case "!!map":
		return n.Kind == yaml.MappingNode
	}
	if n.Kind != yaml.ScalarNode {
		return false
	}
	if p, ok := strings.CutSuffix(shown, "..."); ok && len(n.Value) > 10 {
		return strings.HasPrefix(n.Value, p)
	}
	return n.Value == shown
}

func describeType(t string) string {
	switch t {
	case "int":
		return "an integer"
	case "config.Seconds":
		return "a number of seconds"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	}
	// "struct {" is a section decoded through its shadow type (socketshark.go).
	if strings.HasPrefix(t, "map[") || strings.HasPrefix(t, "*map[") || strings.HasPrefix(t, "config.") || strings.HasPrefix(t, "struct {") {
		return "a mapping"
	}
	return "of type " + t
}

// loc places a key (or a value written on another line) at its source line.
type loc struct {
	line  int
	segs  []string
	isKey bool
	node  *yaml.Node // the value
}

// indexNodes does not follow aliases: errors are reported at the anchor's
// own lines anyway, and following them could blow up on alias bombs.
func indexNodes(n *yaml.Node, segs []string, out *[]loc) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexNodes(c, segs, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			s := append(append([]string(nil), segs...), k.Value)
			*out = append(*out, loc{line: k.Line, segs: s, isKey: true, node: v})
			if v.Line != k.Line {
				*out = append(*out, loc{line: v.Line, segs: s, node: v})
			}
			indexNodes(v, s, out)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			s := append([]string(nil), segs...)
			idx := "[" + strconv.Itoa(i) + "]"
			if len(s) == 0 {
				s = []string{idx}
			} else {
				s[len(s)-1] += idx
			}
			*out = append(*out, loc{line: v.Line, segs: s, node: v})
			indexNodes(v, s, out)
		}
	}
}

// suggest proposes the known key closest to a mistyped one, so that a typo
// like "authorizor" points straight at "authorizer".
func suggest(segs []string) string {
	t := reflect.TypeFor[Config]()
	for _, s := range segs[:len(segs)-1] {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByTag(t, s)
			if !ok {
				return ""
			}
			t = f.Type
		default:
			return ""
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	bad := segs[len(segs)-1]
	best, bestD := "", 3
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if d := editDistance(bad, name); d < bestD && d < len(name) {
			best, bestD = name, d
		}
	}
	return best
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var secondsType = reflect.TypeFor[Seconds]()

// zeroNullSeconds applies "null disables" to durations: yaml.v3 leaves a
// non-pointer field untouched on null, which would keep the default.
func zeroNullSeconds(n *yaml.Node, v reflect.Value) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch v.Kind() {
		case reflect.Struct:
			sf, ok := fieldByTag(v.Type(), k.Value)
			if !ok {
				continue
			}
			f := v.FieldByIndex(sf.Index)
			if f.Type() == secondsType && val.Kind == yaml.ScalarNode && val.ShortTag() == "!!null" {
				f.SetFloat(0)
				continue
			}
			zeroNullSeconds(val, f)
		case reflect.Map:
			if v.Type().Key().Kind() != reflect.String {
				return
			}
			if e := v.MapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key())); e.IsValid() && e.Kind() == reflect.Pointer {
				zeroNullSeconds(val, e)
			}
		}
	}
}
