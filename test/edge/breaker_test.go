package edge

import (
	"context"
	"testing"

	"mako/internal/e2e"
	"mako/server"
)

// A restart right after a shutdown that closed 2,000 live connections whose
// clients never answer (they neither read the close frame nor close their
// end) binds at once: the server's side of each sits in FIN_WAIT2 or
// TIME_WAIT, with the peer still in CLOSE_WAIT, and a client of the new
// server is served. Past the 3 connections of TestRestartOnSamePort, and with
// peers that never close.
func TestRestartAfterShutdownOfManySilentConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	port := freePort(t)
	mutate := func(c *cfgT) { c.WS.Port = port }
	first := startServer(t, mutate)
	const n = 2000
	clients := make([]*rawConn, 0, n)
	for range n {
		clients = append(clients, open(t, first))
	}
	clients[n-1].ping("up")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	states := tcpStates(t, port)
	t.Logf("after shutdown, TCP states on port %d: %v", port, states)
	if states["0A"] != 0 {
		t.Fatalf("still listening on %d after Shutdown returned", port)
	}

	cfg := e2e.Config()
	mutate(cfg)
	second, err := server.New(cfg, server.Options{Logger: e2e.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		t.Fatalf("restart on port %d with %d old connections: %v", port, n, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = second.Shutdown(ctx)
	})
	open(t, second).ping("again")
	// The old clients still get their 1001, however late they read it.
	clients[0].expectClose(1001)
}
