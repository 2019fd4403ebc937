package edge

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"mako/config"
	"mako/internal/e2e"
)

// Callbacks owed to a service after the client was answered (on_subscribe
// after the ok, on_unsubscribe of closing sessions) are never refused by a
// full per-service wait queue: a service sees one on_unsubscribe for each
// on_subscribe however many sessions close at once.
func TestOwedCallbacksUnderFullServiceQueue(t *testing.T) {
	svc := e2e.NewService(t)
	var cc callCounter
	gate := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(gate) }) })
	for _, p := range []string{"/on_subscribe", "/on_unsubscribe"} {
		svc.ReplyFunc(p, func(c e2e.Call) (int, string) {
			cc.add(c)
			if c.Path == "/on_unsubscribe" {
				<-gate
			}
			return 200, `{"status":"ok"}`
		})
	}
	go func() {
		for range svc.Calls {
		}
	}()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Timeout = 30
		c.HTTP.MaxConcurrencyPerService = 1
		c.HTTP.MaxQueuedPerService = 1
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, OnSubscribe: svc.URL("/on_subscribe"), OnUnsubscribe: svc.URL("/on_unsubscribe")}
	})
	const n = 10
	var conns []*rawConn
	for i := range n {
		rc := open(t, srv)
		rc.subscribe(fmt.Sprintf("demo.c%d", i))
		conns = append(conns, rc)
	}
	for _, rc := range conns {
		_ = rc.c.Close()
	}
	// The first on_unsubscribe holds the service's only slot; the other
	// nine wait past the queue's bound of one.
	e2eEventually(t, "first on_unsubscribe in flight", func() bool {
		for i := range n {
			if cc.get("/on_unsubscribe", fmt.Sprintf("demo.c%d", i)) > 0 {
				return true
			}
		}
		return false
	}, cc.String)
	once.Do(func() { close(gate) })
	e2eEventually(t, "sessions finish", func() bool { st, _ := srv.Stats(context.Background()); return st.Sessions == 0 && st.Calls == 0 }, cc.String)
	on, off := 0, 0
	for i := range n {
		on += cc.get("/on_subscribe", fmt.Sprintf("demo.c%d", i))
		off += cc.get("/on_unsubscribe", fmt.Sprintf("demo.c%d", i))
	}
	if on != n || off != n {
		t.Fatalf("on_subscribe %d, on_unsubscribe %d, want %d each: owed callbacks dropped by the full per-service queue", on, off, n)
	}
}
