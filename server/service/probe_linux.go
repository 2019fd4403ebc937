package service

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED of the kernel's include/net/tcp_states.h.
const tcpEstablished = 1

// peerClosed reports whether the kernel has already seen the service end the
// connection: a FIN moves the socket to CLOSE_WAIT, a RST to CLOSE, so any
// state but ESTABLISHED means a request written now could not be answered.
// It reads the state without touching the byte stream, so it also works
// under TLS, where a close_notify alert sits unread in front of the FIN.
// On any doubt (the state cannot be read) it says false: the request is
// then sent and a failure costs a counted try.
func peerClosed(raw syscall.RawConn) bool {
	var state uint8
	ok := false
	err := raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			state, ok = info.State, true
		}
	})
	return err == nil && ok && state != tcpEstablished
}
