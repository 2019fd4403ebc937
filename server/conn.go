package server

import (
	"time"

	"github.com/panjf2000/gnet/v2"

	"mako/protocol"
	"mako/server/ws"
)

// maxUpgradeSize caps the HTTP upgrade request head (431 beyond).
const maxUpgradeSize = 8 << 10

type connState uint8

const (
	stHandshake connState = iota
	stOpen
	stClosing // close frame sent, waiting for gnet to close the socket
	stClosed
)

// handler adapts gnet's callbacks to sessions. Every method runs on the
// connection's event loop.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.eng = eng
	close(h.s.booted)
	return gnet.None
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if w, ok := c.Context().(*waker); ok {
		w.onOpen()
		return nil, gnet.None
	}
	s := h.s
	l := s.loopFor(c.EventLoop())
	sess := newSession(l, c)
	c.SetContext(sess)
	l.sessions[sess] = struct{}{}
	s.sessions.Add(1)
	s.metrics.connTotal.Add(1)
	s.metrics.connCount.Add(1)
	l.sched.set(&sess.timer, s.clock.Mono()+s.cfg.WS.HandshakeTimeout.Duration())
	if !sess.proxyPending {
		sess.admitIP(peerAddr(c))
	}
	return nil, gnet.None
}

func (h *handler) OnClose(c gnet.Conn, _ error) gnet.Action {
	switch x := c.Context().(type) {
	case *session:
		x.onClosed()
	case *waker:
		x.onClose()
	}
	return gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	sess, ok := c.Context().(*session)
	if !ok {
		if w, ok := c.Context().(*waker); ok {
			w.onTraffic(c)
			return gnet.None
		}
		return gnet.Close
	}
	sess.onTraffic()
	return gnet.None
}

// peekWindow bounds the bytes looked at per parse step. Peek copies when
// gnet's ring buffer wraps, so parsing a few events out of megabytes left
// buffered by a pause must not copy the megabytes each time.
const peekWindow = 16 << 10

// onTraffic parses what is buffered, in place, and discards what it used.
//
// Parsing pauses while the session's queue is full (see queueFull): the
// bytes stay in gnet's inbound buffer until the queue drains and resume
// parses them. gnet keeps reading a readable socket into that elastic
// buffer regardless (it has no way to stop reading one connection), so TCP
// pushes back only as far as gnet's read loop lets it; what bounds a
// client's unread bytes is checkInbound's cap.
func (sess *session) onTraffic() {
	c := sess.c
	switch {
	case sess.state == stClosing || sess.state == stClosed:
		// Nothing more is read from a closing connection: drop what
		// arrives so it holds no memory.
		sess.discard(c.InboundBuffered())
		return
	case sess.paused:
		sess.checkInbound()
		return
	}
	for sess.state == stHandshake || sess.state == stOpen {
		avail := c.InboundBuffered()
		// A large frame arrives over many reads: wait until it is all
		// there rather than look at it again on every read (text is read
		// as it arrives instead, see parse).
		if avail == 0 || sess.need > avail {
			break
		}
		n := min(avail, max(peekWindow, sess.need))
		buf, _ := c.Peek(n)
		used := sess.parse(buf, avail)
		sess.discard(used)
		if sess.paused || n == avail || used == 0 && sess.need <= n {
			break
		}
	}
	if sess.state == stClosing {
		sess.discard(c.InboundBuffered())
		return
	}
	sess.checkInbound()
}

// parse consumes the upgrade request, then frames, from buf, the first
// bytes of the avail buffered; it returns the bytes used and sets need when
// it wants more of a frame than buf holds.
//
// Text frames are taken as they arrive (ws.Decoder.Next streams them) so
// that invalid UTF-8 closes the connection (1007) as soon as it arrives,
// not once a whole message of up to max_message_size has been buffered.
// Other frames are decoded once whole, in place.
func (sess *session) parse(buf []byte, avail int) int {
	used := 0
	sess.need = 0
	if sess.state == stHandshake {
		if sess.proxyPending {
			// Before the upgrade, and only there: the header names the
			// client address the per-address limits go by.
			used = sess.readProxy(buf)
			if sess.proxyPending || sess.state != stHandshake {
				return used
			}
		}
		used += sess.handshake(buf[used:])
		if sess.state != stOpen {
			return used
		}
	}
	max := sess.l.s.cfg.WS.MaxMessageSize
	for sess.state == stOpen && used < len(buf) {
		if sess.queueFull() {
			sess.pause()
			break
		}
		if len(buf) < avail {
			// A frame that runs past buf is viewed whole when it has all
			// arrived (decoded in place, not copied); one that has not is
			// waited for, unless Next can take it in pieces.
			if min, whole := sess.dec.Need(buf[used:]); whole > len(buf)-used && (whole <= avail-used || min == whole) {
				sess.need = whole
				break
			}
		}
		f, n, ok, cerr := sess.dec.Next(buf[used:], max)
		if cerr != nil {
			sess.l.s.log.Debug("closing connection: protocol error", "session", sess.id, "code", cerr.Code, "cause", cerr.Reason)
			sess.closeWith(cerr.Code, cerr.Reason)
			return len(buf)
		}
		if n == 0 {
			sess.need, _ = sess.dec.Need(buf[used:])
			break
		}
		if ok {
			// f.Payload aliases buf: it must be consumed before Discard.
			sess.onFrame(&f)
		}
		used += n
	}
	return used
}

// checkInbound cuts a client whose unparsed bytes exceed the inbound cap:
// one that keeps sending while mako has stopped parsing for it.
func (sess *session) checkInbound() {
	if sess.gone || sess.state == stClosing {
		return
	}
	if n := sess.c.InboundBuffered(); n > sess.l.s.inboundCap {
		sess.cut(cutInbound, n)
	}
}

// discard drops n bytes from the head of the inbound buffer. gnet's Discard
// treats n <= 0 as "everything", which would lose a partial request or
// frame, so nothing is discarded when nothing was used; nor once a failed
// write has closed (and released) the conn.
func (sess *session) discard(n int) {
	if n > 0 && !sess.gone {
		_, _ = sess.c.Discard(n)
	}
}

// handshake consumes the upgrade request once it is complete.
func (sess *session) handshake(buf []byte) int {
	s := sess.l.s
	req, n, herr := ws.ParseUpgrade(buf, maxUpgradeSize)
	if herr == nil && n == 0 {
		return 0
	}
	if herr == nil {
		herr = s.admit(req)
	}
	if herr == nil {
		herr = sess.ipRefusal()
	}
	if herr != nil {
		s.log.Debug("rejecting upgrade", "session", sess.id, "status", herr.Status, "cause", herr.Reason)
		_, _ = sess.c.Write(ws.AppendHTTPError(nil, herr))
		sess.closeConn()
		return len(buf)
	}
	if !s.cfg.WS.Compression {
		req.Deflate = false
	}
	sess.state = stOpen
	// A WebSocket session from here until its close steps are done, as
	// SocketShark counts connections; counted before the 101 leaves.
	sess.upgraded = true
	s.metrics.wsTotal.Add(1)
	s.metrics.wsCount.Add(1)
	// Read before the 101 leaves: a client (or a test advancing a fake
	// clock) that has seen it must find the interval counted from earlier.
	opened := s.clock.Mono()
	_, _ = sess.c.Write(ws.AppendAcceptDeflate(sess.l.scratch[:0], req))
	if sess.gone {
		return len(buf)
	}
	sess.dec.Deflate = req.Deflate
	sess.schedulePing(opened)
	return n
}

// admit applies mako's own admission rules to a well-formed upgrade.
func (s *Server) admit(req *ws.Request) *ws.HTTPError {
	if s.draining.Load() || !s.hub.Broker().Ready() {
		return &ws.HTTPError{Status: 503, Reason: "server unavailable"}
	}
	if max := s.cfg.Limits.MaxConnections; max > 0 && s.metrics.connCount.Load() > int64(max) {
		return &ws.HTTPError{Status: 503, Reason: "connection limit reached"}
	}
	if len(s.cfg.WS.AllowedOrigins) > 0 {
		for _, o := range s.cfg.WS.AllowedOrigins {
			if o == req.Origin {
				return nil
			}
		}
		return &ws.HTTPError{Status: 403, Reason: "origin not allowed"}
	}
	return nil
}

func (sess *session) onFrame(f *ws.Frame) {
	switch f.Kind {
	case ws.KindMessage:
		// SocketShark parses binary frames as JSON too, from bytes
		// (json.loads picks UTF-8/16/32 from them).
		var ev protocol.ClientEvent
		var valid bool
		if f.Op == ws.OpBinary {
			ev, valid = protocol.DecodeClientEventBinary(f.Payload)
		} else {
			ev, valid = protocol.DecodeClientEvent(f.Payload)
		}
		sess.enqueue(queued{ev: ev, valid: valid})
	case ws.KindPing:
		sess.writeFrame(ws.OpPong, f.Payload)
	case ws.KindPong:
		if sess.awaitingPong {
			sess.awaitingPong = false
			sess.schedulePing(sess.mark)
		}
	case ws.KindClose:
		// Echo the close handshake after any pending output, then let gnet
		// flush and close.
		if sess.flushPending() {
			_, _ = sess.c.Write(ws.AppendClose(sess.l.scratch[:0], f.CloseCode, ""))
		}
		sess.closeConn()
	}
}

// flushPending writes output still waiting for the loop's flush, at once.
// It reports whether the conn is still usable (a failed write closes it).
func (sess *session) flushPending() bool {
	if out := sess.out; out != nil {
		sess.out, sess.outOwned = nil, false
		_, _ = sess.c.Write(out)
	}
	return !sess.gone
}

// schedulePing arms the ping timer one interval after from (a Clock.Mono
// reading).
func (sess *session) schedulePing(from time.Duration) {
	iv := sess.l.s.cfg.WS.Ping.Interval.Duration()
	if iv <= 0 {
		sess.l.sched.stop(&sess.timer)
		return
	}
	sess.l.sched.set(&sess.timer, from+iv)
}

// onTimer is the connection timer: handshake deadline, ping, pong deadline.
func (sess *session) onTimer() {
	s := sess.l.s
	switch {
	case sess.state == stHandshake:
		s.log.Debug("closing connection: handshake timeout", "session", sess.id)
		sess.closeConn()
	case sess.state == stClosing:
		sess.closePoll()
	case sess.state != stOpen:
	case sess.awaitingPong && sess.paused:
		// The pong may be among the bytes not parsed yet: reading is
		// paused for the client's own queued events, no sign of a dead
		// peer. The deadline moves on until reading resumes.
		sess.l.sched.set(&sess.timer, s.clock.Mono()+s.cfg.WS.Ping.Timeout.Duration())
	case sess.awaitingPong:
		s.log.Debug("closing connection: no pong", "session", sess.id, "timeout", s.cfg.WS.Ping.Timeout)
		sess.closeWith(ws.ClosePolicyViolation, "ping timeout")
	default:
		now := s.clock.Mono()
		sess.awaitingPong = true
		sess.mark = now
		sess.writeFrame(ws.OpPing, nil)
		if !sess.gone {
			sess.l.sched.set(&sess.timer, now+s.cfg.WS.Ping.Timeout.Duration())
		}
	}
}

// writeFrame writes one server frame; the loop's scratch is safe to reuse
// because gnet copies what the socket does not take at once.
func (sess *session) writeFrame(op ws.Op, payload []byte) {
	if sess.state != stOpen {
		return
	}
	sess.l.scratch = ws.AppendFrame(sess.l.scratch[:0], op, payload)
	sess.write(sess.l.scratch)
}

// write sends a complete frame and enforces the outbound cap.
func (sess *session) write(frame []byte) {
	if sess.state != stOpen {
		return
	}
	if sess.l.delivering || sess.out != nil {
		// Behind frames still coalescing: keep the session's order.
		sess.l.queueOut(sess, frame, false)
		return
	}
	sess.send(frame)
}

// writeShared queues a fan-out frame: it is immutable until the flush, so
// the session may hold it by reference.
func (sess *session) writeShared(frame []byte) {
	if sess.state != stOpen {
		return
	}
	sess.l.queueOut(sess, frame, true)
}

// kernelCheckEvery is how many bytes may be written to a socket whose
// user-space buffer stays empty before the kernel's unsent bytes are read
// again: often enough to catch a client that falls behind within the
// kernel's buffer, rarely enough that a healthy client costs about one
// ioctl per 64 KiB.
const kernelCheckEvery = 64 << 10

// send writes b to the socket now, unless the client is a slow consumer.
//
// The rule (ws.max_outbound_bytes): before each write, what is still
// waiting for the client from earlier writes, in gnet's buffer and unsent in
// the kernel (kernelUnsent), is compared with the cap; more than the cap cuts the
// session. The bytes being written are not counted, so a single frame
// larger than the cap reaches a client that is reading; a client that has
// not drained the earlier ones below the cap by the next write is cut. A
// session thus holds at most the cap plus one write (a frame, or a
// coalesced batch of at most maxSessionOut), plus kernelCheckEvery while
// the kernel is not re-read.
func (sess *session) send(b []byte) {
	if sess.state != stOpen {
		return
	}
	if n := sess.backlog(); n > sess.l.s.cfg.WS.MaxOutboundBytes {
		sess.cut(cutSlowConsumer, n)
		return
	}
	_, _ = sess.c.Write(b)
	sess.unchecked += int32(min(len(b), kernelCheckEvery))
}

// backlog is what earlier writes left waiting for the client: gnet's
// outbound buffer, plus what the kernel has not sent, when that is read (always
// once gnet holds anything, which means the kernel's buffer is full, and
// every kernelCheckEvery bytes otherwise).
func (sess *session) backlog() int {
	n := sess.c.OutboundBuffered()
	switch {
	case n == 0 && sess.unchecked < kernelCheckEvery:
		return 0
	case n > sess.l.s.cfg.WS.MaxOutboundBytes:
		return n // over the cap already: no need to ask the kernel
	}
	sess.unchecked = 0
	return n + kernelUnsent(sess.c.Fd())
}

// writeText writes a text frame built by encodeTextFrame, compressed for a
// permessage-deflate session when that pays.
func (sess *session) writeText(frame []byte) {
	if sess.dec.Deflate {
		payload := frame[len(frame)-textPayloadLen(frame):]
		if ws.ShouldCompress(len(payload)) {
			l := sess.l
			l.zscratch = ws.AppendDeflateFrame(l.zscratch[:0], ws.OpText, payload)
			frame = l.zscratch
		}
	}
	sess.write(frame)
}

// textPayloadLen reads the payload length of a server frame header.
func textPayloadLen(frame []byte) int {
	switch n := int(frame[1] & 0x7f); n {
	case 126:
		return int(frame[2])<<8 | int(frame[3])
	case 127:
		return len(frame) - 10
	default:
		return n
	}
}

// closePollEvery is how often a closing connection whose output has not
// all left yet is looked at again.
const closePollEvery = 20 * time.Millisecond

// closeWith sends a close frame behind whatever is queued and closes the
// socket once it has left (see closeConn); the close steps run from
// onClosed.
func (sess *session) closeWith(code int, reason string) {
	if sess.state == stClosed || sess.state == stClosing {
		return
	}
	if sess.state == stOpen && sess.flushPending() {
		_, _ = sess.c.Write(ws.AppendClose(sess.l.scratch[:0], code, reason))
	}
	sess.closeConn()
}

// closeConn closes the socket gracefully: nothing more is read or written,
// and the socket is closed once everything written has left gnet's buffer
// and been sent by the kernel, so the client receives it all, the close
// frame last. gnet's own Close would drop whatever the socket does not take
// at once. A client that does not read within ws.close_timeout is aborted.
//
// A failed write inside gnet closes the conn synchronously (OnClose runs
// within Write), and the fd may then belong to a new connection: never
// touch the conn again once the session is gone.
func (sess *session) closeConn() {
	if sess.gone || sess.state == stClosing {
		return
	}
	sess.state = stClosing
	sess.mark = sess.l.s.clock.Mono() + sess.l.s.cfg.WS.CloseTimeout.Duration()
	sess.closePoll()
}

// closePoll closes the socket if its output has all left, aborts it past
// the close deadline, and otherwise looks again in closePollEvery.
func (sess *session) closePoll() {
	if sess.gone || sess.closeCalled {
		return
	}
	l := sess.l
	if sess.c.OutboundBuffered() == 0 && kernelUnsent(sess.c.Fd()) == 0 {
		sess.closeCalled = true
		l.sched.stop(&sess.timer)
		_ = sess.c.Close()
		return
	}
	now := l.s.clock.Mono()
	if now >= sess.mark {
		l.s.metrics.closeTimeouts.Add(1)
		l.s.log.Info("close timed out: aborting the connection", "session", sess.id, "unsent", sess.c.OutboundBuffered()+kernelUnsent(sess.c.Fd()),
			"close_timeout", float64(l.s.cfg.WS.CloseTimeout))
		sess.abort()
		return
	}
	l.sched.set(&sess.timer, min(now+closePollEvery, sess.mark))
}

// cutCause is why a connection is cut; cutCauses are the metric labels.
type cutCause int

const (
	cutSlowConsumer cutCause = iota
	cutInbound
)

var cutCauses = [...]string{"slow_consumer", "inbound"}

// cut ends a connection that broke a limit by aborting it (RST): its
// user-space and kernel buffers are freed at once, instead of the kernel
// retrying for minutes a backlog the client does not read. The 1008 close
// frame is written first when nothing waits ahead of it, so a client with
// room to read gets it before the reset (Linux keeps received data
// readable after a RST); behind a backlog it is lost with the backlog.
func (sess *session) cut(cause cutCause, bytes int) {
	s := sess.l.s
	s.metrics.cuts[cause].Add(1)
	reason := "slow consumer"
	switch cause {
	case cutSlowConsumer:
		s.log.Warn("cutting connection: slow consumer", "session", sess.id, "waiting", bytes, "max_outbound_bytes", s.cfg.WS.MaxOutboundBytes)
	case cutInbound:
		reason = "too much unread input"
		s.log.Warn("cutting connection: too much unread input", "session", sess.id, "unread", bytes, "max_inbound_bytes", s.inboundCap)
	}
	if sess.c.OutboundBuffered() == 0 {
		_, _ = sess.c.Write(ws.AppendClose(sess.l.scratch[:0], ws.ClosePolicyViolation, reason))
	}
	sess.abort()
}

// abort closes the socket with SO_LINGER 0: the kernel drops what it holds
// and sends a RST.
func (sess *session) abort() {
	if sess.gone || sess.closeCalled {
		return
	}
	sess.state = stClosing
	sess.closeCalled = true
	sess.l.sched.stop(&sess.timer)
	sess.discard(sess.c.InboundBuffered())
	_ = sess.c.SetLinger(0)
	_ = sess.c.Close()
}
