package service

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// rawServer is a loopback TCP (or TLS) server that counts the requests it
// read in full and the connections it accepted; serve decides what each
// connection gets.
type rawServer struct {
	ln       net.Listener
	requests atomic.Int32
	conns    atomic.Int32
}

func newRawServer(t *testing.T, tlsCfg *tls.Config, serve func(s *rawServer, n int, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	done := make(chan struct{})
	var open []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open = append(open, c)
			n := int(s.conns.Add(1))
			var conn net.Conn = c
			if tlsCfg != nil {
				conn = tls.Server(c, tlsCfg)
			}
			go serve(s, n, conn, bufio.NewReader(conn))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range open {
			c.Close()
		}
	})
	return s
}

// read reads one whole request (headers and body) and counts it.
func (s *rawServer) read(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return false
	}
	s.requests.Add(1)
	return true
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}"

// reset makes the next Close send a RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// A service that reads the request and drops the connection without an
// answer may have acted on it: the POST is sent exactly once per try, never
// again behind the caller's back (issue 6, item 5). Before the fix tries: 1
// gave 2 POSTs and tries: 3 gave 6.
func TestCallNoHiddenResend(t *testing.T) {
	for _, mode := range []string{"close", "reset"} {
		for _, tries := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/tries=%d", mode, tries), func(t *testing.T) {
				srv := newRawServer(t, nil, func(s *rawServer, _ int, c net.Conn, br *bufio.Reader) {
					defer c.Close()
					if s.read(br) && mode == "reset" {
						reset(c)
					}
				})
				c, rec := newCaller(t, Options{Tries: tries})
				r := c.Call(context.Background(), "http://"+srv.ln.Addr().String()+"/message", []byte(`{"data":1}`))
				if !r.Unavailable {
					t.Fatalf("result %+v, want unavailable", r)
				}
				if got := srv.requests.Load(); got != int32(tries) {
					t.Errorf("tries %d: the service received %d POSTs, want %d", tries, got, tries)
				}
				if got := len(rec.got()); got != tries-1 {
					t.Errorf("tries %d: %d waits, want %d", tries, got, tries-1)
				}
			})
		}
	}
}

// A pooled keep-alive connection that the service closed while it sat idle
// is found dead before any byte of the next request is written, so the
// request goes out once on a fresh connection and costs no try: with
// tries: 1 the call still succeeds. The service ends the idle connection
// with a FIN, a RST, or (over TLS) a close_notify alert then a FIN.
func TestCallStalePooledConnection(t *testing.T) {
	var tlsCfg *tls.Config
	var caFile string
	{
		ts := httptest.NewUnstartedServer(http.NotFoundHandler())
		ts.StartTLS()
		tlsCfg = ts.TLS.Clone()
		caFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		ts.Close()
	}
	for _, mode := range []string{"fin", "rst", "tls"} {
		t.Run(mode, func(t *testing.T) {
			var cfg *tls.Config
			scheme, o := "http", Options{Tries: 1}
			if mode == "tls" {
				cfg, scheme, o.CAFile = tlsCfg, "https", caFile
			}
			closeIdle := make(chan struct{})
			closed := make(chan struct{})
			srv := newRawServer(t, cfg, func(s *rawServer, n int, c net.Conn, br *bufio.Reader) {
				defer c.Close()
				for s.read(br) {
					if _, err := io.WriteString(c, okResponse); err != nil {
						return
					}
					if n == 1 {
						// The answer is out and the client pools the
						// connection; end it once the test says so.
						<-closeIdle
						if mode == "rst" {
							reset(c)
						}
						c.Close()
						close(closed)
						return
					}
				}
			})
			c, rec := newCaller(t, o)
			url := scheme + "://" + srv.ln.Addr().String() + "/heartbeat"
			if r := c.Call(context.Background(), url, []byte(`{}`)); !r.OK {
				t.Fatalf("first call: %+v", r)
			}
			close(closeIdle)
			// On loopback the FIN or RST is in the client's socket once
			// the server's close has returned.
			<-closed
			if r := c.Call(context.Background(), url, []byte(`{}`)); !r.OK {
				t.Fatalf("call on the stale connection: %+v", r)
			}
			if got, conns := srv.requests.Load(), srv.conns.Load(); got != 2 || conns != 2 {
				t.Errorf("%d requests on %d connections, want 2 on 2", got, conns)
			}
			if got := rec.got(); len(got) != 0 {
				t.Errorf("slept %v", got)
			}
		})
	}
}
