//go:build unix

package server

import (
	"errors"

	"golang.org/x/sys/unix"
)

// listenerPort is the port the engine's listener is bound to: with port 0
// the kernel picks it, and gnet does not report it.
func (s *Server) listenerPort() (int, error) {
	fd, err := s.eng.Dup()
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port, nil
	case *unix.SockaddrInet6:
		return a.Port, nil
	}
	return 0, errors.New("listener is not a TCP socket")
}
