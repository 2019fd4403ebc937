package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// wsConn is a deliberately minimal WebSocket client: the load generator
// holds thousands of these, so it keeps one small bufio.Reader, one reusable
// payload buffer and no goroutines of its own. Only the goroutine that owns
// a wsConn reads from or writes to it.
type wsConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte // payload of the last frame; reused
	wb  []byte // outgoing frame; reused
}

// readBufSize keeps per-connection memory low; frames larger than it are
// read straight into buf.
const readBufSize = 512

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dialWS connects from local (nil = any) and performs the upgrade. The
// deadline bounds the TCP connect and the handshake together.
func dialWS(u *url.URL, local *net.TCPAddr, deadline time.Time) (*wsConn, error) {
	d := net.Dialer{Deadline: deadline}
	if local != nil {
		d.LocalAddr = local
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	c, err := d.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(deadline)
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, readBufSize)
	status, err := r.ReadSlice('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", strings.TrimSpace(string(status)))
	}
	want := acceptKey(key)
	gotAccept := false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Sec-WebSocket-Accept") &&
			string(bytes.TrimSpace(val)) == want {
			gotAccept = true
		}
	}
	if !gotAccept {
		c.Close()
		return nil, errors.New("handshake: bad or missing Sec-WebSocket-Accept")
	}
	return &wsConn{c: c, r: r}, nil
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// writeFrame sends one masked frame (clients must mask, RFC 6455 5.3).
func (w *wsConn) writeFrame(op byte, payload []byte) error {
	b := w.wb[:0]
	b = append(b, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range b[start:] {
		b[start+i] ^= mask[i&3]
	}
	w.wb = b
	_, err := w.c.Write(b)
	return err
}

// closeErr carries the close code the server sent, reported per run.
type closeErr struct{ code int }

func (e *closeErr) Error() string { return fmt.Sprintf("closed by server (%d)", e.code) }

// readMessage returns the next text or binary message. Pings are answered
// here; the returned slice is valid until the next call.
func (w *wsConn) readMessage() ([]byte, error) {
	w.buf = w.buf[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.r, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0F
		n := uint64(h[1] & 0x7F)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(w.r, e[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(w.r, e[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if h[1]&0x80 != 0 {
			return nil, errors.New("server sent a masked frame")
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		if op >= opClose {
			var ctl [125]byte
			if n > 125 {
				return nil, errors.New("oversized control frame")
			}
			p := ctl[:n]
			if _, err := io.ReadFull(w.r, p); err != nil {
				return nil, err
			}
			switch op {
			case opPing:
				if err := w.writeFrame(opPong, p); err != nil {
					return nil, err
				}
			case opClose:
				code := 1005
				if len(p) >= 2 {
					code = int(binary.BigEndian.Uint16(p))
				}
				_ = w.writeFrame(opClose, p[:min(len(p), 2)])
				return nil, &closeErr{code: code}
			}
			continue
		}
		start := len(w.buf)
		w.buf = slices.Grow(w.buf, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.r, w.buf[start:]); err != nil {
			return nil, err
		}
		if fin {
			return w.buf, nil
		}
	}
}

func (w *wsConn) Close() error { return w.c.Close() }
