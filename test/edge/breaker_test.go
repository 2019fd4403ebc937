package edge

import (
	"context"
	"fmt"
	"mako/config"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

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

// callCounter counts a service's callbacks per path and subscription.
type callCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (cc *callCounter) add(c e2e.Call) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.n == nil {
		cc.n = map[string]int{}
	}
	cc.n[c.Path+" "+fmt.Sprint(c.Body["subscription"])]++
}

func (cc *callCounter) get(path, sub string) int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.n[path+" "+sub]
}

func (cc *callCounter) String() string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return fmt.Sprint(cc.n)
}

// A client whose reading is paused (its queue of events is full behind a
// before_subscribe that hangs) and which then ends the connection (a close
// frame and a FIN, or a reset) while the call is in flight: once the call
// returns, the session finishes, and every subscription that got
// on_subscribe gets exactly one before_unsubscribe and one on_unsubscribe
// (protocol.md: a disconnect calls both); none gets any callback twice.
func TestPausedSessionEndsDuringServiceCall(t *testing.T) {
	for _, how := range []string{"close_frame_and_fin", "fin", "reset"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			svc := e2e.NewService(t)
			var cc callCounter
			release := make(chan struct{})
			svc.ReplyFunc("/before_subscribe", func(c e2e.Call) (int, string) {
				cc.add(c)
				if c.Body["subscription"] == "demo.t0" {
					<-release
				}
				return 200, `{"status":"ok"}`
			})
			for _, p := range []string{"/on_subscribe", "/before_unsubscribe", "/on_unsubscribe"} {
				svc.ReplyFunc(p, func(c e2e.Call) (int, string) { cc.add(c); return 200, `{"status":"ok"}` })
			}
			releaseOnce := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseOnce)
			no := false
			srv := startServer(t, func(c *cfgT) {
				c.HTTP.Timeout = 30
				c.Limits.MaxQueuedEvents = 4
				c.Services["demo"] = &config.Service{
					RequireAuthentication: &no,
					BeforeSubscribe:       svc.URL("/before_subscribe"),
					OnSubscribe:           svc.URL("/on_subscribe"),
					BeforeUnsubscribe:     svc.URL("/before_unsubscribe"),
					OnUnsubscribe:         svc.URL("/on_unsubscribe"),
				}
			})
			rc := open(t, srv)
			rc.send(`{"event":"subscribe","subscription":"demo.a0"}`)
			if m := rc.nextJSON(); m["status"] != "ok" {
				t.Fatalf("subscribe a0: %v", m)
			}
			const n = 20
			b := burst(n, func(i int) string { return fmt.Sprintf(`{"event":"subscribe","subscription":"demo.t%d"}`, i) })
			if how == "close_frame_and_fin" {
				b = append(b, clientFrame(true, 0, opClose, closePayload(1000, "bye"), true)...)
			}
			rc.write(b)
			e2eEventually(t, "demo.t0's call in flight", func() bool { return cc.get("/before_subscribe", "demo.t0") == 1 }, cc.String)
			switch how {
			case "reset":
				_ = rc.c.SetLinger(0)
				_ = rc.c.Close()
			default:
				_ = rc.c.CloseWrite()
			}
			releaseOnce()
			state := func() string {
				st, _ := srv.Stats(context.Background())
				return fmt.Sprintf("%+v calls %s", st, cc.String())
			}
			e2eEventually(t, "the session to finish", func() bool {
				st, err := srv.Stats(context.Background())
				return err == nil && st.Sessions == 0 && st.Calls == 0 && st.Connections == 0
			}, state)
			for i := -1; i < n; i++ {
				sub := fmt.Sprintf("demo.t%d", i)
				if i < 0 {
					sub = "demo.a0"
				}
				on, off := cc.get("/on_subscribe", sub), cc.get("/on_unsubscribe", sub)
				if on > 1 || off != on || cc.get("/before_subscribe", sub) > 1 || cc.get("/before_unsubscribe", sub) != on {
					t.Errorf("%s: before_subscribe %d, on_subscribe %d, before_unsubscribe %d, on_unsubscribe %d",
						sub, cc.get("/before_subscribe", sub), on, cc.get("/before_unsubscribe", sub), off)
				}
			}
			if cc.get("/on_unsubscribe", "demo.a0") != 1 {
				t.Errorf("demo.a0 (subscribed before): on_unsubscribe %d, want 1", cc.get("/on_unsubscribe", "demo.a0"))
			}
			t.Logf("calls: %s", cc.String())
		})
	}
}

// A reconnect storm in which every client resets its connection at a random
// point of its subscribe (before, during or after before_subscribe and
// on_subscribe, which take a few random milliseconds): for every topic,
// on_subscribe is called at most once, and exactly as often as
// before_unsubscribe and on_unsubscribe; every session finishes.
func TestStormOfResetsMidCallbackPairsCallbacks(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	var cc callCounter
	delay := func() {
		// Pacing, not synchronisation: spreads the resets over every
		// stage of the callbacks.
		time.Sleep(time.Duration(mrand.IntN(4)) * time.Millisecond)
	}
	for _, p := range []string{"/before_subscribe", "/on_subscribe", "/before_unsubscribe", "/on_unsubscribe"} {
		svc.ReplyFunc(p, func(c e2e.Call) (int, string) { cc.add(c); delay(); return 200, `{"status":"ok"}` })
	}
	go func() { // e2e.Service records every call in a bounded channel: keep it empty
		for range svc.Calls {
		}
	}()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["demo"] = &config.Service{
			RequireAuthentication: &no,
			BeforeSubscribe:       svc.URL("/before_subscribe"),
			OnSubscribe:           svc.URL("/on_subscribe"),
			BeforeUnsubscribe:     svc.URL("/before_unsubscribe"),
			OnUnsubscribe:         svc.URL("/on_unsubscribe"),
		}
	})
	const n = 400
	var wg sync.WaitGroup
	for i := range n {
		rc := open(t, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = rc.c.SetWriteDeadline(time.Now().Add(wait))
			_, _ = rc.c.Write(clientFrame(true, 0, opText, []byte(fmt.Sprintf(`{"event":"subscribe","subscription":"demo.c%d"}`, i)), true))
			if i%5 != 0 {
				time.Sleep(time.Duration(mrand.IntN(12)) * time.Millisecond) // pacing
			}
			_ = rc.c.SetLinger(0)
			_ = rc.c.Close()
		}()
	}
	wg.Wait()
	e2eEventually(t, "every session to finish", func() bool {
		st, err := srv.Stats(context.Background())
		return err == nil && st.Sessions == 0 && st.Calls == 0
	}, cc.String)
	subscribed := 0
	for i := range n {
		sub := fmt.Sprintf("demo.c%d", i)
		bs, on, bu, ou := cc.get("/before_subscribe", sub), cc.get("/on_subscribe", sub), cc.get("/before_unsubscribe", sub), cc.get("/on_unsubscribe", sub)
		if bs > 1 || on > bs || bu != on || ou != on {
			t.Errorf("%s: before_subscribe %d, on_subscribe %d, before_unsubscribe %d, on_unsubscribe %d", sub, bs, on, bu, ou)
		}
		subscribed += on
	}
	t.Logf("%d of %d subscriptions reached on_subscribe before the reset", subscribed, n)
}

// Twenty clients each resubscribe 150 topics in one write, against a slow
// authorizer behind a small per-service concurrency and wait queue and a
// session queue of 2: every client gets one reply per subscribe, in order
// (ok, or "Service unavailable." at once when the service's wait queue is
// full), and stays connected; nothing is left in flight afterwards.
func TestBurstsAgainstFullServiceQueue(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	svc.ReplyFunc("/authorize", func(e2e.Call) (int, string) {
		time.Sleep(time.Duration(mrand.IntN(2)) * time.Millisecond) // a slow service
		return 200, `{"status":"ok"}`
	})
	go func() { // e2e.Service records every call in a bounded channel: keep it empty
		for range svc.Calls {
		}
	}()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.Limits.MaxQueuedEvents = 2
		c.HTTP.MaxConcurrencyPerService = 4
		c.HTTP.MaxQueuedPerService = 8
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, Authorizer: svc.URL("/authorize")}
	})
	const clients, n = 20, 150
	var conns []*rawConn
	for range clients {
		conns = append(conns, open(t, srv))
	}
	for _, rc := range conns {
		rc.write(burst(n, func(i int) string { return fmt.Sprintf(`{"event":"subscribe","subscription":"demo.t%d"}`, i) }))
	}
	ok, unavailable := 0, 0
	for c, rc := range conns {
		for i := range n {
			m := rc.nextJSON()
			if m["event"] != "subscribe" || m["subscription"] != fmt.Sprintf("demo.t%d", i) {
				t.Fatalf("client %d reply %d: %v", c, i, m)
			}
			switch {
			case m["status"] == "ok":
				ok++
			case m["error"] == "Service unavailable.":
				unavailable++
			default:
				t.Fatalf("client %d reply %d: %v", c, i, m)
			}
		}
		rc.ping("open")
	}
	t.Logf("%d ok, %d refused by the full wait queue", ok, unavailable)
	st, err := srv.Stats(context.Background())
	if err != nil || st.Calls != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
}
