package server

import (
	"math/rand/v2"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"mako/protocol"
	"mako/pubsub"
	"mako/server/service"
)

// subscription is one session's hold on service.topic, owned by the loop.
type subscription struct {
	sess *session
	svc  *serviceInfo
	name string

	extra       []protocol.Field // configured extra fields the client sent
	variant     string           // extra values joined: subscriptions with equal values share an encoded frame
	authzFields []protocol.Field // from the last authorizer reply

	// Place in the loop's index (see chanEntry): the entry holding it, its
	// slot in entry.subs and its interned variant id; nil, -1, -1 when out.
	entry *chanEntry
	slot  int32
	vid   int32

	pending bool              // provisional: subscribed at the broker, before_subscribe not done
	held    []*pubsub.Message // messages that arrived while pending
	ended   bool

	order    protocol.OrderState
	throttle *throttle // lazily made: most subscriptions never see options.throttle

	reauth    timer
	heartbeat timer
}

// throttle is a subscription's throttle state and the timers of its keys
// with a held message. A key's timer lives only while the key is pending,
// so timers, like keys, are bounded by limits.max_throttle_keys.
type throttle struct {
	state  protocol.ThrottleState
	timers map[string]*timer
}

func newSubscription(sess *session, svc *serviceInfo, name string, extra []protocol.Field) *subscription {
	sub := &subscription{sess: sess, svc: svc, name: name, extra: extra, slot: -1, vid: -1}
	for _, f := range extra {
		sub.variant += f.Name + "\x00" + string(f.Value) + "\x00"
	}
	sub.reauth = newTimer(sub.onReauth)
	sub.heartbeat = newTimer(sub.onHeartbeat)
	return sub
}

// body is the callback body: subscription, extra fields, authorizer fields,
// auth fields (later sources overwrite earlier), plus data for on_message.
func (sub *subscription) body(data json.RawMessage) []byte {
	fields := make([]protocol.Field, 0, 1+len(sub.extra)+len(sub.authzFields)+len(sub.sess.authFields)+1)
	fields = append(fields, protocol.Field{Name: "subscription", Value: protocol.AppendJSONString(nil, sub.name)})
	fields = append(fields, sub.extra...)
	fields = append(fields, sub.authzFields...)
	fields = append(fields, sub.sess.authFields...)
	if data != nil {
		fields = append(fields, protocol.Field{Name: "data", Value: data})
	}
	return appendObject(nil, fields)
}

// filterOK applies filter_fields: an extra field must equal the
// subscription's value, any other the session's auth field.
func (sub *subscription) filterOK(fields map[string]json.RawMessage) bool {
	for _, name := range sub.svc.cfg.FilterFields {
		v, ok := fields[name]
		if !ok {
			continue
		}
		var want json.RawMessage
		if sub.svc.isExtra(name) {
			want = fieldValue(sub.extra, name)
		} else {
			want = fieldValue(sub.sess.authFields, name)
		}
		if want == nil {
			want = json.RawMessage("null")
		}
		if !protocol.JSONEqual(v, want) {
			return false
		}
	}
	return true
}

func fieldValue(fs []protocol.Field, name string) json.RawMessage {
	for i := range fs {
		if fs[i].Name == name {
			return fs[i].Value
		}
	}
	return nil
}

// admit runs filter and order checks and opens a throttle window when the
// options ask for one; false means drop. It is used for the before_subscribe
// reply, whose throttle window is always fresh.
func (sub *subscription) admit(fields map[string]json.RawMessage, o protocol.Options) bool {
	if !sub.filterOK(fields) || !sub.orderAccept(&o) {
		return false
	}
	if !o.HasThrottle {
		return true
	}
	d := sub.throttleOffer(&o, nil)
	return d == protocol.SendNow
}

// offer runs the per-subscription checks on a published message and writes
// it, now or at the end of a throttle window. live messages carry the full
// timing fields; held ones get sent_at only.
func (sub *subscription) offer(m *pubsub.Message, now time.Time, live bool) {
	p := m.Pub
	if !sub.filterOK(p.Fields) || !sub.orderAccept(&p.Options) {
		return
	}
	if p.Options.HasThrottle {
		if d := sub.throttleOffer(&p.Options, m); d != protocol.SendNow {
			return
		}
	}
	if live {
		sub.sess.writeShared(sub.sess.l.liveFrame(sub, m, now))
		return
	}
	// Replayed after the ok: SocketShark passes no receive time, but
	// on_service_event still reads published_at.
	sub.sendLate(m, protocol.Timing{SentAt: now, PublishedAt: m.Pub.PublishedAt, PublishedAtJSON: m.Pub.Fields["published_at"]})
}

// hold keeps a message that arrived in the provisional window, bounded by
// limits.max_held_messages.
func (sub *subscription) hold(m *pubsub.Message) {
	max := sub.sess.l.s.cfg.Limits.MaxHeldMessages
	if len(sub.held) >= max {
		sub.sess.l.s.log.Warn("provisional window full: dropping the oldest held message", "session", sub.sess.id, "subscription", sub.name, "limit", max)
		if max == 0 {
			return
		}
		copy(sub.held, sub.held[1:])
		sub.held = sub.held[:len(sub.held)-1]
	}
	sub.held = append(sub.held, m)
}

// sendLate writes a message that did not go out as it arrived (held in the
// provisional window, or a throttle window's trailing one), with timing t.
func (sub *subscription) sendLate(m *pubsub.Message, t protocol.Timing) {
	l := sub.sess.l
	var frame []byte
	l.scratch, frame = encodeTextFrame(l.scratch[:0], func(b []byte) []byte {
		return protocol.AppendMessage(b, sub.name, m.Pub.Data, sub.extra, t)
	})
	sub.sess.writeText(frame)
}

// throttleOffer runs the throttle check at the current Clock.Mono reading:
// windows are timers, so they ignore wall-clock steps. Past
// limits.max_throttle_keys a new key's message is sent untracked.
func (sub *subscription) throttleOffer(o *protocol.Options, m *pubsub.Message) protocol.ThrottleDecision {
	th := sub.throttle
	if th == nil {
		th = &throttle{timers: make(map[string]*timer)}
		th.state.MaxKeys = sub.sess.l.s.cfg.Limits.MaxThrottleKeys
		sub.throttle = th
	}
	var msg any
	if m != nil {
		msg = m
	}
	now := monoInstant(sub.sess.l.s.clock.Mono())
	n := th.state.Len()
	d, end, arm := th.state.Offer(o.ThrottleKey, o.ThrottleDuration(), now, msg)
	met := &sub.sess.l.s.metrics
	if d := th.state.Len() - n; d != 0 { // a shared counter: not touched per message
		met.throttleKeys.Add(int64(d))
	}
	if d == protocol.SendUntracked {
		met.throttleUntracked.Add(1)
		d = protocol.SendNow
	}
	if arm {
		sub.armThrottle(o.ThrottleKey, end)
	}
	return d
}

// armThrottle schedules the end of key's window; at is a monoInstant, as
// every time the throttle state holds.
func (sub *subscription) armThrottle(key string, at time.Time) {
	t := sub.throttle.timers[key]
	if t == nil {
		key = strings.Clone(key) // may alias a payload: do not pin it
		t = new(timer)
		*t = newTimer(func() { sub.onThrottle(key) })
		sub.throttle.timers[key] = t
	}
	sub.sess.l.sched.set(t, monoOf(at))
}

// onThrottle ends a window: the pending message goes out, which opens the
// next window; a message held in it arms a new timer through Offer. Expire
// also forgets the keys whose windows have all ended.
func (sub *subscription) onThrottle(key string) {
	if sub.ended {
		return
	}
	clock := sub.sess.l.s.clock
	now := monoInstant(clock.Mono())
	th := sub.throttle
	delete(th.timers, key)
	n := th.state.Len()
	msg, ok, _ := th.state.Expire(key, now)
	if d := th.state.Len() - n; d != 0 {
		sub.sess.l.s.metrics.throttleKeys.Add(int64(d))
	}
	if ok {
		if m, isMsg := msg.(*pubsub.Message); isMsg {
			// send_message(self, data): the trailing message has sent_at only.
			sub.sendLate(m, protocol.Timing{SentAt: clock.Now()})
		}
	}
}

// startTimers arms re-authorization and heartbeats from now (Clock.Mono).
func (sub *subscription) startTimers(now time.Duration) {
	c := sub.svc.cfg
	if c.AuthorizationRenewalPeriod > 0 && c.Authorizer != "" {
		sub.sess.l.sched.set(&sub.reauth, now+sub.renewalDelay())
	}
	if c.HeartbeatPeriod > 0 && c.OnHeartbeat != "" {
		first := time.Duration(rand.Float64() * float64(c.HeartbeatPeriod.Duration()))
		sub.sess.l.sched.set(&sub.heartbeat, now+first)
	}
}

// renewalDelay is period − random(0, jitter).
func (sub *subscription) renewalDelay() time.Duration {
	c := sub.svc.cfg
	return c.AuthorizationRenewalPeriod.Duration() - time.Duration(rand.Float64()*float64(c.AuthorizationRenewalJitter.Duration()))
}

func (sub *subscription) stopTimers() {
	sched := &sub.sess.l.sched
	sched.stop(&sub.reauth)
	sched.stop(&sub.heartbeat)
	if sub.throttle != nil {
		for _, t := range sub.throttle.timers {
			sched.stop(t)
		}
		sub.sess.l.s.metrics.throttleKeys.Add(-int64(sub.throttle.state.Len()))
		sub.throttle = nil
	}
	sub.dropOrderState()
}

// onReauth queues the re-authorization behind the session's client events,
// so it never interleaves with an unsubscribe of the same subscription.
func (sub *subscription) onReauth() {
	sess := sub.sess
	sess.enqueue(queued{task: func() {
		if sub.ended {
			sess.finish()
			return
		}
		c := sub.svc.cfg
		sub.callEvent(epAuthorizer, c.Authorizer, func(res service.Result) {
			if !res.OK {
				sess.revoke(sub, res, protocol.ErrUnauthorized)
				return
			}
			fields := pickFields(res.Fields, c.AuthorizerFields)
			changed := !sameFields(fields, sub.authzFields)
			sub.authzFields = fields
			if !changed || c.OnAuthorizationChange == "" {
				sub.sess.l.sched.set(&sub.reauth, sess.l.s.clock.Mono()+sub.renewalDelay())
				sess.finish()
				return
			}
			sub.callEvent(epOnAuthorizationChange, c.OnAuthorizationChange, func(res service.Result) {
				if !res.OK {
					// SocketShark's default for every callback but the
					// authorizer is Unhandled exception.
					sess.revoke(sub, res, protocol.ErrUnhandled)
					return
				}
				sub.sess.l.sched.set(&sub.reauth, sess.l.s.clock.Mono()+sub.renewalDelay())
				sess.finish()
			})
		})
	}})
}

// callEvent is session.callEvent for a callback with this subscription's
// body; the event also just ends when the subscription ended meanwhile.
func (sub *subscription) callEvent(ep endpoint, url string, k func(service.Result)) {
	sess := sub.sess
	sess.call(sub.svc.name, ep, url, sub.body(nil), func(res service.Result) {
		if sub.ended || sess.gone {
			sess.finish()
			return
		}
		k(res)
	})
}

// onHeartbeat posts the body to on_heartbeat; errors are only logged, so it
// does not wait its turn behind client events. The next heartbeat is
// scheduled a period after this one finished, as SocketShark's loop sleeps
// then awaits the call: a slow service gets at most one heartbeat of each
// subscription at a time instead of one more per period.
func (sub *subscription) onHeartbeat() {
	if sub.ended {
		return
	}
	c := sub.svc.cfg
	s := sub.sess.l.s
	name := sub.name
	sub.sess.call(sub.svc.name, epOnHeartbeat, c.OnHeartbeat, sub.body(nil), func(res service.Result) {
		if !res.OK {
			s.log.Warn("heartbeat failed", "session", sub.sess.id, "service", sub.svc.name, "subscription", name, "cause", errorOf(res, "error reply"))
		}
		if sub.ended || sub.sess.gone {
			return
		}
		sub.sess.l.sched.set(&sub.heartbeat, s.clock.Mono()+c.HeartbeatPeriod.Duration())
	})
}

// unsubscribeCallbacks calls before_unsubscribe, then mid (with its result,
// may be nil), then on_unsubscribe, then k. They end a subscription the
// service was told of (a closing session, a revoked authorization), so they
// are owed: never refused by a full wait queue.
func (sub *subscription) unsubscribeCallbacks(mid func(service.Result), k func()) {
	sess, c := sub.sess, sub.svc.cfg
	sess.callOwed(sub.svc.name, epBeforeUnsubscribe, c.BeforeUnsubscribe, sub.body(nil), func(res service.Result) {
		if mid != nil {
			mid(res)
		}
		sess.callOwed(sub.svc.name, epOnUnsubscribe, c.OnUnsubscribe, sub.body(nil), func(service.Result) { k() })
	})
}

func sameFields(a, b []protocol.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !protocol.JSONEqual(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
