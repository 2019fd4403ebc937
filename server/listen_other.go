//go:build !unix

package server

import "errors"

func (s *Server) listenerPort() (int, error) {
	return 0, errors.New("ws.port 0 is not supported on this platform")
}
