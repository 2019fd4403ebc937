package edge

import (
	"strings"
	"testing"

	"mako/internal/e2e"
)

// TestLargeMessageRoundTrip sends client messages just under the default
// 1 MiB limit: gnet buffers them across many reads before the frame parser
// sees the whole frame; each must still be answered, in order.
func TestLargeMessageRoundTrip(t *testing.T) {
	srv := startServer(t, nil)
	c := e2e.Dial(t, srv)
	big := strings.Repeat("x", 1<<20-64)
	for i := 0; i < 3; i++ {
		m := c.Roundtrip(`{"event":"ping","data":"` + big + `"}`)
		if m["event"] != "pong" || m["data"] != big[:128] {
			t.Fatalf("reply %d: event %v, data %.20v…", i, m["event"], m["data"])
		}
	}
}
