package edge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
)

// Shutdown closes every connection with 1001, runs the close steps (both
// unsubscribe callbacks of every subscription) and returns nil when done.
func TestShutdownClosesWith1001(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["demo"] = &config.Service{
			RequireAuthentication: &no,
			BeforeUnsubscribe:     svc.URL("/before_unsubscribe"),
			OnUnsubscribe:         svc.URL("/on_unsubscribe"),
		}
	})
	var clients []*e2e.Client
	for i := range 3 {
		c := e2e.Dial(t, srv)
		name := fmt.Sprintf("demo.t%d", i)
		if m := c.Roundtrip(`{"event":"subscribe","subscription":"` + name + `"}`); m["status"] != "ok" {
			t.Fatalf("subscribe %s: %v", name, m)
		}
		clients = append(clients, c)
	}
	raw := open(t, srv) // and one without subscriptions, on a raw socket
	raw.ping("x")
	svc.NoCall(t)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown has returned: every close step has run.
	calls := map[string][]string{}
	for range 6 {
		c := svc.Next(t)
		sub, _ := c.Body["subscription"].(string)
		calls[sub] = append(calls[sub], c.Path)
	}
	svc.NoCall(t)
	for i := range 3 {
		name := fmt.Sprintf("demo.t%d", i)
		if got := calls[name]; len(got) != 2 || got[0] != "/before_unsubscribe" || got[1] != "/on_unsubscribe" {
			t.Fatalf("close steps of %s: %v, want before_unsubscribe then on_unsubscribe", name, got)
		}
	}
	for i, c := range clients {
		if code := c.Closed(); code != websocket.StatusGoingAway {
			t.Fatalf("client %d closed with %d, want 1001", i, code)
		}
	}
	raw.expectClose(1001)
}

// A close step that never finishes does not hang Shutdown: it returns an
// error once its context is done.
func TestShutdownDrainDeadline(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before svc's own cleanup
	svc.ReplyFunc("/before_unsubscribe", func(e2e.Call) (int, string) {
		<-release
		return 200, `{"status":"ok"}`
	})
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Timeout = 30
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, BeforeUnsubscribe: svc.URL("/before_unsubscribe")}
	})
	c := e2e.Dial(t, srv)
	if m := c.Roundtrip(`{"event":"subscribe","subscription":"demo.stuck"}`); m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	other := e2e.Dial(t, srv)
	other.Roundtrip(`{"event":"ping"}`)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Shutdown returned nil although a close step never finished")
		}
		t.Logf("Shutdown after %v: %v", time.Since(start), err)
	case <-time.After(wait):
		t.Fatalf("Shutdown still running %v after its 1s deadline", wait)
	}
	switch el := time.Since(start); {
	case el < 900*time.Millisecond:
		t.Fatalf("Shutdown gave up after %v, before its deadline", el)
	case el > 4*time.Second:
		t.Fatalf("Shutdown took %v with a 1s deadline", el)
	}
	// Every client was told, stuck close steps or not.
	if code := c.Closed(); code != websocket.StatusGoingAway {
		t.Fatalf("stuck client closed with %d, want 1001", code)
	}
	if code := other.Closed(); code != websocket.StatusGoingAway {
		t.Fatalf("other client closed with %d, want 1001", code)
	}
}
