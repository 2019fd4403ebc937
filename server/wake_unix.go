//go:build unix

package server

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// wakePair makes a connected pair of unix stream sockets: mako's end as a
// non-blocking fd, the loop's end as the *net.UnixConn gnet's Enroll dups.
func wakePair() (int, net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, nil, os.NewSyscallError("socketpair", err)
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return -1, nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fds[1]), "mako-wake")
	c, err := net.FileConn(f) // a dup: f's fd is closed either way
	_ = f.Close()
	if err != nil {
		unix.Close(fds[0])
		return -1, nil, err
	}
	return fds[0], c, nil
}

var wakeByte = []byte{1}

// wakeWrite writes the wake byte. A full buffer (EAGAIN) means bytes are
// unread, so the loop will run a drain anyway.
func wakeWrite(fd int) bool {
	_, err := unix.Write(fd, wakeByte)
	return err == nil || err == unix.EAGAIN
}

func wakeClose(fd int) { _ = unix.Close(fd) }
