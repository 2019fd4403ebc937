package server

import "golang.org/x/sys/unix"

// kernelUnsent is what the kernel holds for a socket and has not sent yet,
// because the peer's receive window (or the congestion window) has no room
// for it (SIOCOUTQNSD, tcp(7)). 0 when it cannot be read.
//
// It is the kernel's part of a client's backlog. SIOCOUTQ would add the
// bytes sent but not yet acknowledged, which the client's kernel has
// received already: acknowledgements lag (delayed ACK), so a client that
// reads everything at once still shows tens of KiB there, and counting them
// cut healthy subscribers.
func kernelUnsent(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
	if err != nil {
		return 0
	}
	return n
}
