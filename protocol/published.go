package protocol

import (
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Options are a published message's delivery options, parsed as
// SocketShark's _get_options does: an unusable value is ignored rather than
// failing the message.
type Options struct {
	Order float64
	// HasOrder: order was a number, a numeric string or a boolean. NaN
	// counts, as in SocketShark: it compares false both ways, so a NaN
	// order is delivered and the next message after it is too.
	HasOrder bool
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
//
// From DecodePublished, Data and the Fields values do not alias the input
// buffer: they are capacity-limited sub-slices of one private copy of it, so
// the caller may reuse the input afterwards. From DecodePublishedShared they
// alias the input itself. Either way they must be treated as read-only.
type Published struct {
	Subscription string          // non-empty
	Data         json.RawMessage // present; may be the literal null
	Options      Options
	// Fields holds every top-level key, for filter_fields checks (the last
	// occurrence of a duplicated key wins).
	Fields map[string]json.RawMessage
	// PublishedAt is the parsed published_at string in UTC; zero when
	// absent, not a string or not ISO-8601 (it is then left out of pushes).
	PublishedAt time.Time
}

// Decoding failures; SocketShark logs and drops such messages.
var (
	errPubNotUTF8           = errors.New("protocol: published message: not UTF-8")
	errPubNotJSON           = errors.New("protocol: published message: not JSON")
	errPubNotObject         = errors.New("protocol: published message: not a JSON object")
	errPubNoSubscription    = errors.New("protocol: published message: missing subscription")
	errPubBadSubscription   = errors.New("protocol: published message: subscription is not a string")
	errPubEmptySubscription = errors.New("protocol: published message: empty subscription")
	errPubNoData            = errors.New("protocol: published message: missing data")
)

// errSlowPath is internal: the fast path declines the input (invalid JSON,
// not an object, escaped keys) and decodePublishedSlow decides instead.
var errSlowPath = errors.New("protocol: published message: needs the general decoder")

// DecodePublished decodes a published message. The error names the cause.
//
// The JSON is read as SocketShark's json.loads reads it (docs/json.md).
// It runs once per published message on the fan-out path, so well-formed
// messages go through a single-pass scan (decodePublishedFast) that
// allocates a handful of times in all; anything it declines goes to the
// general map decoder (decodePublishedSlow), which also produces every
// "not JSON" error.
func DecodePublished(b []byte) (*Published, error) {
	return decodePublished(b, false)
}

// DecodePublishedShared is DecodePublished without the private copy: Data
// and the Fields values may alias b, which must not be modified afterwards
// (while the result is in use). The Hub uses it on broker payloads, which
// are immutable.
func DecodePublishedShared(b []byte) (*Published, error) {
	return decodePublished(b, true)
}

func decodePublished(b []byte, shared bool) (*Published, error) {
	if !utf8.Valid(b) {
		return nil, errPubNotUTF8
	}
	if p, err := decodePublishedFast(b, shared); err != errSlowPath {
		return p, err
	}
	return decodePublishedSlow(b)
}

// decodePublishedFast decodes b (valid UTF-8) when it is a JSON object
// whose keys hold no escapes, with exactly decodePublishedSlow's results;
// otherwise it returns errSlowPath. Values alias b when shared, a copy of b
// otherwise.
func decodePublishedFast(b []byte, shared bool) (*Published, error) {
	start := skipWS(b, 0)
	if start >= len(b) || b[start] != '{' {
		return nil, errSlowPath
	}
	var buf [16]member
	ms, end, ok := scanMembers(b, start, buf[:0])
	if !ok || skipWS(b, end) != len(b) || anyEscapedKey(ms) {
		return nil, errSlowPath
	}
	// Like the map the slow path builds, the last duplicate wins.
	sub, data, opts, at := -1, -1, -1, -1
	keyBytes := 0
	for j := range ms {
		k := b[ms[j].keyStart:ms[j].keyEnd]
		keyBytes += len(k)
		switch string(k) {
		case "subscription":
			sub = j
		case "data":
			data = j
		case "options":
			opts = j
		case "published_at":
			at = j
		}
	}
	value := func(j int) []byte {
		if j < 0 {
			return nil
		}
		return b[ms[j].valStart:ms[j].valEnd]
	}

	if sub < 0 {
		return nil, errPubNoSubscription
	}
	var subscription string
	subRaw := value(sub)
	plainSub := isPlainString(subRaw)
	if !plainSub {
		if subscription, ok = unquote(subRaw); !ok {
			return nil, errPubBadSubscription
		}
	}
	if (plainSub && len(subRaw) == 2) || (!plainSub && subscription == "") {
		return nil, errPubEmptySubscription
	}
	if data < 0 {
		return nil, errPubNoData
	}
	var o optionsScan
	if opts >= 0 {
		o = scanOptions(value(opts))
	}
	atRaw := value(at)
	plainAt := isPlainString(atRaw)

	// One string holds every key and every plain string the result keeps.
	n := keyBytes + len(o.orderKey) + len(o.throttleKey)
	if plainSub {
		n += len(subRaw) - 2
	}
	if plainAt {
		n += len(atRaw) - 2
	}
	var sb strings.Builder
	sb.Grow(n)
	for j := range ms {
		sb.Write(b[ms[j].keyStart:ms[j].keyEnd])
	}
	if plainSub {
		sb.Write(subRaw[1 : len(subRaw)-1])
	}
	sb.Write(o.orderKey)
	sb.Write(o.throttleKey)
	if plainAt {
		sb.Write(atRaw[1 : len(atRaw)-1])
	}
	str := sb.String()
	cut := func(n int) string {
		s := str[:n]
		str = str[n:]
		return s
	}

	cp := b
	if !shared {
		cp = make([]byte, len(b))
		copy(cp, b)
	}
	fields := make(map[string]json.RawMessage, len(ms))
	for j := range ms {
		m := &ms[j]
		fields[cut(m.keyEnd-m.keyStart)] = cp[m.valStart:m.valEnd:m.valEnd]
	}
	p := &Published{
		Subscription: subscription,
		Data:         cp[ms[data].valStart:ms[data].valEnd:ms[data].valEnd],
		Options:      o.Options,
		Fields:       fields,
	}
	if plainSub {
		p.Subscription = cut(len(subRaw) - 2)
	}
	if o.orderKey != nil {
		p.Options.OrderKey = cut(len(o.orderKey))
	}
	if o.throttleKey != nil {
		p.Options.ThrottleKey = cut(len(o.throttleKey))
	}
	if plainAt {
		p.PublishedAt, _ = ParseISOTime(cut(len(atRaw) - 2))
	} else if s, ok := unquote(atRaw); ok {
		p.PublishedAt, _ = ParseISOTime(s)
	}
	return p, nil
}

// decodePublishedSlow is the general decoder: a map decode of b, which the
// caller has checked is valid UTF-8.
func decodePublishedSlow(b []byte) (*Published, error) {
	m, kind := decodeJSONObject(b)
	switch kind {
	case docInvalid:
		return nil, errPubNotJSON
	case docNotObject:
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
// options is the forgiving reading). Keys are matched case-sensitively
// ("ORDER" is not "order"); a duplicated key's last value wins.
// The server also runs it on a before_subscribe reply's options.
func ParseOptions(raw json.RawMessage) Options {
	if !utf8.Valid(raw) {
		return parseOptionsSlow(raw)
	}
	o := scanOptions(raw)
	if o.orderKey != nil {
		o.OrderKey = string(o.orderKey)
	}
	if o.throttleKey != nil {
		o.ThrottleKey = string(o.throttleKey)
	}
	return o.Options
}

// optionsScan is scanOptions' result: Options, except that an order_key or
// throttle_key that is a plain string literal (whose canonical form is the
// literal itself) is left in orderKey/throttleKey, so DecodePublished can
// make it a string without an allocation of its own.
type optionsScan struct {
	Options
	orderKey, throttleKey []byte
}

// scanOptions parses raw (valid UTF-8) like parseOptionsSlow, with the
// scanner when it accepts the object and with goccy otherwise.
func scanOptions(raw []byte) optionsScan {
	var o optionsScan
	if len(raw) == 0 || raw[0] != '{' {
		return o
	}
	var buf [8]member
	ms, end, ok := scanMembers(raw, 0, buf[:0])
	if !ok || skipWS(raw, end) != len(raw) || anyEscapedKey(ms) {
		o.Options = parseOptionsSlow(raw)
		return o
	}
	order, orderKey, throttle, throttleKey := -1, -1, -1, -1
	for j := range ms {
		switch string(raw[ms[j].keyStart:ms[j].keyEnd]) {
		case "order":
			order = j
		case "order_key":
			orderKey = j
		case "throttle":
			throttle = j
		case "throttle_key":
			throttleKey = j
		}
	}
	value := func(j int) []byte {
		if j < 0 {
			return nil
		}
		return raw[ms[j].valStart:ms[j].valEnd]
	}
	if order >= 0 {
		if f, ok := scalarToFloat(value(order)); ok {
			o.Order, o.HasOrder = f, true
			o.OrderKey, o.orderKey = scannedKey(value(orderKey))
		}
	}
	if throttle >= 0 {
		if f, ok := scalarToFloat(value(throttle)); ok && f > 0 && !math.IsInf(f, 1) {
			o.Throttle, o.HasThrottle = f, true
			o.ThrottleKey, o.throttleKey = scannedKey(value(throttleKey))
		}
	}
	return o
}

// scalarToFloat is jsonToFloat without its allocation for plain strings.
func scalarToFloat(raw []byte) (float64, bool) {
	if isPlainString(raw) {
		return parsePyFloat(string(raw[1 : len(raw)-1]))
	}
	return jsonToFloat(raw)
}

// scannedKey is canonicalKey(raw) for a scanned value (no surrounding
// whitespace), except that a plain string literal, its own canonical form,
// is returned as plain instead.
func scannedKey(raw []byte) (canonical string, plain []byte) {
	if isPlainString(raw) {
		return "", raw
	}
	return canonicalKey(raw), nil
}

// parseOptionsSlow is ParseOptions through a map decode (escaped keys,
// invalid UTF-8 or invalid JSON).
func parseOptionsSlow(raw json.RawMessage) Options {
	var o Options
	if len(raw) == 0 || raw[0] != '{' || !utf8.Valid(raw) {
		return o
	}
	m, kind := decodeJSONObject(raw)
	if kind != docObject {
		return o
	}
	if v, ok := m["order"]; ok {
		if f, ok := jsonToFloat(v); ok {
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
