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
	s := h.s
	l := s.loopFor(c.EventLoop())
	sess := newSession(l, c)
	c.SetContext(sess)
	l.sessions[sess] = struct{}{}
	s.sessions.Add(1)
	s.metrics.connTotal.Add(1)
	s.metrics.connCount.Add(1)
	l.sched.set(&sess.timer, s.clock.Now().Add(s.cfg.WS.HandshakeTimeout.Duration()))
	return nil, gnet.None
}

func (h *handler) OnClose(c gnet.Conn, _ error) gnet.Action {
	if sess, ok := c.Context().(*session); ok {
		sess.onClosed()
	}
	return gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	sess, ok := c.Context().(*session)
	if !ok {
		return gnet.Close
	}
	sess.onTraffic()
	return gnet.None
}

// onTraffic parses whatever is buffered, in place, and discards what it used.
func (sess *session) onTraffic() {
	c := sess.c
	// A large frame arrives over many reads; Peek may copy everything
	// buffered each time, so wait until the whole frame is there.
	if sess.need > 0 && sess.state == stOpen && c.InboundBuffered() < sess.need {
		return
	}
	sess.need = 0
	buf, _ := c.Peek(-1)
	used := 0
	if sess.state == stHandshake {
		used = sess.handshake(buf)
		if sess.state != stOpen {
			sess.discard(used)
			return
		}
	}
	max := sess.l.s.cfg.WS.MaxMessageSize
	for sess.state == stOpen && used < len(buf) {
		f, n, ok, cerr := sess.dec.Next(buf[used:], max)
		if cerr != nil {
			sess.l.s.log.Debug("closing connection: protocol error", "code", cerr.Code, "cause", cerr.Reason)
			used = len(buf)
			sess.closeWith(cerr.Code, cerr.Reason)
			break
		}
		if n == 0 {
			sess.need = ws.FrameLen(buf[used:])
			break
		}
		if ok {
			// f.Payload aliases buf: it must be consumed before Discard.
			sess.onFrame(&f)
		}
		used += n
	}
	if sess.state != stOpen {
		used = len(buf)
	}
	sess.discard(used)
}

// discard drops the n bytes parsed from the inbound buffer. gnet's Discard
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
	if herr != nil {
		s.log.Debug("rejecting upgrade", "status", herr.Status, "cause", herr.Reason)
		_, _ = sess.c.Write(ws.AppendHTTPError(nil, herr))
		sess.closeConn()
		return len(buf)
	}
	if !s.cfg.WS.Compression {
		req.Deflate = false
	}
	sess.state = stOpen
	// Read before the 101 leaves: a client that has read it may act on the
	// clock at once (a test advancing a fake clock), and the first ping is
	// due one interval after the open, not after that.
	opened := s.clock.Now()
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
		// SocketShark parses binary frames as JSON too.
		ev, valid := protocol.DecodeClientEvent(f.Payload)
		sess.enqueue(queued{ev: ev, valid: valid})
	case ws.KindPing:
		sess.writeFrame(ws.OpPong, f.Payload)
	case ws.KindPong:
		if sess.awaitingPong {
			sess.awaitingPong = false
			sess.schedulePing(sess.pingSentAt)
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

// schedulePing arms the ping timer one interval after from.
func (sess *session) schedulePing(from time.Time) {
	iv := sess.l.s.cfg.WS.Ping.Interval.Duration()
	if iv <= 0 {
		sess.l.sched.stop(&sess.timer)
		return
	}
	sess.l.sched.set(&sess.timer, from.Add(iv))
}

// onTimer is the connection timer: handshake deadline, ping, pong deadline.
func (sess *session) onTimer() {
	s := sess.l.s
	switch {
	case sess.state == stHandshake:
		s.log.Debug("closing connection: handshake timeout")
		sess.closeConn()
	case sess.state != stOpen:
	case sess.awaitingPong:
		s.log.Debug("closing connection: no pong", "timeout", s.cfg.WS.Ping.Timeout)
		sess.closeWith(ws.ClosePolicyViolation, "ping timeout")
	default:
		now := s.clock.Now()
		sess.awaitingPong = true
		sess.pingSentAt = now
		sess.writeFrame(ws.OpPing, nil)
		if !sess.gone {
			sess.l.sched.set(&sess.timer, now.Add(s.cfg.WS.Ping.Timeout.Duration()))
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

// send writes to the socket now and enforces the outbound cap.
func (sess *session) send(b []byte) {
	if sess.state != stOpen {
		return
	}
	_, _ = sess.c.Write(b)
	if sess.c.OutboundBuffered() > sess.l.s.cfg.WS.MaxOutboundBytes {
		sess.l.s.log.Warn("closing connection: slow consumer", "buffered", sess.c.OutboundBuffered())
		sess.closeWith(ws.ClosePolicyViolation, "slow consumer")
	}
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

// closeWith sends a close frame and closes the socket; the close steps run
// from onClosed.
func (sess *session) closeWith(code int, reason string) {
	if sess.state == stClosed || sess.state == stClosing {
		return
	}
	if sess.state == stOpen && sess.flushPending() {
		_, _ = sess.c.Write(ws.AppendClose(sess.l.scratch[:0], code, reason))
	}
	sess.closeConn()
}

// closeConn closes the socket. A failed write inside gnet closes it
// synchronously (OnClose runs within Write), and the fd may already belong
// to a new connection: never touch the conn again once the session is gone.
func (sess *session) closeConn() {
	if sess.gone {
		return
	}
	sess.state = stClosing
	_ = sess.c.Close()
}
