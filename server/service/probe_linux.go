package service

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED of the kernel's include/net/tcp_states.h.
const tcpEstablished = 1

// tcpProbe reads a socket's TCP state. Its control func is bound once per
// connection, so a probe allocates nothing beyond what the kernel call
// returns.
type tcpProbe struct {
	raw     syscall.RawConn
	control func(fd uintptr)
	state   uint8
	ok      bool
}

func newTCPProbe(raw syscall.RawConn) *tcpProbe {
	p := &tcpProbe{raw: raw}
	p.control = func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		p.ok = err == nil
		if p.ok {
			p.state = info.State
		}
	}
	return p
}

// peerClosed reports whether the kernel has already seen the service end the
// connection: a FIN moves the socket to CLOSE_WAIT, a RST to CLOSE, so any
// state but ESTABLISHED means a request written now could not be answered.
// It reads the state without touching the byte stream, so it also works
// under TLS, where a close_notify alert sits unread in front of the FIN.
// On any doubt (the state cannot be read) it says false: the request is
// then sent and a failure costs a counted try.
func (p *tcpProbe) peerClosed() bool {
	p.ok = false
	if p.raw.Control(p.control) != nil {
		return false
	}
	return p.ok && p.state != tcpEstablished
}
