package edge

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// deadService is an auth service on loopback that has died: each
// connection is accepted, counted and reset at once. Once revived it
// answers every ticket as valid.
type deadService struct {
	net.Listener
	accepts atomic.Int64
	alive   atomic.Bool
}

func newDeadService(t *testing.T) *deadService {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &deadService{Listener: ln}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"status":"ok","user_id":"u1"}`)
	})}
	go func() { _ = hs.Serve(d) }()
	t.Cleanup(func() { _ = hs.Close() })
	return d
}

// Accept counts every connection attempt that reached the service and, while
// dead, resets it (SO_LINGER 0): the caller's try fails only after this
// count, so once every call has ended the count is exact.
func (d *deadService) Accept() (net.Conn, error) {
	for {
		c, err := d.Listener.Accept()
		if err != nil {
			return nil, err
		}
		d.accepts.Add(1)
		if d.alive.Load() {
			return c, nil
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}
}

// TestBreakerAuthStorm is issue 9's storm: 10,000 authentications (2,500
// clients reconnecting, 4 tickets each) against an auth service that has
// died. The breaker opens after breaker_failures failed calls and the calls
// running then stop before their next try, so the service sees at most
// tries × (breaker_failures + max_concurrency_per_service - 1) connection
// attempts, not tries × 10,000; every client gets "Service unavailable." without waiting
// for a timeout, and nothing stays queued. After the cool-down (on the
// server's clock) one trial finds the service back and closes the breaker.
func TestBreakerAuthStorm(t *testing.T) {
	const (
		clients  = 2500
		auths    = 4
		tries    = 3
		failures = 5
		perSvc   = 4
	)
	dead := newDeadService(t)
	clock := e2e.NewFakeClock()
	cfg := e2e.Config()
	scrape := e2e.ServeMetrics(t, cfg)
	url := "http://" + dead.Addr().String() + "/auth/ticket/"
	cfg.Authentication.Ticket = &config.Ticket{ValidationURL: url, AuthFields: []string{"user_id"}}
	cfg.HTTP.Tries = tries
	cfg.HTTP.Wait = 0
	// A try that hangs would be a failure too, but this service resets:
	// nothing here waits for a timeout.
	cfg.HTTP.Timeout = config.Seconds(e2e.Timeout.Seconds())
	cfg.HTTP.MaxConcurrencyPerService = perSvc
	cfg.HTTP.BreakerFailures = failures
	cfg.HTTP.BreakerCooldown = 30
	cfg.Limits.MaxQueuedEvents = auths
	srv := e2e.StartServer(t, cfg, func(o *server.Options) { o.Clock = clock })

	cs := make([]*rawConn, clients)
	for i := range cs {
		cs[i] = open(t, srv)
	}
	// Every client sends all its tickets before any reply is read: the
	// storm arrives as fast as the sockets carry it.
	for _, c := range cs {
		for range auths {
			c.send(`{"event":"auth","method":"ticket","ticket":"tk"}`)
		}
	}
	for i, c := range cs {
		for j := range auths {
			m := c.nextJSON()
			if m["event"] != "auth" || m["status"] != "error" || m["error"] != "Service unavailable." {
				t.Fatalf("client %d auth %d: %v", i, j, m)
			}
		}
	}
	// Each reply was written by its call's continuation, so every try has
	// ended and been counted by Accept.
	attempts := dead.accepts.Load()
	if bound := int64(tries * (failures + perSvc - 1)); attempts > bound {
		t.Errorf("the dead service saw %d connection attempts for %d authentications; want at most %d", attempts, clients*auths, bound)
	}
	m := scrape()
	state := `mako_service_breaker_state{url="` + url + `"}`
	refused := m[`mako_service_breaker_refused_total{url="`+url+`"}`]
	t.Logf("%d authentications: %d connection attempts, %v refused by the open breaker, %v admitted before it opened", clients*auths, attempts, refused, clients*auths-refused)
	if m[state] != 2 {
		t.Errorf("%s = %v, want 2 (open)", state, m[state])
	}
	// A worker leaves the pool just after posting its result, so the
	// gauges may lag the last reply by a moment: the pool has no event to
	// await, hence the bounded poll.
	for deadline := time.Now().Add(e2e.Timeout); ; time.Sleep(time.Millisecond) {
		q, r := m[`mako_service_queue{service="auth"}`], m[`mako_service_inflight{service="auth"}`]
		if q == 0 && r == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the storm: %v calls queued, %v in flight", q, r)
		}
		m = scrape()
	}

	// Within the cool-down: still refused, still no attempt.
	dead.alive.Store(true)
	clock.Advance(29 * time.Second)
	cs[0].send(`{"event":"auth","method":"ticket","ticket":"tk"}`)
	if m := cs[0].nextJSON(); m["error"] != "Service unavailable." {
		t.Fatalf("within the cool-down: %v", m)
	}
	// After it: one trial, which succeeds and closes the breaker.
	clock.Advance(time.Second)
	cs[1].send(`{"event":"auth","method":"ticket","ticket":"tk"}`)
	if m := cs[1].nextJSON(); m["status"] != "ok" {
		t.Fatalf("after the cool-down: %v", m)
	}
	if got := dead.accepts.Load(); got != attempts+1 {
		t.Errorf("the trial made %d connection attempts, want 1 (it succeeded on its first try)", got-attempts)
	}
	m = scrape()
	if m[state] != 0 {
		t.Errorf("%s = %v after a good trial, want 0 (closed)", state, m[state])
	}
	for to, want := range map[string]float64{"open": 1, "half-open": 1, "closed": 1} {
		k := `mako_service_breaker_transitions_total{to="` + to + `",url="` + url + `"}` // labels sorted
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
}
