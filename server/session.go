package server

import (
	"context"
	"runtime/debug"
	"time"

	json "github.com/goccy/go-json"
	"github.com/panjf2000/gnet/v2"

	"mako/internal/logx"
	"mako/protocol"
	"mako/server/service"
	"mako/server/ws"
)

// session is one WebSocket connection's state, owned by its loop.
type session struct {
	l     *loop
	c     gnet.Conn
	state connState
	// paused: parsing stopped because the queue is full; the client's
	// bytes wait in gnet's inbound buffer. resumePosted: a resume task is
	// on the loop. closeCalled: gnet's Close was called. (Beside state,
	// these and unchecked fill what would be padding.) upgraded: the 101
	// was sent, so the session counts in socketshark_connection_count.
	paused, resumePosted, closeCalled, upgraded bool
	// unchecked: bytes written since the kernel's unsent bytes were last
	// read (see backlog).
	unchecked int32
	// evTAT and evRefused are the event rate bucket (clientlimit.go): its
	// GCRA time, and the events refused since it was last full.
	evTAT time.Duration
	ip    *ipEntry // the per-address count this connection holds

	dec   ws.Decoder
	need  int   // bytes buffered before parsing can progress (0 = any); see parse
	timer timer // handshake deadline, then ping / pong deadline

	awaitingPong bool
	// Beside awaitingPong, in what would be padding: proxyPending, the
	// PROXY header (ws.proxy_protocol) is still to come; ipRefused, the
	// client address is over a per-address limit, so the upgrade is
	// refused; evRefused (see evTAT).
	proxyPending bool
	ipRefused    ipVerdict
	evRefused    uint16
	// mark is a Clock.Mono reading: while open, when the ping awaiting its
	// pong was sent; while closing, the close deadline (see closeConn).
	mark time.Duration

	authed bool
	// id is the session's `session` on every log line about it (in what
	// would be padding after authed).
	id         uint32
	authFields []protocol.Field // the configured auth_fields, from the last successful auth

	subs       map[string]*subscription // confirmed subscriptions
	pendingSub *subscription            // the one in its provisional window, if any

	out      []byte // output pending until the loop's flush (see loop.queueOut)
	outOwned bool   // out is the session's buffer, not a shared fan-out frame

	queue  []queued
	busy   bool // an event is in progress (possibly waiting on a service call)
	inPump bool

	gone     bool // the socket is closed; close steps pending or running
	finished bool // close steps done
}

// queued is a client event waiting its turn, or an internal task (e.g. a
// re-authorization) that must not interleave with client events.
type queued struct {
	ev      protocol.ClientEvent
	valid   bool
	limited bool // refused by the event rate: answered in its turn
	task    func()
}

func newSession(l *loop, c gnet.Conn) *session {
	sess := &session{l: l, c: c, state: stHandshake, proxyPending: l.s.cfg.WS.ProxyProtocol, id: sessionIDs.Add(1)}
	sess.timer = newTimer(sess.onTimer)
	return sess
}

// enqueue appends an event and runs it when the session is idle. The queue
// is bounded by the parser, which stops reading client events while it is
// full (queueFull); internal tasks (re-authorization) are never refused.
func (sess *session) enqueue(q queued) {
	if sess.gone {
		return
	}
	if q.task == nil {
		refuse, abuse := sess.rateEvent()
		if abuse {
			sess.l.s.log.Info("closing connection: event rate exceeded", "session", sess.id, "refused", sess.evRefused,
				"client_events_per_second", sess.l.s.cfg.Limits.ClientEventsPerSecond)
			sess.closeWith(ws.ClosePolicyViolation, "rate limit exceeded")
			return
		}
		q.limited = refuse
	}
	sess.queue = append(sess.queue, q)
	sess.pump()
}

// queueFull reports that limits.max_queued_events events wait behind the
// one in progress, so the next frame is left unparsed. With 0, the next
// frame is parsed only once the event in progress is done (SocketShark
// reads a connection that way).
func (sess *session) queueFull() bool {
	return sess.busy && len(sess.queue) >= sess.l.s.cfg.Limits.MaxQueuedEvents
}

// canResume reports room to parse again: the session is idle, or at most
// half the queue is taken, so a resume parses a batch of events and not
// one event per resume.
func (sess *session) canResume() bool {
	return !sess.busy || len(sess.queue) < (sess.l.s.cfg.Limits.MaxQueuedEvents+1)/2
}

func (sess *session) pause() {
	if !sess.paused {
		sess.paused = true
		sess.l.s.metrics.paused.Add(1)
	}
}

// resume parses the bytes left unparsed by a pause. It runs as its own loop
// task, never inside the event code that made room (which may itself run
// inside onTraffic or a delivery).
func (sess *session) resume() {
	sess.resumePosted = false
	if sess.gone || !sess.paused || !sess.canResume() {
		return
	}
	sess.paused = false
	sess.l.s.metrics.paused.Add(-1)
	// gnet calls OnTraffic only for new bytes: the buffered ones are
	// parsed from here.
	sess.onTraffic()
}

// pump starts queued events while the session is idle. Synchronous events
// call finish inside dispatch; inPump keeps that from recursing.
func (sess *session) pump() {
	if sess.inPump {
		return
	}
	sess.inPump = true
	for !sess.busy && len(sess.queue) > 0 && !sess.gone {
		q := sess.queue[0]
		copy(sess.queue, sess.queue[1:])
		sess.queue[len(sess.queue)-1] = queued{}
		sess.queue = sess.queue[:len(sess.queue)-1]
		sess.busy = true
		if q.task != nil {
			q.task()
		} else if q.limited {
			sess.refuseEvent(&q.ev, q.valid)
		} else {
			sess.dispatch(&q.ev, q.valid)
		}
	}
	sess.inPump = false
	if !sess.busy && sess.gone && !sess.finished {
		sess.runCloseSteps()
		return
	}
	if sess.paused && !sess.resumePosted && !sess.gone && sess.canResume() {
		sess.resumePosted = true
		sess.l.execute(sess.resume)
	}
}

// finish ends the event in progress.
func (sess *session) finish() {
	sess.busy = false
	sess.pump()
}

// onClosed runs when gnet has closed the socket (any reason).
func (sess *session) onClosed() {
	if sess.gone {
		return
	}
	sess.state = stClosed
	sess.gone = true
	if sess.paused {
		sess.paused = false
		sess.l.s.metrics.paused.Add(-1)
	}
	sess.l.sched.stop(&sess.timer)
	sess.releaseIP()
	delete(sess.l.sessions, sess)
	sess.l.s.metrics.connCount.Add(-1)
	sess.queue = nil
	sess.out, sess.outOwned = nil, false
	sess.dec.Reset()
	if sess.l.delivering {
		sess.l.closedLater = append(sess.l.closedLater, sess)
		return
	}
	if !sess.busy {
		sess.runCloseSteps()
	}
}

// runCloseSteps ends every remaining subscription with its unsubscribe
// callbacks (results ignored), then releases the session.
func (sess *session) runCloseSteps() {
	sess.busy = true
	pending := len(sess.subs)
	if pending == 0 {
		sess.done()
		return
	}
	for _, sub := range sess.subs {
		sess.endSub(sub)
		sub.unsubscribeCallbacks(nil, func() {
			pending--
			if pending == 0 {
				sess.done()
			}
		})
	}
}

func (sess *session) done() {
	sess.finished = true
	if sess.upgraded {
		sess.l.s.metrics.wsCount.Add(-1)
	}
	sess.subs = nil
	sess.l.s.sessionDone()
}

// call runs a service callback on the worker pool and resumes k on this
// session's loop, exactly once whatever the caller does: a nil url resumes
// at once with an ok result; a call refused by the URL's circuit breaker
// (service.Guarded) or by the pool (the service's wait queue is full)
// resumes at once as Unavailable without being sent or taking a pool slot;
// a Caller that panics resumes as Broken ("Unhandled exception."). Every
// session event and close step ends in some k, so a k that never ran would
// leave the session busy and the shutdown drain waiting forever.
func (sess *session) call(svc string, ep endpoint, url string, body []byte, k func(service.Result)) {
	sess.submitCall(svc, ep, url, body, false, k)
}

// callOwed is call for a callback owed to the service whatever the load:
// the client has already been answered, or the session is closing, so a
// refusal would silently drop it (SocketShark always makes these calls).
// The per-service wait queue's bound does not apply (see Pool.SubmitOwed).
func (sess *session) callOwed(svc string, ep endpoint, url string, body []byte, k func(service.Result)) {
	sess.submitCall(svc, ep, url, body, true, k)
}

func (sess *session) submitCall(svc string, ep endpoint, url string, body []byte, owed bool, k func(service.Result)) {
	if url == "" {
		k(service.Result{OK: true})
		return
	}
	s, l := sess.l.s, sess.l
	start := time.Now() // wall time for the latency metric, not logic
	refuse := func() {
		res := service.Result{Error: service.ServiceUnavailable, Unavailable: true}
		s.metrics.observeCall(svc, ep, &res, time.Since(start))
		k(res)
	}
	// The breaker applies to owed calls too: it reflects the service's
	// state (an open one would fail them after every try anyway), where
	// the wait queue's bound is mako's own.
	var tk service.Ticket
	g, guarded := s.caller.(service.Guarded)
	if guarded {
		var ok bool
		if tk, ok = g.Admit(url); !ok {
			// Not logged: the breaker logs its transitions, and an open
			// one refuses every call of a storm.
			refuse()
			return
		}
	}
	// A call counts until its continuation ran, so a continuation that
	// starts the next call never lets the count touch zero in between.
	s.calls.Add(1)
	fn := func() {
		res := callCaller(s, sess.id, g, tk, url, body)
		s.metrics.observeCall(svc, ep, &res, time.Since(start))
		l.execute(func() {
			defer s.calls.Add(-1)
			k(res)
		})
	}
	if owed {
		s.pool.SubmitOwed(svc, fn)
		return
	}
	if !s.pool.Submit(svc, fn) {
		tk.Release()
		s.log.Debug("service call refused: wait queue full", "session", sess.id, "service", svc, "limit", s.cfg.HTTP.MaxQueuedPerService)
		defer s.calls.Add(-1)
		refuse()
	}
}

// callCaller runs the Caller on a pool worker (through g with tk when the
// Caller is Guarded); a panic there becomes a Broken result instead of a
// continuation that never runs. The session id rides in ctx to the
// caller's own log lines.
func callCaller(s *Server, id uint32, g service.Guarded, tk service.Ticket, url string, body []byte) (res service.Result) {
	defer func() {
		if v := recover(); v != nil {
			tk.Release()
			s.log.Error("service caller panicked", "session", id, "panic", v, "stack", string(debug.Stack()))
			res = service.Result{Broken: true}
		}
	}()
	ctx := logx.WithSession(context.Background(), id)
	if g != nil {
		return g.CallTicket(ctx, tk, url, body)
	}
	return s.caller.Call(ctx, url, body)
}

// callEvent is call for a step of a client event: when the session is gone
// by the time the result arrives, the event just ends (its close steps
// follow) instead of resuming k.
func (sess *session) callEvent(svc string, ep endpoint, url string, body []byte, k func(service.Result)) {
	sess.call(svc, ep, url, body, func(res service.Result) {
		if sess.gone {
			sess.finish()
			return
		}
		k(res)
	})
}

// reply encodes r into a text frame and writes it.
func (sess *session) reply(r *protocol.Reply) {
	if sess.state != stOpen {
		return
	}
	// Counted before the write, so a client that has read the reply finds
	// it counted.
	st := "success"
	if r.Status == "error" {
		st = "error"
	}
	ev := r.Event
	if ev == "" {
		ev = "invalid"
	}
	sess.l.s.metrics.event(ev, st)
	sess.writeReply(r)
}

// writeReply encodes r into a text frame and writes it, without counting
// it; false when the session is no longer open.
func (sess *session) writeReply(r *protocol.Reply) bool {
	if sess.state != stOpen {
		return false
	}
	l := sess.l
	var frame []byte
	l.scratch, frame = encodeTextFrame(l.scratch[:0], func(b []byte) []byte { return protocol.AppendReply(b, r) })
	sess.writeText(frame)
	return true
}

// encodeTextFrame encodes a payload after room for the largest server
// header, then writes the header just in front of it: a frame is built in
// one buffer without copying the payload. buf is dst grown (keep it as
// scratch); frame is the part to write.
func encodeTextFrame(dst []byte, enc func([]byte) []byte) (buf, frame []byte) {
	const room = 10
	start := len(dst)
	dst = append(dst, make([]byte, room)...)
	dst = enc(dst)
	n := len(dst) - start - room
	at := start + room - ws.HeaderLen(n)
	ws.AppendFrameHeader(dst[at:at], ws.OpText, n)
	return dst, dst[at:]
}

// errorOf maps a failed callback to the client's error string.
func errorOf(res service.Result, def string) string {
	switch {
	case res.Unavailable:
		return protocol.ErrServiceUnavailable
	case res.Broken:
		return protocol.ErrUnhandled
	case res.Error != "":
		return res.Error
	}
	return def
}

// dataOf is a reply's data for the client: absent and null are left out.
func dataOf(res service.Result) json.RawMessage {
	if len(res.Data) == 0 || string(res.Data) == "null" {
		return nil
	}
	return res.Data
}
