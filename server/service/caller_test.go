package service

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mako/config"
)

// sleeps records the waits the caller asks for instead of spending them.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

func newCaller(t testing.TB, o Options) (*HTTPCaller, *sleeps) {
	t.Helper()
	rec := &sleeps{}
	if o.Sleep == nil {
		o.Sleep = rec.sleep
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Wait == 0 {
		o.Wait = 3 * time.Second
	}
	c, err := NewHTTPCaller(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, rec
}

// server answers each request with the next of replies (the last one
// repeats) and counts requests.
type reply struct {
	status int
	header map[string]string
	body   string
}

func newServer(t testing.TB, replies ...reply) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		rep := replies[min(i, len(replies)-1)]
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestCallOK(t *testing.T) {
	var gotBody, gotType, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotType, gotMethod = string(b), r.Header.Get("Content-Type"), r.Method
		io.WriteString(w, `{"status":"ok","data":{"a":[1,2]},"user_id":"u1","n":null}`)
	}))
	defer srv.Close()
	c, rec := newCaller(t, Options{Tries: 3})

	r := c.Call(context.Background(), srv.URL+"/auth/ticket/", []byte(`{"ticket":"T"}`))
	if !r.OK || r.Broken || r.Unavailable || r.Error != "" {
		t.Fatalf("result %+v", r)
	}
	if string(r.Data) != `{"a":[1,2]}` {
		t.Errorf("data %s", r.Data)
	}
	if string(r.Fields["user_id"]) != `"u1"` || string(r.Fields["n"]) != "null" || len(r.Fields) != 4 {
		t.Errorf("fields %v", r.Fields)
	}
	if gotMethod != "POST" || gotType != "application/json" || gotBody != `{"ticket":"T"}` {
		t.Errorf("request %s %q %q", gotMethod, gotType, gotBody)
	}
	if len(rec.got()) != 0 {
		t.Errorf("slept %v", rec.got())
	}
}

func TestCallReplies(t *testing.T) {
	cases := []struct {
		body  string
		ok    bool
		err   string
		data  string // "" = absent
		fails bool   // Broken
	}{
		{body: `{"status":"error","error":"Nope."}`, err: "Nope."},
		{body: `{"status":"error","error":"Nope.","data":{"x":1}}`, err: "Nope.", data: `{"x":1}`},
		{body: `{"status":"error"}`},
		{body: `{"status":"error","error":""}`},
		{body: `{"status":"error","error":5}`},
		{body: `{"status":"error","error":"a\"b"}`, err: `a"b`},
		{body: `{"status":"\u006fk"}`, ok: true},
		{body: `{"status":"OK"}`},
		{body: `{"status":true}`},
		{body: `{}`},
		{body: ` {"status":"ok","data":null}`, ok: true, data: "null"},
		{body: `[{"status":"ok"}]`, fails: true},
		{body: `"ok"`, fails: true},
		{body: `{"status":"ok"`, fails: true},
		{body: `{"status":"ok"} x`, fails: true},
		{body: `null`, fails: true},
		{body: ``, fails: true},
		{body: `<html>`, fails: true},
	}
	c, rec := newCaller(t, Options{Tries: 3})
	for _, tc := range cases {
		srv, n := newServer(t, reply{status: 200, body: tc.body})
		r := c.Call(context.Background(), srv.URL, nil)
		if r.OK != tc.ok || r.Error != tc.err || string(r.Data) != tc.data || r.Broken != tc.fails || r.Unavailable {
			t.Errorf("%s: got %+v", tc.body, r)
		}
		if tc.data == "" && r.Data != nil {
			t.Errorf("%s: data %q, want nil", tc.body, r.Data)
		}
		if n.Load() != 1 {
			t.Errorf("%s: %d requests", tc.body, n.Load())
		}
	}
	if len(rec.got()) != 0 {
		t.Errorf("slept %v", rec.got())
	}
}

func TestCallRetryThenOK(t *testing.T) {
	srv, n := newServer(t, reply{status: 500, body: "boom"}, reply{status: 200, body: `{"status":"ok"}`})
	c, rec := newCaller(t, Options{Tries: 3, Wait: 2 * time.Second})
	r := c.Call(context.Background(), srv.URL, []byte(`{}`))
	if !r.OK {
		t.Fatalf("result %+v", r)
	}
	if n.Load() != 2 {
		t.Errorf("%d requests, want 2", n.Load())
	}
	if got := rec.got(); !slices.Equal(got, []time.Duration{2 * time.Second}) {
		t.Errorf("slept %v", got)
	}
}

func TestCallUnavailable(t *testing.T) {
	for _, status := range []int{500, 404, 302} {
		srv, n := newServer(t, reply{status: status, body: `{"status":"ok"}`})
		c, rec := newCaller(t, Options{Tries: 4, Wait: time.Second})
		r := c.Call(context.Background(), srv.URL, []byte(`{}`))
		if !r.Unavailable || r.OK || r.Error != "Service unavailable." || r.Broken {
			t.Fatalf("%d: result %+v", status, r)
		}
		if n.Load() != 4 {
			t.Errorf("%d: %d requests, want 4", status, n.Load())
		}
		if got := rec.got(); !slices.Equal(got, []time.Duration{time.Second, time.Second, time.Second}) {
			t.Errorf("%d: slept %v", status, got)
		}
	}
}

func TestCallTimeout(t *testing.T) {
	block := make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		<-block
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) }) // runs first: lets srv.Close finish

	c, rec := newCaller(t, Options{Tries: 2, Timeout: 100 * time.Millisecond, Wait: time.Second})
	start := time.Now()
	r := c.Call(context.Background(), srv.URL, []byte(`{}`))
	if !r.Unavailable {
		t.Fatalf("result %+v", r)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}
	if n.Load() != 2 {
		t.Errorf("%d requests, want 2", n.Load())
	}
	if got := rec.got(); !slices.Equal(got, []time.Duration{time.Second}) {
		t.Errorf("slept %v", got)
	}
}

// An Unavailable result says why from its last try: 429, a timeout, or
// anything else (another status, a refused connection). An earlier try's
// failure does not stick.
func TestCallFailure(t *testing.T) {
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	cases := []struct {
		name    string
		replies []reply
		url     string
		want    Failure
	}{
		{"429", []reply{{status: 429}}, "", FailRateLimited},
		{"500", []reply{{status: 500}}, "", FailOther},
		{"429 then 500", []reply{{status: 429}, {status: 500}}, "", FailOther},
		{"500 then 429", []reply{{status: 500}, {status: 429}}, "", FailRateLimited},
		{"refused", nil, refused, FailOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if url == "" {
				srv, _ := newServer(t, tc.replies...)
				url = srv.URL
			}
			c, _ := newCaller(t, Options{Tries: 2})
			r := c.Call(context.Background(), url, nil)
			if !r.Unavailable || r.Failure != tc.want {
				t.Errorf("result %+v, want Unavailable with Failure %d", r, tc.want)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(block) })
		c, _ := newCaller(t, Options{Tries: 1, Timeout: 50 * time.Millisecond})
		if r := c.Call(context.Background(), srv.URL, nil); !r.Unavailable || r.Failure != FailTimeout {
			t.Errorf("result %+v, want Unavailable with FailTimeout", r)
		}
	})
	t.Run("ok", func(t *testing.T) {
		srv, _ := newServer(t, reply{status: 500}, reply{status: 200, body: `{"status":"ok"}`})
		c, _ := newCaller(t, Options{Tries: 2})
		if r := c.Call(context.Background(), srv.URL, nil); !r.OK || r.Unavailable || r.Failure != FailOther {
			t.Errorf("result %+v, want OK", r)
		}
	})
}

func TestCallContext(t *testing.T) {
	srv, n := newServer(t, reply{status: 500})
	c, _ := newCaller(t, Options{Tries: 5, Sleep: sleepCtx, Wait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	r := c.Call(ctx, srv.URL, nil)
	if !r.Unavailable {
		t.Fatalf("result %+v", r)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancel took %v", el)
	}
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}

	// An ended ctx sends nothing.
	r = c.Call(ctx, srv.URL, nil)
	if !r.Unavailable || n.Load() != 1 {
		t.Errorf("after cancel: %+v, %d requests", r, n.Load())
	}
}

func TestCallRateLimit(t *testing.T) {
	ok := reply{status: 200, body: `{"status":"ok"}`}
	limited := func(h map[string]string) reply { return reply{status: 429, header: h} }
	cases := []struct {
		name    string
		headers []string
		resp    map[string]string
		want    time.Duration
	}{
		{"seconds", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "7"}, 7 * time.Second},
		{"float", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "0.25"}, 250 * time.Millisecond},
		{"zero", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "0"}, 0},
		{"max", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "3600"}, time.Hour},
		{"too long", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "99999"}, 3 * time.Second},
		{"negative", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "-1"}, 3 * time.Second},
		{"garbage", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "soon"}, 3 * time.Second},
		{"nan", []string{"X-Rate-Limit-Reset"}, map[string]string{"X-Rate-Limit-Reset": "NaN"}, 3 * time.Second},
		{"absent", []string{"X-Rate-Limit-Reset"}, nil, 3 * time.Second},
		{"no names", nil, map[string]string{"X-Rate-Limit-Reset": "7"}, 3 * time.Second},
		{"first listed wins", []string{"A-Reset", "B-Reset"}, map[string]string{"B-Reset": "5", "A-Reset": "2"}, 2 * time.Second},
		{"next when first absent", []string{"A-Reset", "B-Reset"}, map[string]string{"B-Reset": "5"}, 5 * time.Second},
		{"first present garbage", []string{"A-Reset", "B-Reset"}, map[string]string{"A-Reset": "x", "B-Reset": "5"}, 3 * time.Second},
		{"case-insensitive", []string{"x-rate-limit-reset"}, map[string]string{"X-Rate-Limit-Reset": "4"}, 4 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := newServer(t, limited(tc.resp), ok)
			c, rec := newCaller(t, Options{Tries: 3, Wait: 3 * time.Second, RateLimitHeaders: tc.headers})
			r := c.Call(context.Background(), srv.URL, nil)
			if !r.OK || n.Load() != 2 {
				t.Fatalf("result %+v after %d requests", r, n.Load())
			}
			if got := rec.got(); !slices.Equal(got, []time.Duration{tc.want}) {
				t.Errorf("slept %v, want [%v]", got, tc.want)
			}
		})
	}

	// 429 counts as a try: the last one ends the call without a wait.
	srv, n := newServer(t, limited(map[string]string{"X-Rate-Limit-Reset": "7"}))
	c, rec := newCaller(t, Options{Tries: 2, RateLimitHeaders: []string{"X-Rate-Limit-Reset"}})
	if r := c.Call(context.Background(), srv.URL, nil); !r.Unavailable || n.Load() != 2 {
		t.Fatalf("result %+v after %d requests", r, n.Load())
	}
	if got := rec.got(); !slices.Equal(got, []time.Duration{7 * time.Second}) {
		t.Errorf("slept %v", got)
	}
}

func TestCallBasicAuthNotLogged(t *testing.T) {
	var n atomic.Int32
	var user, pass string
	var hadAuth bool
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, hadAuth = r.BasicAuth()
		path = r.URL.Path
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, _ := newCaller(t, Options{Tries: 2, Logger: log})
	u := strings.Replace(srv.URL, "http://", "http://alice:s3cr%40t@", 1) + "/cb/"
	if r := c.Call(context.Background(), u, nil); !r.OK {
		t.Fatalf("result %+v", r)
	}
	if !hadAuth || user != "alice" || pass != "s3cr@t" || path != "/cb/" {
		t.Errorf("server saw auth=%v %q %q path %q", hadAuth, user, pass, path)
	}

	// Every failure path that logs a URL.
	c.Call(context.Background(), "http://bob:hunter2@[::1/", nil)
	c.Call(context.Background(), "ftp://bob:hunter2@example.com/", nil)
	c.Call(context.Background(), "http://bob:hunter2@127.0.0.1:1/", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Call(ctx, u, nil)

	out := logs.String()
	if !strings.Contains(out, "xxxxx@127.0.0.1") || strings.Count(out, "level=WARN") < 4 {
		t.Errorf("expected redacted warnings, got:\n%s", out)
	}
	for _, secret := range []string{"s3cr", "alice", "hunter2", "bob"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"http://host/a@b":               "http://xxxxx@b",
		"http://host/path":              "http://host/path",
		"http://u:p@host/x":             "http://xxxxx@host/x",
		"https://u:p/q@host":            "https://xxxxx@host",
		"u:p@host":                      "xxxxx@host",
		"http://u:p@h:1/x?y=1#@z":       "http://xxxxx@z",
		"http://user@example.com:80/cb": "http://xxxxx@example.com:80/cb",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCallTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"ok","data":1}`)
	}))
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the untrusted handshake below fails on purpose
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	c, _ := newCaller(t, Options{Tries: 1, CAFile: ca})
	if r := c.Call(context.Background(), srv.URL, nil); !r.OK || string(r.Data) != "1" {
		t.Fatalf("trusted: %+v", r)
	}
	untrusted, _ := newCaller(t, Options{Tries: 1})
	if r := untrusted.Call(context.Background(), srv.URL, nil); !r.Unavailable {
		t.Fatalf("untrusted: %+v", r)
	}

	if _, err := NewHTTPCaller(Options{CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Error("missing CA file accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a cert"), 0o600)
	if _, err := NewHTTPCaller(Options{CAFile: junk}); err == nil {
		t.Error("CA file without certificates accepted")
	}
}

// A server that closes each connection after its response without saying
// "Connection: close" leaves the client a dead keep-alive connection; using
// it must cost neither a try nor a wait.
func TestCallStaleKeepAlive(t *testing.T) {
	var requests, conns atomic.Int32
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.ReadAll(r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		body := `{"status":"ok"}`
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n" + body)
		buf.Flush()
		conn.Close()
		closed <- struct{}{}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c, rec := newCaller(t, Options{Tries: 1})
	for i := range 5 {
		if r := c.Call(context.Background(), srv.URL, []byte(`{}`)); !r.OK {
			t.Fatalf("call %d: %+v", i, r)
		}
		// On loopback the server's FIN is in the client's socket once its
		// close returned.
		<-closed
	}
	if requests.Load() != 5 || conns.Load() != 5 {
		t.Errorf("%d requests on %d connections, want 5 on 5", requests.Load(), conns.Load())
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("slept %v", got)
	}
}

// After a backend restart every pooled connection is dead; one call must
// not have to wade through them try by try.
func TestCallAllIdleConnectionsDead(t *testing.T) {
	release := make(chan struct{})
	var inFlight sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			inFlight.Done()
			<-release
		}
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	c, rec := newCaller(t, Options{Tries: 1})

	// Four concurrent calls leave four idle connections in the pool.
	var calls sync.WaitGroup
	inFlight.Add(4)
	for range 4 {
		calls.Go(func() { c.Call(context.Background(), srv.URL+"/hold", nil) })
	}
	inFlight.Wait()
	close(release)
	calls.Wait()

	// Returns once every connection is closed.
	srv.CloseClientConnections()
	for i := range 4 {
		if r := c.Call(context.Background(), srv.URL, nil); !r.OK {
			t.Fatalf("call %d after the restart: %+v", i, r)
		}
	}
	if got := rec.got(); len(got) != 0 {
		t.Errorf("slept %v", got)
	}
}

func TestFromConfig(t *testing.T) {
	c, err := FromConfig(config.HTTP{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != 15*time.Second || c.tries != 3 || c.wait != 0 || !slices.Equal(c.rateLimits, []string{"X-Rate-Limit-Reset"}) {
		t.Errorf("defaults: %v %d %v %v", c.timeout, c.tries, c.wait, c.rateLimits)
	}
	c, err = FromConfig(config.HTTP{Timeout: 1.5, Tries: 2, Wait: 0.5, RateLimitResetHeaderNames: []string{}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != 1500*time.Millisecond || c.tries != 2 || c.wait != 500*time.Millisecond || len(c.rateLimits) != 0 {
		t.Errorf("set: %v %d %v %v", c.timeout, c.tries, c.wait, c.rateLimits)
	}
}

func BenchmarkCall(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"status":"ok","data":{"title":"x"},"user_id":"u1"}`)
	}))
	defer srv.Close()
	c, _ := newCaller(b, Options{Tries: 1})
	body := []byte(`{"subscription":"books.book_1","user_id":"u1"}`)
	ctx := context.Background()
	url := srv.URL + "/cb/"
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Call(ctx, url, body); !r.OK {
			b.Fatalf("%+v", r)
		}
	}
}
