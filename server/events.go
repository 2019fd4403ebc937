package server

import (
	"bytes"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"mako/config"
	"mako/protocol"
	"mako/server/service"
)

// serviceInfo is a configured service, resolved once at start.
type serviceInfo struct {
	name string
	cfg  *config.Service
}

func newServiceInfo(name string, c *config.Service) *serviceInfo {
	if c == nil {
		c = &config.Service{}
	}
	return &serviceInfo{name: name, cfg: c}
}

func (si *serviceInfo) isExtra(field string) bool {
	for _, f := range si.cfg.ExtraFields {
		if f == field {
			return true
		}
	}
	return false
}

// dispatch runs one client event. Every path ends in sess.finish(), at once
// or from a service call's continuation.
func (sess *session) dispatch(ev *protocol.ClientEvent, valid bool) {
	if !valid {
		sess.reply(&protocol.Reply{Status: "error", Error: protocol.ErrInvalidEvent})
		sess.finish()
		return
	}
	switch ev.Event {
	case "auth":
		sess.auth(ev)
	case "subscribe", "message", "unsubscribe":
		sess.subscriptionEvent(ev)
	case "ping":
		data, present := ev.Raw("data")
		l := sess.l
		var frame []byte
		l.s.metrics.event("ping", "success") // before the write, as in reply
		l.scratch, frame = encodeTextFrame(l.scratch[:0], func(b []byte) []byte { return protocol.AppendPong(b, data, present) })
		sess.writeText(frame)
		sess.finish()
	default:
		// Counted once, as "unknown" (reply would count the client's name).
		sess.l.s.metrics.event("unknown", "error")
		r := &protocol.Reply{Event: ev.Event, Status: "error", Error: protocol.ErrEventNotFound}
		if ev.Event == "" {
			// SocketShark echoes the empty name too; Reply omits an empty Event.
			r.Extra = []protocol.Field{{Name: "event", Value: json.RawMessage(`""`)}}
		}
		sess.writeReply(r)
		sess.finish()
	}
}

func (sess *session) fail(event, subName string, extra []protocol.Field, msg string, data json.RawMessage) {
	data = truthy(data)
	sess.reply(&protocol.Reply{Event: event, Status: "error", Error: msg, Subscription: subName, Extra: extra, Data: data})
	sess.finish()
}

// truthy keeps an error reply's data only when Python finds it true:
// SocketShark raises EventError(data=error_data if error_data else None), so
// false, 0, "", [] and {} are left out like null.
func truthy(d json.RawMessage) json.RawMessage {
	d = bytes.TrimSpace(d)
	if len(d) == 0 {
		return nil
	}
	switch c := d[0]; {
	case c == 'n' || c == 'f':
		return nil
	case c == '"' && len(d) == 2:
		return nil
	case (c == '[' || c == '{') && len(d) >= 2 && len(bytes.TrimSpace(d[1:len(d)-1])) == 0:
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		if f, err := strconv.ParseFloat(string(d), 64); err == nil && f == 0 {
			return nil
		}
	}
	return d
}

func (sess *session) auth(ev *protocol.ClientEvent) {
	s := sess.l.s
	method, present, isString := ev.String("method")
	if !present {
		// data.get("method", "ticket"): only an absent key defaults; null is
		// a method SocketShark does not know.
		method, isString = "ticket", true
	}
	tc := s.cfg.Authentication.Ticket
	if !isString || method != "ticket" || tc == nil {
		sess.fail("auth", "", nil, protocol.ErrAuthMethodUnsupported, nil)
		return
	}
	ticket, _, isString := ev.String("ticket")
	if !isString || ticket == "" {
		sess.fail("auth", "", nil, protocol.ErrMustSpecifyTicket, nil)
		return
	}
	body := appendObject(nil, []protocol.Field{{Name: "ticket", Value: protocol.AppendJSONString(nil, ticket)}})
	sess.callEvent("auth", epValidationURL, tc.ValidationURL, body, func(res service.Result) {
		if !res.OK {
			sess.fail("auth", "", nil, errorOf(res, protocol.ErrAuthFailed), nil)
			return
		}
		fields := make([]protocol.Field, 0, len(tc.AuthFields))
		for _, f := range tc.AuthFields {
			v, ok := res.Fields[f]
			if !ok {
				// SocketShark crashes the session here; mako keeps it.
				s.log.Warn("auth reply lacks a configured auth field", "field", f)
				sess.fail("auth", "", nil, protocol.ErrAuthFailed, nil)
				return
			}
			fields = append(fields, protocol.Field{Name: f, Value: v})
		}
		sess.authFields = fields
		sess.authed = true
		sess.reply(&protocol.Reply{Event: "auth", Status: "ok"})
		sess.finish()
	})
}

// subscriptionEvent runs the shared checks of subscribe/message/unsubscribe
// (spec order), then the event itself.
func (sess *session) subscriptionEvent(ev *protocol.ClientEvent) {
	s := sess.l.s
	name, present, isString := ev.String("subscription")
	echo := ""
	if isString {
		echo = name
	}
	if present && !isString {
		sess.fail(ev.Event, "", nil, protocol.ErrInvalidSubscription, nil)
		return
	}
	svcName, topic, found := strings.Cut(name, ".")
	if !found || svcName == "" || topic == "" {
		sess.fail(ev.Event, echo, nil, protocol.ErrInvalidSubscription, nil)
		return
	}
	svc := s.services[svcName]
	if svc == nil {
		sess.fail(ev.Event, echo, nil, protocol.ErrInvalidService, nil)
		return
	}
	existing := sess.subs[name]
	var extra []protocol.Field
	if existing != nil {
		extra = existing.extra
	} else {
		for _, f := range svc.cfg.ExtraFields {
			if v, ok := ev.Raw(f); ok {
				extra = append(extra, protocol.Field{Name: f, Value: v})
			}
		}
	}
	if ev.Event == "subscribe" && svc.cfg.RequiresAuth() && !sess.authed {
		sess.fail(ev.Event, echo, extra, protocol.ErrAuthRequired, nil)
		return
	}
	switch {
	case ev.Event == "subscribe" && existing != nil:
		sess.fail(ev.Event, echo, extra, protocol.ErrAlreadySubscribed, nil)
	case ev.Event != "subscribe" && existing == nil:
		sess.fail(ev.Event, echo, extra, protocol.ErrSubscriptionNotFound, nil)
	case ev.Event == "subscribe":
		if len(sess.subs) >= s.cfg.Limits.MaxSubscriptions {
			s.log.Warn("subscription refused: session limit", "limit", s.cfg.Limits.MaxSubscriptions)
			sess.fail(ev.Event, echo, extra, protocol.ErrUnhandled, nil)
			return
		}
		sess.subscribe(newSubscription(sess, svc, name, extra))
	case ev.Event == "message":
		data, ok := ev.Raw("data")
		if !ok {
			data = json.RawMessage("null")
		}
		sess.message(existing, data)
	default:
		sess.unsubscribe(existing)
	}
}

func (sess *session) subscribe(sub *subscription) {
	c := sub.svc.cfg
	sub.callEvent(epAuthorizer, c.Authorizer, func(res service.Result) {
		if !res.OK {
			sess.fail("subscribe", sub.name, sub.extra, errorOf(res, protocol.ErrUnauthorized), dataOf(res))
			return
		}
		sub.authzFields = pickFields(res.Fields, c.AuthorizerFields)
		// Start receiving the channel; messages from now on are held.
		sub.pending = true
		sess.pendingSub = sub
		sess.l.hold(sub, func(err error) {
			if sess.gone {
				sess.dropPending(sub)
				sess.finish()
				return
			}
			if err != nil {
				sess.l.s.log.Warn("broker subscribe failed", "subscription", sub.name, "cause", err.Error())
				sess.dropPending(sub)
				sess.fail("subscribe", sub.name, sub.extra, protocol.ErrServiceUnavailable, nil)
				return
			}
			sess.beforeSubscribe(sub)
		})
	})
}

// dropPending abandons a subscription in its provisional window: its hold
// on the channel and the messages held for it.
func (sess *session) dropPending(sub *subscription) {
	sess.l.release(sub)
	sub.held, sub.pending, sub.ended, sess.pendingSub = nil, false, true, nil
}

func (sess *session) beforeSubscribe(sub *subscription) {
	sess.call(sub.svc.name, epBeforeSubscribe, sub.svc.cfg.BeforeSubscribe, sub.body(nil), func(res service.Result) {
		if sess.gone {
			sess.dropPending(sub)
			sess.finish()
			return
		}
		if !res.OK {
			sess.dropPending(sub)
			sess.fail("subscribe", sub.name, sub.extra, errorOf(res, protocol.ErrUnhandled), dataOf(res))
			return
		}
		if sess.subs == nil {
			sess.subs = make(map[string]*subscription)
		}
		sess.subs[sub.name] = sub
		sub.pending, sess.pendingSub = false, nil
		// The reply passes the same checks as a published message, so its
		// options.order seeds the order state.
		now, mono := sess.l.s.clock.Now(), sess.l.s.clock.Mono()
		if sub.admit(res.Fields, protocol.ParseOptions(res.Fields["options"])) {
			sess.reply(&protocol.Reply{Event: "subscribe", Status: "ok", Subscription: sub.name, Extra: sub.extra, Data: dataOf(res)})
		}
		held := sub.held
		sub.held = nil
		for _, m := range held {
			sub.offer(m, now, false)
		}
		if !sess.gone {
			sub.startTimers(mono)
		}
		sess.call(sub.svc.name, epOnSubscribe, sub.svc.cfg.OnSubscribe, sub.body(nil), func(service.Result) { sess.finish() })
	})
}

func (sess *session) message(sub *subscription, data json.RawMessage) {
	url := sub.svc.cfg.OnMessage
	if url == "" {
		sess.l.s.metrics.event("message", "success")
		sess.finish()
		return
	}
	sess.callEvent(sub.svc.name, epOnMessage, url, sub.body(data), func(res service.Result) {
		switch {
		case !res.OK:
			sess.fail("message", sub.name, sub.extra, errorOf(res, protocol.ErrUnhandled), dataOf(res))
		case res.Data != nil:
			sess.reply(&protocol.Reply{Event: "message", Status: "ok", Subscription: sub.name, Extra: sub.extra, Data: res.Data})
			sess.finish()
		default:
			sess.l.s.metrics.event("message", "success")
			sess.finish()
		}
	})
}

func (sess *session) unsubscribe(sub *subscription) {
	c := sub.svc.cfg
	sub.callEvent(epBeforeUnsubscribe, c.BeforeUnsubscribe, func(res service.Result) {
		if !res.OK {
			sess.fail("unsubscribe", sub.name, sub.extra, errorOf(res, protocol.ErrUnhandled), dataOf(res))
			return
		}
		sess.endSub(sub)
		sess.reply(&protocol.Reply{Event: "unsubscribe", Status: "ok", Subscription: sub.name, Extra: sub.extra, Data: dataOf(res)})
		sess.call(sub.svc.name, epOnUnsubscribe, c.OnUnsubscribe, sub.body(nil), func(service.Result) { sess.finish() })
	})
}

// endSub removes a confirmed subscription: index, timers, session map.
func (sess *session) endSub(sub *subscription) {
	if sub.ended {
		return
	}
	sub.ended = true
	sub.stopTimers()
	sess.l.release(sub)
	delete(sess.subs, sub.name)
}

// revoke ends a subscription whose re-authorization failed, telling the
// client (SocketShark loses this event when unsubscribe callbacks are set;
// mako does not).
func (sess *session) revoke(sub *subscription, msg string) {
	sess.endSub(sub)
	sub.unsubscribeCallbacks(func(before service.Result) {
		// A server-initiated push, not a reply to a client event: not counted.
		sess.writeReply(&protocol.Reply{Event: "unsubscribe", Error: msg, Subscription: sub.name, Extra: sub.extra, Data: dataOf(before)})
	}, sess.finish)
}

// pickFields keeps the configured names present in a reply, in config order.
func pickFields(reply map[string]json.RawMessage, names []string) []protocol.Field {
	var out []protocol.Field
	for _, n := range names {
		if v, ok := reply[n]; ok {
			out = append(out, protocol.Field{Name: n, Value: v})
		}
	}
	return out
}

// appendObject encodes fields as one JSON object; a later field with the
// same name overwrites an earlier one (the spec's "later sources win").
func appendObject(dst []byte, fields []protocol.Field) []byte {
	dst = append(dst, '{')
	first := true
	for i, f := range fields {
		shadowed := false
		for _, g := range fields[i+1:] {
			if g.Name == f.Name {
				shadowed = true
				break
			}
		}
		if shadowed {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = protocol.AppendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = append(dst, f.Value...)
	}
	return append(dst, '}')
}
