//go:build !unix

package server

import (
	"errors"
	"net"
)

func wakePair() (int, net.Conn, error) {
	return -1, nil, errors.New("no wake socket on this platform")
}

func wakeWrite(int) bool { return false }

func wakeClose(int) {}
