package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

// TestChurnLeavesNothingBehind connects, subscribes, and drops clients in
// every way (clean close, abrupt close, mid-subscribe with a slow
// before_subscribe, mid-handshake) while messages are published, then checks
// that the server holds no session, channel, index entry or timer.
func TestChurnLeavesNothingBehind(t *testing.T) {
	svc := e2e.NewService(t)
	svc.ReplyFunc("/before", func(c e2e.Call) (int, string) {
		if c.Body["slow"] == true {
			time.Sleep(20 * time.Millisecond) // a slow service, not synchronisation
		}
		return 200, `{"status":"ok"}`
	})
	f := false
	srv := startServer(t, func(c *cfgT) {
		c.WS.Ping.Interval = 0.05
		c.WS.Ping.Timeout = 1
		c.Services["demo"] = &config.Service{
			RequireAuthentication:      &f,
			ExtraFields:                []string{"slow"},
			BeforeSubscribe:            svc.URL("/before"),
			OnUnsubscribe:              svc.URL("/gone"),
			Authorizer:                 svc.URL("/authz"),
			AuthorizationRenewalPeriod: 0.05,
			HeartbeatPeriod:            0.05,
			OnHeartbeat:                svc.URL("/hb"),
		}
	})
	go func() { // drain the recorder so the service never blocks on it
		for range svc.Calls {
		}
	}()
	stop := make(chan struct{})
	var pub sync.WaitGroup
	pub.Add(1)
	go func() {
		defer pub.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = srv.Hub().Publish(context.Background(), fmt.Sprintf("demo.c%d", i%5),
				[]byte(fmt.Sprintf(`{"subscription":"demo.c%d","data":%d,"options":{"throttle":0.01}}`, i%5, i)))
			time.Sleep(time.Millisecond) // pacing the publisher
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				rc := dialRaw(t, srv)
				key := newKey()
				switch (w + i) % 4 {
				case 0: // gone mid-handshake
					rc.write([]byte(upgradeRequest(key)[:20]))
					rc.c.Close()
					continue
				case 1: // gone while before_subscribe runs
					rc.write([]byte(upgradeRequest(key)))
					rc.expect101(key)
					rc.send(fmt.Sprintf(`{"event":"subscribe","subscription":"demo.c%d","slow":true}`, i%5))
					rc.c.Close()
					continue
				}
				rc.write([]byte(upgradeRequest(key)))
				rc.expect101(key)
				for k := 0; k < 3; k++ {
					rc.send(fmt.Sprintf(`{"event":"subscribe","subscription":"demo.c%d"}`, (i+k)%5))
				}
				rc.awaitSubscribed(3)
				if (w+i)%4 == 2 {
					rc.send(`{"event":"unsubscribe","subscription":"demo.c0"}`)
					rc.c.Close() // abrupt, events possibly still queued
					continue
				}
				_, _ = rc.c.Write(clientFrame(true, 0, opClose, closePayload(1000, ""), true))
				rc.skipToEOF()
			}
		}(w)
	}
	// One client stays through the churn: its subscription, timers and
	// index entry must be visible, so the final zero check is not vacuous.
	keep := open(t, srv)
	keep.send(`{"event":"subscribe","subscription":"demo.keep"}`)
	keep.awaitSubscribed(1)
	wg.Wait()
	close(stop)
	pub.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	if s, err := srv.Stats(ctx); err != nil || s.Indexed < 1 || s.Timers < 1 || s.Sessions < 1 {
		t.Fatalf("a live subscriber must show in the stats: %+v %v", s, err)
	}
	keep.c.Close()
	var last any
	e2eEventually(t, "server bookkeeping back to zero", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
		defer cancel()
		s, err := srv.Stats(ctx)
		last = s
		return err == nil && s.Connections == 0 && s.Sessions == 0 && s.Channels == 0 && s.Indexed == 0 && s.Timers == 0
	}, func() string { return fmt.Sprintf("%+v", last) })
}

// awaitSubscribed reads frames (skipping pings and messages) until n
// subscribe replies arrived; each must be ok.
func (rc *rawConn) awaitSubscribed(n int) {
	rc.t.Helper()
	for n > 0 {
		f := rc.next()
		if f.op != opText {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(f.payload, &m); err != nil {
			rc.t.Fatalf("not JSON: %q", f.payload)
		}
		if m["event"] == "subscribe" {
			if m["status"] != "ok" {
				rc.t.Fatalf("subscribe failed: %v", m)
			}
			n--
		}
	}
}

// skipToEOF reads whatever frames are still coming until the server closes.
func (rc *rawConn) skipToEOF() {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(wait))
	if _, err := io.Copy(io.Discard, rc.r); err != nil && !isReset(err) {
		rc.t.Errorf("want EOF after the close handshake, got %v", err)
	}
}

func e2eEventually(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(e2e.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last state %s", what, state())
		}
		time.Sleep(20 * time.Millisecond) // polling server state that has no event to await
	}
}
