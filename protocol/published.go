package protocol

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Options are a published message's delivery options, parsed as
// SocketShark's _get_options does: an unusable value is ignored rather than
// failing the message.
type Options struct {
	Order    float64
	HasOrder bool // order was a number, a numeric string or a boolean (NaN never)
	// OrderKey is the canonical form of order_key (see canonicalKey): ""
	// for absent or null, the default key. Set only when HasOrder.
	OrderKey string
	Throttle float64 // seconds
	// HasThrottle is true when throttle parsed like order and is finite and
	// > 0; SocketShark never holds a message for a throttle <= 0.
	HasThrottle bool
	ThrottleKey string // like OrderKey; set only when HasThrottle
}

// maxThrottle caps ThrottleDuration so seconds*1e9 cannot overflow.
const maxThrottle = 100 * 365 * 24 * time.Hour

// ThrottleDuration is Throttle as a Duration, capped at a century.
func (o *Options) ThrottleDuration() time.Duration {
	if o.Throttle >= maxThrottle.Seconds() {
		return maxThrottle
	}
	return time.Duration(o.Throttle * float64(time.Second))
}

// Published is a message a service publishes (a Redis payload or a
// POST /publish body).
type Published struct {
	Subscription string          // non-empty
	Data         json.RawMessage // present; may be the literal null
	Options      Options
	// Fields holds every top-level key, for filter_fields checks. Values do
	// not alias the input buffer.
	Fields map[string]json.RawMessage
	// PublishedAt is the parsed published_at string in UTC; zero when
	// absent, not a string or not ISO-8601 (it is then left out of pushes).
	PublishedAt time.Time
}

// Decoding failures; SocketShark logs and drops such messages.
var (
	errPubNotUTF8           = errors.New("protocol: published message: not UTF-8")
	errPubNotObject         = errors.New("protocol: published message: not a JSON object")
	errPubNoSubscription    = errors.New("protocol: published message: missing subscription")
	errPubBadSubscription   = errors.New("protocol: published message: subscription is not a string")
	errPubEmptySubscription = errors.New("protocol: published message: empty subscription")
	errPubNoData            = errors.New("protocol: published message: missing data")
)

// DecodePublished decodes a published message. The error names the cause.
func DecodePublished(b []byte) (*Published, error) {
	if !utf8.Valid(b) {
		return nil, errPubNotUTF8
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		if json.Valid(b) {
			return nil, errPubNotObject
		}
		return nil, fmt.Errorf("protocol: published message: not JSON: %w", err)
	}
	if m == nil {
		return nil, errPubNotObject
	}
	p := &Published{Fields: m}
	raw, ok := m["subscription"]
	if !ok {
		return nil, errPubNoSubscription
	}
	if p.Subscription, ok = unquote(raw); !ok {
		return nil, errPubBadSubscription
	}
	if p.Subscription == "" {
		return nil, errPubEmptySubscription
	}
	if p.Data, ok = m["data"]; !ok {
		return nil, errPubNoData
	}
	if raw, ok := m["options"]; ok {
		p.Options = ParseOptions(raw)
	}
	if raw, ok := m["published_at"]; ok {
		if s, ok := unquote(raw); ok {
			p.PublishedAt, _ = ParseISOTime(s)
		}
	}
	return p, nil
}

// ParseOptions parses an "options" object. Anything but an object yields
// no options (SocketShark would crash on most such values; dropping the
// options is the forgiving reading).
// The server also runs it on a before_subscribe reply's options.
func ParseOptions(raw json.RawMessage) Options {
	var o Options
	if len(raw) == 0 || raw[0] != '{' {
		return o
	}
	// A map, not a struct: goccy (like encoding/json) matches struct fields
	// case-insensitively, and "ORDER" must not count as "order".
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return o
	}
	if v, ok := m["order"]; ok {
		if f, ok := jsonToFloat(v); ok && !math.IsNaN(f) {
			o.Order, o.HasOrder = f, true
			o.OrderKey = canonicalKey(m["order_key"])
		}
	}
	if v, ok := m["throttle"]; ok {
		if f, ok := jsonToFloat(v); ok && f > 0 && !math.IsInf(f, 1) {
			o.Throttle, o.HasThrottle = f, true
			o.ThrottleKey = canonicalKey(m["throttle_key"])
		}
	}
	return o
}
