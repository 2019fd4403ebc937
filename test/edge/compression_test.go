package edge

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
)

// TestCompressionFanout subscribes a permessage-deflate client and a plain
// one on the same loop: both must read the same large message (the loop
// shares one plain and one compressed encoding), and client frames the
// deflate client compresses must be understood.
func TestCompressionFanout(t *testing.T) {
	f := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["demo"] = &config.Service{RequireAuthentication: &f}
	}, oneLoop)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	dial := func(mode websocket.CompressionMode) *websocket.Conn {
		c, resp, err := websocket.Dial(ctx, "ws://"+srv.Addr(), &websocket.DialOptions{CompressionMode: mode, CompressionThreshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if (mode != websocket.CompressionDisabled) != strings.Contains(ext, "permessage-deflate") {
			t.Fatalf("mode %v: extensions %q", mode, ext)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	}
	zc, pc := dial(websocket.CompressionNoContextTakeover), dial(websocket.CompressionDisabled)
	// A subscribe padded past the compression threshold, so the client
	// really sends it compressed.
	sub := `{"event":"subscribe","subscription":"demo.z","pad":"` + strings.Repeat("p", 400) + `"}`
	for _, c := range []*websocket.Conn{zc, pc} {
		if err := c.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
			t.Fatal(err)
		}
		_, b, err := c.Read(ctx)
		if err != nil || !strings.Contains(string(b), `"status":"ok"`) {
			t.Fatalf("subscribe: %s %v", b, err)
		}
	}
	text := strings.Repeat("compressible ", 200)
	e2e.Publish(t, srv, `{"subscription":"demo.z","data":{"text":"`+text+`"}}`)
	for name, c := range map[string]*websocket.Conn{"deflate": zc, "plain": pc} {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var m struct {
			Data struct{ Text string } `json:"data"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Data.Text != text {
			t.Fatalf("%s: got %.80s… (%v)", name, b, err)
		}
	}
}

// TestCompressionDisabled: with ws.compression false the extension is not
// negotiated even when offered.
func TestCompressionDisabled(t *testing.T) {
	srv := startServer(t, func(c *cfgT) { c.WS.Compression = false })
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+srv.Addr(), &websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("extension negotiated while disabled: %q", ext)
	}
}
