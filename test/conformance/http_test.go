package conformance

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

// HTTP calls to services: POST with Content-Type application/json.
func TestServiceCallIsJSONPost(t *testing.T) {
	t.Parallel()
	type seen struct{ method, ctype, body string }
	got := make(chan seen, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Content-Type"), string(b)}
		_, _ = io.WriteString(w, `{"status":"ok","user_id":"u","session_id":"s"}`)
	}))
	t.Cleanup(hs.Close)
	f := newFixture(t, func(f *fixture) {
		f.cfg.Authentication.Ticket = &config.Ticket{ValidationURL: hs.URL + "/auth", AuthFields: []string{"user_id"}}
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"x"}`), `{"event":"auth","status":"ok"}`)
	s := <-got
	if s.method != http.MethodPost || s.ctype != "application/json" || s.body != `{"ticket":"x"}` {
		t.Fatalf("service call: %+v", s)
	}
}

// A failed try (non-2xx) is retried; a later ok try is the result.
func TestServiceCallRetrySucceeds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.HTTP.Tries = 3
		var mu sync.Mutex
		n := 0
		f.svc.ReplyFunc("/auth", func(e2e.Call) (int, string) {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n < 3 {
				return 502, `{"status":"ok"}`
			}
			return 200, `{"status":"ok","user_id":"u1","session_id":"s1"}`
		})
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"ok"}`)
	for i := 0; i < 3; i++ {
		f.call("/auth", `{"ticket":"t"}`)
	}
}

// HTTP 429 waits the seconds of the rate-limit header (not http.wait) and
// counts as a try.
func TestServiceCallRateLimited(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var times []time.Time
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("X-Rate-Limit-Reset", "0.3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok","user_id":"u"}`)
	}))
	t.Cleanup(hs.Close)
	f := newFixture(t, func(f *fixture) {
		f.cfg.HTTP.Tries = 2
		f.cfg.HTTP.Wait = 5
		f.cfg.Authentication.Ticket = &config.Ticket{ValidationURL: hs.URL, AuthFields: []string{"user_id"}}
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"ok"}`)
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d tries", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 250*time.Millisecond || gap > 3*time.Second {
		t.Fatalf("retry after 429 waited %v, header said 0.3s (http.wait 5s)", gap)
	}
}

// A 429 on the last try leaves no try: Service unavailable.
func TestServiceCallRateLimitedLastTry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.svc.ReplyFunc("/auth", func(e2e.Call) (int, string) { return 429, `{"status":"ok"}` })
	})
	c := f.dial()
	expectJSON(t, c.Roundtrip(`{"event":"auth","ticket":"t"}`), `{"event":"auth","status":"error","error":"`+errUnavailable+`"}`)
}
