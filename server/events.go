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
		// SocketShark echoes the name as sent, the empty one too.
		sess.writeReply(&protocol.Reply{Event: ev.Event, HasEvent: true, Status: "error", Error: protocol.ErrEventNotFound})
		sess.finish()
	}
}

// fail sends an error reply and ends the event. msg is mako's own error
// string; serviceFail is failWith for a callback's error reply.
func (sess *session) fail(event, subName string, extra []protocol.Field, msg string, data json.RawMessage) {
	sess.failWith(event, subName, extra, protocol.AppendJSONString(nil, msg), data)
}

// serviceFail replies with a failed callback's error (errorValue) and its
// data when Python finds it true.
func (sess *session) serviceFail(event, subName string, extra []protocol.Field, res service.Result, def string) {
	sess.failWith(event, subName, extra, errorValue(res, def), dataOf(res))
}

func (sess *session) failWith(event, subName string, extra []protocol.Field, errJSON, data json.RawMessage) {
	data = truthy(data)
	sess.reply(&protocol.Reply{Event: event, Status: "error", ErrorJSON: errJSON, Subscription: subName, Extra: extra, Data: data})
	sess.finish()
}

// errorValue is the error a client gets for a failed callback, as JSON:
// SocketShark uses result.get("error", default), so a reply's own "error"
// is echoed whatever its value (null, "", a number), and def only when the
// key is absent. Every try failing is "Service unavailable."; a reply that
// is not a JSON object is "Unhandled exception." (mako's, see protocol.md).
func errorValue(res service.Result, def string) json.RawMessage {
	switch {
	case res.Unavailable:
		return protocol.AppendJSONString(nil, protocol.ErrServiceUnavailable)
	case res.Broken:
		return protocol.AppendJSONString(nil, protocol.ErrUnhandled)
	}
	if v, ok := res.Fields["error"]; ok && len(v) > 0 {
		return v
	}
	return protocol.AppendJSONString(nil, def)
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
	// SocketShark posts any ticket Python finds true (a number, a list...)
	// as the client sent it, and refuses only a missing or false one.
	ticket, ok := ev.Raw("ticket")
	if !ok || truthy(ticket) == nil {
		sess.fail("auth", "", nil, protocol.ErrMustSpecifyTicket, nil)
		return
	}
	body := appendObject(nil, []protocol.Field{{Name: "ticket", Value: ticket}})
	sess.callEvent("auth", epValidationURL, tc.ValidationURL, body, func(res service.Result) {
		if !res.OK {
			sess.failWith("auth", "", nil, errorValue(res, protocol.ErrAuthFailed), nil)
			return
		}
		fields := make([]protocol.Field, 0, len(tc.AuthFields))
		for _, f := range tc.AuthFields {
			v, ok := res.Fields[f]
			if !ok {
				// SocketShark crashes the session here; mako keeps it.
				s.log.Warn("auth reply lacks a configured auth field", "session", sess.id, "field", f)
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
	// The echoed extra fields are those of the service named before the
	// first ".", when it is configured, whatever check fails next (so
	// "books." gets its format error with them): SocketShark's Subscription
	// picks them before validate(). A held subscription's own are echoed.
	svcName, topic, found := strings.Cut(name, ".")
	var svc *serviceInfo
	if found {
		svc = s.services[svcName]
	}
	existing := sess.subs[name]
	var extra []protocol.Field
	switch {
	case existing != nil:
		extra = existing.extra
	case svc != nil:
		for _, f := range svc.cfg.ExtraFields {
			if v, ok := ev.Raw(f); ok && !hasFieldNamed(extra, f) {
				extra = append(extra, protocol.Field{Name: f, Value: v})
			}
		}
	}
	if !found || svcName == "" || topic == "" {
		sess.fail(ev.Event, echo, extra, protocol.ErrInvalidSubscription, nil)
		return
	}
	if svc == nil {
		sess.fail(ev.Event, echo, nil, protocol.ErrInvalidService, nil)
		return
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
			s.log.Warn("subscription refused: session limit", "session", sess.id, "limit", s.cfg.Limits.MaxSubscriptions)
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
			sess.serviceFail("subscribe", sub.name, sub.extra, res, protocol.ErrUnauthorized)
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
				sess.l.s.log.Warn("broker subscribe failed", "session", sess.id, "subscription", sub.name, "cause", err.Error())
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
			sess.serviceFail("subscribe", sub.name, sub.extra, res, protocol.ErrUnhandled)
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
		sess.callOwed(sub.svc.name, epOnSubscribe, sub.svc.cfg.OnSubscribe, sub.body(nil), func(service.Result) { sess.finish() })
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
			sess.serviceFail("message", sub.name, sub.extra, res, protocol.ErrUnhandled)
		case res.Data != nil:
			// A data key, even null, gets a reply; null is then left out
			// (send_ok(result["data"]) only writes data that is not None).
			sess.reply(&protocol.Reply{Event: "message", Status: "ok", Subscription: sub.name, Extra: sub.extra, Data: dataOf(res)})
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
			sess.serviceFail("unsubscribe", sub.name, sub.extra, res, protocol.ErrUnhandled)
			return
		}
		sess.endSub(sub)
		sess.reply(&protocol.Reply{Event: "unsubscribe", Status: "ok", Subscription: sub.name, Extra: sub.extra, Data: dataOf(res)})
		sess.callOwed(sub.svc.name, epOnUnsubscribe, c.OnUnsubscribe, sub.body(nil), func(service.Result) { sess.finish() })
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
// failed is the callback's failed result, def its default error.
func (sess *session) revoke(sub *subscription, failed service.Result, def string) {
	errJSON := errorValue(failed, def)
	if string(errJSON) == "null" {
		errJSON = nil // send_unsubscribe writes error only when not None
	}
	sess.endSub(sub)
	var data json.RawMessage
	// As self_unsubscribe: before_unsubscribe, on_unsubscribe, then the push.
	sub.unsubscribeCallbacks(func(before service.Result) { data = dataOf(before) }, func() {
		// A server-initiated push, not a reply to a client event: not counted.
		if sess.state == stOpen {
			l := sess.l
			var frame []byte
			l.scratch, frame = encodeTextFrame(l.scratch[:0], func(b []byte) []byte {
				return protocol.AppendUnsubscribe(b, sub.name, data, errJSON, sub.extra)
			})
			sess.writeText(frame)
		}
		sess.finish()
	})
}

func hasFieldNamed(fs []protocol.Field, name string) bool {
	for i := range fs {
		if fs[i].Name == name {
			return true
		}
	}
	return false
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
