package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"mako/config"
	"mako/internal/e2e"
	"mako/pubsub"
)

// rawSubscriber is a minimal WebSocket client that counts the frames it
// reads, so the benchmark measures the server, not a client library.
type rawSubscriber struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
	hdr  [8]byte
}

func dialRaw(tb testing.TB, addr, sub string) *rawSubscriber {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	s := &rawSubscriber{conn: c, r: r}
	s.send(tb, fmt.Sprintf(`{"event":"subscribe","subscription":%q}`, sub))
	if p := s.next(tb); !strings.Contains(string(p), `"ok"`) {
		tb.Fatalf("subscribe: %s", p)
	}
	return s
}

func (s *rawSubscriber) send(tb testing.TB, msg string) {
	// Masked with a zero key: valid, and the payload stays readable.
	b := []byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}
	if _, err := s.conn.Write(append(b, msg...)); err != nil {
		tb.Fatal(err)
	}
}

func (s *rawSubscriber) next(tb testing.TB) []byte {
	h := s.hdr[:2]
	if _, err := io.ReadFull(s.r, h); err != nil {
		tb.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		l := s.hdr[:2]
		_, _ = io.ReadFull(s.r, l)
		n = int(binary.BigEndian.Uint16(l))
	case 127:
		l := s.hdr[:8]
		_, _ = io.ReadFull(s.r, l)
		n = int(binary.BigEndian.Uint64(l))
	}
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	p := s.buf[:n]
	if _, err := io.ReadFull(s.r, p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkFanout publishes 100-byte messages to one channel with 100
// subscribers over real sockets; one op is one message delivered to all.
func BenchmarkFanout(b *testing.B) {
	cfg := e2e.Config()
	f := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &f}
	// The publisher runs unthrottled, so subscribers fall megabytes behind
	// in bursts; this measures throughput, not the slow-consumer cut.
	cfg.WS.MaxOutboundBytes = 64 << 20
	// The publisher below does not wait for deliveries, so the loop's
	// backlog grows with b.N; under the default bound the subscribers would
	// be cut as slow consumers. This measures throughput, not the bound.
	cfg.Limits.MaxLoopBacklog = 1 << 30
	srv := e2e.StartServer(b, cfg)
	const subs = 100
	clients := make([]*rawSubscriber, subs)
	for i := range clients {
		clients[i] = dialRaw(b, srv.Addr(), "demo.fan")
	}
	payload := []byte(`{"subscription":"demo.fan","data":"` + strings.Repeat("x", 100) + `"}`)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func(c *rawSubscriber) {
			defer wg.Done()
			for i := 0; i < b.N; i++ {
				c.next(b)
			}
		}(c)
	}
	for i := 0; i < b.N; i++ {
		err := srv.Hub().Publish(context.Background(), "demo.fan", payload)
		// A full fan-out queue refuses (the API's 503): the publisher
		// backs off and tries again, as a service would.
		for errors.Is(err, pubsub.ErrFanoutFull) {
			runtime.Gosched()
			err = srv.Hub().Publish(context.Background(), "demo.fan", payload)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliveries/s")
}
