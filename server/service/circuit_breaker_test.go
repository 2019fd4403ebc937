package service

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNow is a monotonic clock the test moves by hand.
type fakeNow struct{ d atomic.Int64 }

func (f *fakeNow) now() time.Duration      { return time.Duration(f.d.Load()) }
func (f *fakeNow) advance(d time.Duration) { f.d.Add(int64(d)) }

// flaky is a live service that answers status while down and
// {"status":"ok"} once up; it counts the requests that reach it.
type flaky struct {
	srv    *httptest.Server
	status atomic.Int32 // 0 = up
	n      atomic.Int32
}

func newFlaky(t *testing.T, status int) *flaky {
	f := &flaky{}
	f.status.Store(int32(status))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		if s := f.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// logLines collects the caller's log as text lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), sub)
}

func breakerCaller(t *testing.T, clk *fakeNow, tries int, logs *logLines) *HTTPCaller {
	t.Helper()
	var w io.Writer = io.Discard
	if logs != nil {
		w = logs
	}
	c, _ := newCaller(t, Options{
		Tries:              tries,
		Logger:             slog.New(slog.NewTextHandler(w, nil)),
		BreakerFailures:    5,
		BreakerCooldown:    10 * time.Second,
		BreakerMaxCooldown: 25 * time.Second,
		Now:                clk.now,
	})
	return c
}

func breakerOf(t *testing.T, c *HTTPCaller, url string) BreakerStats {
	t.Helper()
	for _, s := range c.BreakerStats() {
		if s.URL == url {
			return s
		}
	}
	t.Fatalf("no breaker for %s in %+v", url, c.BreakerStats())
	return BreakerStats{}
}

// TestBreakerOpensAndRecovers walks one URL through the whole cycle against
// a live service that fails and then recovers: failed tries open it, no
// request reaches the service while open, one trial after the cool-down,
// a failed trial doubles the cool-down (capped), a good one closes it.
func TestBreakerOpensAndRecovers(t *testing.T) {
	clk := &fakeNow{}
	logs := &logLines{}
	svc := newFlaky(t, 503)
	c := breakerCaller(t, clk, 2, logs)
	url := svc.srv.URL + "/auth"
	ctx := context.Background()

	// Failed calls count, each after its 2 tries: the fifth opens it.
	for i := range 5 {
		if i > 0 && breakerOf(t, c, url).State != BreakerClosed {
			t.Fatalf("open after %d failed calls", i)
		}
		if r := c.Call(ctx, url, []byte(`{}`)); !r.Unavailable {
			t.Fatalf("call %d: %+v", i, r)
		}
		if got := svc.n.Load(); got != int32(2*(i+1)) {
			t.Fatalf("after call %d the service saw %d requests, want %d", i, got, 2*(i+1))
		}
	}
	if s := breakerOf(t, c, url); s.State != BreakerOpen || s.Transitions != [3]uint64{0, 0, 1} {
		t.Fatalf("breaker %+v, want open once", s)
	}
	// Open: calls fail at once, nothing is sent, and nothing is logged per
	// call.
	for range 100 {
		if r := c.Call(ctx, url, []byte(`{}`)); !r.Unavailable || r.Error != ServiceUnavailable {
			t.Fatalf("open: %+v", r)
		}
	}
	clk.advance(10*time.Second - 1)
	if _, ok := c.Admit(url); ok {
		t.Fatal("admitted before the cool-down ended")
	}
	if got := svc.n.Load(); got != 10 {
		t.Fatalf("while open the service saw %d more requests", got-10)
	}
	if s := breakerOf(t, c, url); s.Refused != 101 {
		t.Errorf("refused %d, want 101", s.Refused)
	}

	// Cool-down over: exactly one trial call, which fails (its 2 tries)
	// and re-opens with the cool-down doubled.
	clk.advance(1)
	trial, ok := c.Admit(url)
	if !ok {
		t.Fatal("no trial after the cool-down")
	}
	if _, ok := c.Admit(url); ok {
		t.Fatal("a second call admitted while the trial is out")
	}
	if s := breakerOf(t, c, url); s.State != BreakerHalfOpen {
		t.Fatalf("state %v, want half-open", s.State)
	}
	if r := c.CallTicket(ctx, trial, url, []byte(`{}`)); !r.Unavailable {
		t.Fatalf("trial: %+v", r)
	}
	if got := svc.n.Load(); got != 12 {
		t.Fatalf("the failed trial sent %d requests, want 2", got-10)
	}
	clk.advance(10 * time.Second)
	if _, ok := c.Admit(url); ok {
		t.Fatal("re-opened breaker admitted a call after the first cool-down; want it doubled")
	}
	clk.advance(10 * time.Second)
	trial, ok = c.Admit(url)
	if !ok {
		t.Fatal("no trial after the doubled cool-down")
	}
	// A trial released without a try (its call was never queued) hands the
	// trial to the next call.
	trial.Release()
	trial, ok = c.Admit(url)
	if !ok {
		t.Fatal("released trial not handed on")
	}
	if r := c.CallTicket(ctx, trial, url, []byte(`{}`)); !r.Unavailable {
		t.Fatalf("second trial: %+v", r)
	}
	// 20s doubled is 40s, capped at 25s.
	clk.advance(25 * time.Second)
	svc.status.Store(0)
	if r := c.Call(ctx, url, []byte(`{}`)); !r.OK {
		t.Fatalf("trial against the recovered service: %+v", r)
	}
	if s := breakerOf(t, c, url); s.State != BreakerClosed || s.Transitions != [3]uint64{1, 3, 3} {
		t.Fatalf("breaker %+v, want closed after 3 openings and 3 trials", s)
	}
	before := svc.n.Load()
	for range 10 {
		if r := c.Call(ctx, url, []byte(`{}`)); !r.OK {
			t.Fatalf("closed: %+v", r)
		}
	}
	if got := svc.n.Load() - before; got != 10 {
		t.Errorf("closed breaker let %d of 10 calls through", got)
	}
	// One line per transition: 3 openings, 3 half-opens, 1 close.
	for sub, want := range map[string]int{"service breaker open": 3, "service breaker half-open": 3, "service breaker closed": 1} {
		if got := logs.count(sub); got != want {
			t.Errorf("%q logged %d times, want %d", sub, got, want)
		}
	}
	// Once closed the first cool-down is back to 10s.
	svc.status.Store(500)
	for range 5 {
		c.Call(ctx, url, []byte(`{}`))
	}
	clk.advance(10 * time.Second)
	if _, ok := c.Admit(url); !ok {
		t.Error("cool-down not reset to breaker_cooldown after closing")
	}
}

// TestBreakerOneTrialInFlight: when the cool-down ends under load, one call
// reaches the service and every other fails at once, even while the trial
// is slow.
func TestBreakerOneTrialInFlight(t *testing.T) {
	clk := &fakeNow{}
	release := make(chan struct{})
	var n, bad atomic.Int32
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		if bad.Load() != 0 {
			w.WriteHeader(502)
			return
		}
		if k == 6 { // the trial: held until the others have been refused
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	c := breakerCaller(t, clk, 1, nil)
	bad.Store(1)
	for range 5 {
		c.Call(context.Background(), srv.URL, nil)
	}
	if n.Load() != 5 {
		t.Fatalf("%d requests while failing, want 5", n.Load())
	}
	clk.advance(10 * time.Second)
	bad.Store(0)

	trialDone := make(chan Result)
	go func() { trialDone <- c.Call(context.Background(), srv.URL, nil) }()
	// The trial is admitted before it is sent: wait until it reaches the
	// service, where it blocks.
	<-entered
	var wg sync.WaitGroup
	var unavailable atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := c.Call(context.Background(), srv.URL, nil); r.Unavailable {
				unavailable.Add(1)
			}
		}()
	}
	wg.Wait()
	if unavailable.Load() != 50 || n.Load() != 6 {
		t.Fatalf("during the trial: %d of 50 calls failed at once, service saw %d requests (want 50, 6)", unavailable.Load(), n.Load())
	}
	close(release)
	if r := <-trialDone; !r.OK {
		t.Fatalf("trial: %+v", r)
	}
	if r := c.Call(context.Background(), srv.URL, nil); !r.OK || n.Load() != 7 {
		t.Fatalf("after the trial: %+v, %d requests", r, n.Load())
	}
}

// TestBreakerWhatCounts: 5xx, 429 and transport errors count; any other
// reply shows a live service and resets the count; 0 disables the breaker.
func TestBreakerWhatCounts(t *testing.T) {
	ctx := context.Background()
	t.Run("4xx resets", func(t *testing.T) {
		svc := newFlaky(t, 404)
		c := breakerCaller(t, &fakeNow{}, 1, nil)
		for range 20 {
			c.Call(ctx, svc.srv.URL, nil)
		}
		if svc.n.Load() != 20 || breakerOf(t, c, svc.srv.URL).State != BreakerClosed {
			t.Fatalf("404s: %d requests, breaker %+v", svc.n.Load(), breakerOf(t, c, svc.srv.URL))
		}
		// Four 500s, a 404, four 500s: never five in a row.
		for _, st := range []int32{500, 500, 500, 500, 404, 500, 500, 500, 500} {
			svc.status.Store(st)
			c.Call(ctx, svc.srv.URL, nil)
		}
		if s := breakerOf(t, c, svc.srv.URL); s.State != BreakerClosed {
			t.Fatalf("opened on non-consecutive failures: %+v", s)
		}
	})
	t.Run("a flaky service that answers every other call", func(t *testing.T) {
		// Five failed tries in six: with tries 3 one call in two fails
		// and the next succeeds on its third try. Every other client is
		// served, so the breaker stays closed; counting tries, it would
		// open within the second call.
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch n.Add(1) % 6 {
			case 0:
				io.WriteString(w, `{"status":"ok"}`)
			case 2:
				w.WriteHeader(429)
			default:
				w.WriteHeader(503)
			}
		}))
		t.Cleanup(srv.Close)
		c := breakerCaller(t, &fakeNow{}, 3, nil)
		for i := range 40 {
			if r := c.Call(ctx, srv.URL, nil); r.OK != (i%2 == 1) {
				t.Fatalf("call %d: %+v", i, r)
			}
		}
		if s := breakerOf(t, c, srv.URL); s.State != BreakerClosed || s.Transitions != [3]uint64{} {
			t.Fatalf("breaker %+v", s)
		}
	})
	t.Run("a live reply in a failed call resets", func(t *testing.T) {
		// Calls of 2 tries: four get 500 twice, the fifth 500 then 404
		// (Unavailable, yet the service is alive), four more 500 twice.
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 10 {
				w.WriteHeader(404)
				return
			}
			w.WriteHeader(500)
		}))
		t.Cleanup(srv.Close)
		c := breakerCaller(t, &fakeNow{}, 2, nil)
		for range 9 {
			if r := c.Call(ctx, srv.URL, nil); !r.Unavailable {
				t.Fatalf("%+v", r)
			}
		}
		if n.Load() != 18 {
			t.Fatalf("%d requests, want 18", n.Load())
		}
		if s := breakerOf(t, c, srv.URL); s.State != BreakerClosed {
			t.Fatalf("opened though a call in the middle reached a live service: %+v", s)
		}
	})
	t.Run("429 counts", func(t *testing.T) {
		svc := newFlaky(t, 429)
		c := breakerCaller(t, &fakeNow{}, 1, nil)
		for range 10 {
			c.Call(ctx, svc.srv.URL, nil)
		}
		if svc.n.Load() != 5 {
			t.Fatalf("429s: %d requests reached the service, want 5", svc.n.Load())
		}
	})
	t.Run("connection refused counts", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/auth"
		ln.Close()
		c := breakerCaller(t, &fakeNow{}, 3, nil)
		for range 4 {
			c.Call(ctx, url, nil)
		}
		if s := breakerOf(t, c, url); s.State != BreakerClosed {
			t.Fatalf("opened after 4 failed calls: %+v", s)
		}
		c.Call(ctx, url, nil)
		if s := breakerOf(t, c, url); s.State != BreakerOpen {
			t.Fatalf("not open after 5 calls of refused connections: %+v", s)
		}
	})
	t.Run("off", func(t *testing.T) {
		svc := newFlaky(t, 500)
		c, _ := newCaller(t, Options{Tries: 1, BreakerFailures: 0})
		for range 20 {
			c.Call(ctx, svc.srv.URL, nil)
		}
		if svc.n.Load() != 20 || len(c.BreakerStats()) != 0 {
			t.Fatalf("breakers off: %d requests, stats %+v", svc.n.Load(), c.BreakerStats())
		}
	})
}

// TestBreakerStopsAdmittedCalls: calls admitted while closed but not yet
// run (waiting in the pool, or between tries) make no connection attempt
// once the breaker has opened.
func TestBreakerStopsAdmittedCalls(t *testing.T) {
	svc := newFlaky(t, 500)
	c := breakerCaller(t, &fakeNow{}, 1, nil)
	url := svc.srv.URL
	var waiting []Ticket
	for range 20 {
		tk, ok := c.Admit(url)
		if !ok {
			t.Fatal("refused while closed")
		}
		waiting = append(waiting, tk)
	}
	for _, tk := range waiting {
		if r := c.CallTicket(context.Background(), tk, url, nil); !r.Unavailable {
			t.Fatalf("%+v", r)
		}
	}
	if svc.n.Load() != 5 {
		t.Fatalf("%d of 20 admitted calls reached the service, want 5", svc.n.Load())
	}
}

// TestBreakerCredentialsRedacted: the metric's URL label hides user info.
func TestBreakerCredentialsRedacted(t *testing.T) {
	svc := newFlaky(t, 500)
	c := breakerCaller(t, &fakeNow{}, 1, nil)
	u := strings.Replace(svc.srv.URL, "http://", "http://user:s3cret@", 1)
	c.Call(context.Background(), u, nil)
	st := c.BreakerStats()
	if len(st) != 1 || strings.Contains(st[0].URL, "s3cret") || !strings.Contains(st[0].URL, "xxxxx@") {
		t.Fatalf("stats %+v", st)
	}
}

// TestBreakerSkipsTheWait: a call whose try was in flight when other calls
// opened the breaker does not sit out the wait before a try it will not
// make (it would hold a pool slot for http.wait).
func TestBreakerSkipsTheWait(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			close(entered)
			<-release
		}
		w.WriteHeader(500)
	}))
	t.Cleanup(srv.Close)
	c, rec := newCaller(t, Options{Tries: 2, Wait: time.Second, BreakerFailures: 1, BreakerCooldown: time.Minute, Now: (&fakeNow{}).now})
	slow := make(chan Result)
	go func() { slow <- c.Call(context.Background(), srv.URL, nil) }()
	<-entered
	// Another call fails both tries (one wait between them) and opens it.
	if r := c.Call(context.Background(), srv.URL, nil); !r.Unavailable {
		t.Fatalf("%+v", r)
	}
	close(release)
	if r := <-slow; !r.Unavailable {
		t.Fatalf("%+v", r)
	}
	if got := rec.got(); len(got) != 1 || n.Load() != 3 {
		t.Fatalf("slept %v, %d requests; want one wait, 3 requests", got, n.Load())
	}
}
