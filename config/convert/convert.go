// Package convert turns a SocketShark config module into mako's YAML
// (`mako convert-config`). Python runs the module (Load); the mapping to
// mako keys is pure Go (Convert) and follows docs/config.md, "From
// SocketShark settings to mako keys".
package convert

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"mako/config"
)

// Settings is a SocketShark config as its module defines it: upper-case
// names to values as decoded from JSON (numbers are json.Number, so big
// integers keep their digits). A value Python could not express in JSON is
// a map holding only the key reprKey, the value's repr().
type Settings map[string]any

const reprKey = "__python_repr__"

// defaultsJSON holds the values of SocketShark's config_defaults.py, which
// SocketShark merges a config module over.
//
//go:embed defaults.json
var defaultsJSON []byte

//go:embed dump.py
var dumpPy string

// Defaults returns SocketShark's default settings (a fresh copy).
func Defaults() Settings {
	s, err := decode(defaultsJSON)
	if err != nil {
		panic("convert: defaults.json: " + err.Error())
	}
	return s
}

func decode(data []byte) (Settings, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var s Settings
	if err := d.Decode(&s); err != nil {
		return nil, err
	}
	return s, nil
}

// Load runs python (e.g. "python3") on the SocketShark config module at
// path and returns its upper-case names. SocketShark need not be
// installed. The module runs with the config's directory on sys.path;
// Python's own error (a traceback's last line) is returned when it fails.
func Load(ctx context.Context, python, path string) (Settings, error) {
	cmd := exec.CommandContext(ctx, python, "-B", "-c", dumpPy, path)
	cmd.Stdin = bytes.NewReader(defaultsJSON)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("running %s on %s: %s", python, path, msg)
	}
	s, err := decode(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("reading what python printed: %v", err)
	}
	return s, nil
}

// Result is a conversion: the YAML, and one line per setting that has no
// mako equivalent or changes meaning on the way.
type Result struct {
	YAML     []byte
	Warnings []string
}

// Convert merges module over SocketShark's defaults as SocketShark does
// (a dict setting is updated key by key, one level deep; any other value
// replaces the default; a name that is not a SocketShark setting is
// ignored) and returns the equivalent mako YAML: every mapped setting,
// defaults included, with a comment naming where it came from, so the
// result keeps SocketShark's behaviour even where mako's defaults differ.
//
// An error means a value mako cannot take (a port that is not an integer,
// a setting SocketShark itself would fail on); Warnings list the settings
// dropped or approximated.
func Convert(module Settings) (*Result, error) {
	c := &converter{defaults: Defaults(), module: module, merged: Defaults()}
	for _, name := range sortedKeys(module) {
		def, known := c.defaults[name]
		v := module[name]
		switch {
		case !known:
			c.warn("%s: not a SocketShark setting (SocketShark ignores it); skipped", name)
		case isDict(def):
			m, ok := v.(map[string]any)
			if !ok {
				c.fail("%s = %s: SocketShark updates its default dict with it, so it must be a dict", name, py(v))
				continue
			}
			merged := c.merged[name].(map[string]any)
			for k, x := range m {
				merged[k] = x
			}
		default:
			c.merged[name] = v
		}
	}
	c.build()
	if len(c.errs) > 0 {
		return nil, errors.New(strings.Join(c.errs, "\n"))
	}
	var out bytes.Buffer
	out.WriteString("# mako configuration converted from a SocketShark config by `mako convert-config`.\n" +
		"# Each comment names the SocketShark setting a key came from. mako's own keys\n" +
		"# (redis.on_loss, limits.*, ...) keep their defaults: see docs/config.md.\n")
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(c.root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return &Result{YAML: out.Bytes(), Warnings: c.warns}, nil
}

type converter struct {
	defaults, module, merged Settings
	root                     *yaml.Node
	warns, errs              []string
}

func (c *converter) warn(format string, a ...any) {
	c.warns = append(c.warns, fmt.Sprintf(format, a...))
}
func (c *converter) fail(format string, a ...any) { c.errs = append(c.errs, fmt.Sprintf(format, a...)) }

// setting is one SocketShark value: where it is (NAME or NAME["key"]...),
// the value, and whether the module set it to something other than
// SocketShark's default.
type setting struct {
	ref      string
	v        any
	inModule bool // the module names it (else it is SocketShark's default)
	isSet    bool // inModule, with a value other than the default
}

// get returns the merged value at a path: a top-level name, then keys.
func (c *converter) get(name string, keys ...string) (setting, bool) {
	ref := name
	for _, k := range keys {
		ref += "[" + strconv.Quote(k) + "]"
	}
	v, ok := dig(c.merged[name], keys)
	if _, present := c.merged[name]; !present || !ok {
		return setting{ref: ref}, false
	}
	mv, inModule := c.module[name]
	if inModule {
		mv, inModule = dig(mv, keys)
	}
	dv, inDefaults := dig(c.defaults[name], keys)
	isSet := inModule && !(inDefaults && reflect.DeepEqual(mv, dv))
	return setting{ref: ref, v: v, inModule: inModule, isSet: isSet}, true
}

func dig(v any, keys []string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// comment names the source of a key in the output.
func (s setting) comment() string {
	if s.inModule {
		return s.ref
	}
	return s.ref + " (SocketShark default)"
}

// extraKeys warns about the keys of a dict setting that SocketShark never
// reads, so that nothing is dropped silently.
func (c *converter) extraKeys(s setting, known ...string) {
	m, ok := s.v.(map[string]any)
	if !ok {
		return
	}
	for _, k := range sortedKeys(m) {
		if !slices.Contains(known, k) {
			c.warn("%s[%q]: not read by SocketShark and no mako key; skipped", s.ref, k)
		}
	}
}

// mapping is a YAML mapping under construction.
type mapping struct{ n *yaml.Node }

func newMapping() mapping { return mapping{&yaml.Node{Kind: yaml.MappingNode}} }

func (m mapping) add(key string, v *yaml.Node, comment string) {
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	// A flow-style value is on the key's line; yaml.v3 prints a comment
	// placed on it, and drops one placed on the key.
	if v.Kind == yaml.ScalarNode || v.Style == yaml.FlowStyle {
		v.LineComment = comment
	} else {
		k.LineComment = comment
	}
	m.n.Content = append(m.n.Content, k, v)
}

func (m mapping) empty() bool { return len(m.n.Content) == 0 }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
func num(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: s} }
func flt(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s} }
func boolean(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}
func strList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	return n
}

// py renders a value the way Python would print it, for messages.
func py(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case map[string]any:
		if r, ok := x[reprKey].(string); ok && len(x) == 1 {
			return r
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func isDict(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, repr := m[reprKey]
	return !repr || len(m) != 1
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Check validates converted YAML as `mako check` does (config.Parse, which
// also requires files such as http.ca_file to be readable here).
func Check(yamlText []byte) error {
	_, err := config.Parse(yamlText, "converted config")
	return err
}
