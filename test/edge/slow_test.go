package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"mako/config"
)

// A subscriber that stops reading is cut once more than ws.max_outbound_bytes
// wait for it (slow consumer), and another subscriber of the same channel
// that keeps up receives every message, in order.
func TestSlowConsumer(t *testing.T) {
	const (
		total = 50000
		// window bounds how far the publisher may run ahead of the normal
		// subscriber, so that it can never have 64 KiB queued itself:
		// that is what "keeps up" means.
		window = 32
	)
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.WS.MaxOutboundBytes = 65536
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	})

	subscribe := func() *rawConn {
		rc := open(t, srv)
		rc.send(`{"event":"subscribe","subscription":"demo.feed"}`)
		if m := rc.nextJSON(); m["event"] != "subscribe" || m["status"] != "ok" {
			t.Fatalf("subscribe: %v", m)
		}
		return rc
	}
	slow := subscribe()
	normal := subscribe()

	pad := strings.Repeat("p", 1000)
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	stop := make(chan struct{})
	pubErr := make(chan error, 1)
	go func() {
		for i := range total {
			select {
			case <-credits:
			case <-stop:
				pubErr <- nil
				return
			}
			body := fmt.Sprintf(`{"subscription":"demo.feed","data":{"n":%d,"p":"%s"}}`, i, pad)
			if err := srv.Hub().Publish(context.Background(), "demo.feed", []byte(body)); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()
	defer close(stop)

	for want := range total {
		f := normal.next()
		if f.op != opText {
			t.Fatalf("normal subscriber, message %d: got %v", want, f)
		}
		if got := seq(f.payload); got != want {
			t.Fatalf("normal subscriber: got message %d, want %d (lost or reordered)", got, want)
		}
		credits <- struct{}{}
	}
	if err := <-pubErr; err != nil {
		t.Fatalf("publish: %v", err)
	}
	normal.ping("done")

	// The slow subscriber resumes reading: what the kernel buffered for it,
	// in order, then (perhaps a close frame 1008 and) the end of the stream,
	// long before the last message.
	got, how := 0, ""
	for {
		f, err := slow.readFrame()
		if err != nil {
			if isTimeout(err) {
				t.Fatalf("slow consumer still connected after %d messages", got)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
				t.Fatalf("slow consumer: %v", err)
			}
			how = err.Error()
			break
		}
		if f.op == opClose {
			if code, _ := f.close(); code != 1008 {
				t.Fatalf("slow consumer closed with %v, want 1008", f)
			}
			slow.expectEOF()
			how = f.String()
			break
		}
		if f.op != opText || seq(f.payload) != got {
			t.Fatalf("slow consumer: message %d is %v", got, f)
		}
		got++
	}
	if got >= total {
		t.Fatalf("slow consumer received all %d messages: it was never cut", got)
	}
	t.Logf("slow consumer cut after %d of %d messages (%s)", got, total, how)
}

// seq extracts data.n from a message frame without a full JSON decode.
func seq(p []byte) int {
	i := bytes.Index(p, []byte(`"n":`))
	if i < 0 {
		return -1
	}
	p = p[i+4:]
	j := bytes.IndexByte(p, ',')
	if j < 0 {
		return -1
	}
	n, err := strconv.Atoi(string(p[:j]))
	if err != nil {
		return -1
	}
	return n
}
