// Package service calls services' HTTP endpoints the way SocketShark does
// (../../../shared/spec/protocol.md, "HTTP calls to services") and runs those
// calls on a bounded pool so that an event loop never waits for a service.
package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"mako/config"
	"mako/internal/logx"
	"mako/protocol"
)

// ServiceUnavailable is the error a call reports when every try failed, as
// SocketShark's http_post does.
const ServiceUnavailable = "Service unavailable."

// Result is a service's reply, decoded once so callers only pick fields.
type Result struct {
	// OK is true when the reply's "status" is the string "ok".
	OK bool
	// Error is the reply's "error" when it is a non-empty string, and
	// ServiceUnavailable when every try failed; "" otherwise.
	Error string
	// Data is the reply's "data" verbatim (JSON null included), nil when
	// the key is absent.
	Data json.RawMessage
	// Fields holds every top-level key of the reply, for authorizer_fields
	// and auth_fields. Nil when Unavailable or Broken.
	Fields map[string]json.RawMessage
	// Unavailable is set when every try failed; the reply then counts as
	// {"status":"error","error":"Service unavailable."}.
	Unavailable bool
	// Broken is set when a 2xx reply is not a JSON object; the client gets
	// "Unhandled exception." for the event.
	Broken bool
	// Failure says why an Unavailable call failed, from its last try (for
	// the call latency metric's outcome label; the client sees the same
	// "Service unavailable." whatever it is).
	Failure Failure
}

// Failure classifies the last try of an Unavailable call.
type Failure uint8

const (
	// FailOther: connection refused or reset, a non-2xx status other than
	// 429, a bad URL, a call abandoned, or refused by the pool unsent.
	FailOther Failure = iota
	// FailTimeout: the last try timed out (dial, write or read).
	FailTimeout
	// FailRateLimited: the last try was answered 429.
	FailRateLimited
)

// Caller is the seam between the session logic and the services, so the
// server can be tested against httptest servers or something else entirely.
type Caller interface {
	Call(ctx context.Context, url string, body []byte) Result
}

// Guarded is a Caller with a circuit breaker per URL (see breaker). The
// server asks Admit before it queues a call, so a call to an open breaker
// costs neither a pool slot nor a connection attempt; an admitted call runs
// through CallTicket, which gives the ticket back. A ticket whose call is
// never made must be Released.
type Guarded interface {
	Caller
	// Admit returns false when url's breaker refuses calls now (open, or
	// half-open with its trial out); the call then counts as Unavailable.
	Admit(url string) (Ticket, bool)
	// CallTicket is Call for a call Admit admitted.
	CallTicket(ctx context.Context, t Ticket, url string, body []byte) Result
}

var _ Guarded = (*HTTPCaller)(nil)

// Options configures an HTTPCaller. Zero values get SocketShark's defaults
// where a zero would be harmful (no timeout, no try).
type Options struct {
	// Timeout bounds one try (dial, write and read). Default 15s.
	Timeout time.Duration
	// Tries is the number of tries per call. Default 3.
	Tries int
	// Wait is the pause between tries (0 = none).
	Wait time.Duration
	// CAFile is a PEM bundle trusted for https URLs on top of the system
	// roots.
	CAFile string
	// RateLimitHeaders are read, in order, on HTTP 429 for the seconds to
	// wait before the next try.
	RateLimitHeaders []string
	// Logger receives a warning per failed try. Nil discards.
	Logger *slog.Logger
	// Sleep waits between tries; tests replace it to record the waits
	// instead of spending them. Default: a timer that ctx can cut short.
	Sleep func(ctx context.Context, d time.Duration) error
	// BreakerFailures is the number of consecutive failed calls (every
	// try failed: transport error, timeout, 5xx, 429) that open a URL's
	// circuit breaker; 0 disables the breakers.
	BreakerFailures int
	// BreakerCooldown is how long a breaker stays open before one trial
	// call; each failed trial doubles it up to BreakerMaxCooldown. Default
	// 5s; BreakerMaxCooldown below it counts as it.
	BreakerCooldown, BreakerMaxCooldown time.Duration
	// Now is a monotonic reading for the cool-downs; tests pass a fake
	// one. Default: time since the caller was made.
	Now func() time.Duration
}

// HTTPCaller calls services over HTTP/1.1 with keep-alive connections.
// It is safe for concurrent use.
type HTTPCaller struct {
	timeout    time.Duration
	tries      int
	wait       time.Duration
	rateLimits []string
	log        *slog.Logger
	sleep      func(ctx context.Context, d time.Duration) error
	tlsConfig  *tls.Config
	breakers   breakerPolicy

	mu      sync.Mutex
	clients map[string]*fasthttp.HostClient // by scheme://host

	// targets caches what each URL needs per call (host client, clean URI,
	// auth header, redacted form): service URLs come from the config, so
	// the set is small and parsing once keeps the hot path allocation-light.
	targets  sync.Map // string -> *target
	ntargets atomic.Int32
}

// maxTargets bounds the URL cache should URLs ever come from somewhere
// other than the config; past it URLs are parsed per call and have no
// circuit breaker (breakers live in the cache, so their number is bounded
// too).
const maxTargets = 4096

type target struct {
	hc       *fasthttp.HostClient
	uri      string // the URL without user info
	auth     string // "Basic …" from the URL's user info, or ""
	redacted string // for logs
	err      error
	br       *breaker // nil when breakers are off or the URL is invalid
}

// FromConfig builds an HTTPCaller from the config's http block. An absent
// rate_limit_reset_header_names means SocketShark's X-Rate-Limit-Reset; an
// empty list means none.
// now is the monotonic clock of the breakers' cool-downs (nil = real time).
func FromConfig(c config.HTTP, log *slog.Logger, now func() time.Duration) (*HTTPCaller, error) {
	headers := c.RateLimitResetHeaderNames
	if headers == nil {
		headers = []string{"X-Rate-Limit-Reset"}
	}
	return NewHTTPCaller(Options{
		Timeout:            c.Timeout.Duration(),
		Tries:              c.Tries,
		Wait:               c.Wait.Duration(),
		CAFile:             c.CAFile,
		RateLimitHeaders:   headers,
		Logger:             log,
		BreakerFailures:    c.BreakerFailures,
		BreakerCooldown:    c.BreakerCooldown.Duration(),
		BreakerMaxCooldown: c.BreakerMaxCooldown.Duration(),
		Now:                now,
	})
}

// NewHTTPCaller returns a caller; it fails only when CAFile cannot be used.
func NewHTTPCaller(o Options) (*HTTPCaller, error) {
	c := &HTTPCaller{
		timeout:    o.Timeout,
		tries:      o.Tries,
		wait:       max(o.Wait, 0),
		rateLimits: append([]string(nil), o.RateLimitHeaders...),
		log:        o.Logger,
		sleep:      o.Sleep,
		clients:    make(map[string]*fasthttp.HostClient),
	}
	if c.timeout <= 0 {
		c.timeout = 15 * time.Second
	}
	if c.tries <= 0 {
		c.tries = 3
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	c.breakers = breakerPolicy{
		failures:    max(o.BreakerFailures, 0),
		cooldown:    o.BreakerCooldown,
		maxCooldown: o.BreakerMaxCooldown,
		now:         o.Now,
		log:         c.log,
	}
	if c.breakers.cooldown <= 0 {
		c.breakers.cooldown = 5 * time.Second
	}
	if c.breakers.now == nil {
		start := time.Now()
		c.breakers.now = func() time.Duration { return time.Since(start) }
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("http.ca_file: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.ca_file: %s holds no PEM certificate", o.CAFile)
		}
		c.tlsConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return c, nil
}

// Close drops idle keep-alive connections. Calls in flight are unaffected.
func (c *HTTPCaller) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hc := range c.clients {
		hc.CloseIdleConnections()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Call POSTs body to url and returns the decoded reply. body must not change
// until Call returns (it is sent without a copy).
//
// fasthttp cannot abort a request in flight, so ctx is honoured between
// tries and caps each try's timeout at ctx's deadline; a cancelled ctx ends
// the call as Unavailable.
//
// With breakers on, a call to an open breaker returns Unavailable at once
// (see Admit).
func (c *HTTPCaller) Call(ctx context.Context, url string, body []byte) Result {
	tk, ok := c.Admit(url)
	if !ok {
		return unavailable()
	}
	return c.CallTicket(ctx, tk, url, body)
}

// Admit asks url's breaker whether a call may go now (see Guarded). An
// invalid URL is admitted: its call fails without a try, as before.
func (c *HTTPCaller) Admit(url string) (Ticket, bool) {
	return c.target(url).br.admit()
}

// CallTicket is Call for a call Admit admitted with tk, and reports the
// call's outcome to the breaker. Before every try it asks the breaker
// again, so a call that waited in the pool, or between tries, while the
// breaker opened ends without another connection attempt.
func (c *HTTPCaller) CallTicket(ctx context.Context, tk Ticket, url string, body []byte) Result {
	defer tk.Release()
	t := c.target(url)
	if t.err != nil {
		c.log.Warn("service call failed", logx.Session(ctx), "url", t.redacted, "error", t.err)
		return unavailable()
	}

	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(t.uri)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	if t.auth != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, t.auth)
	}
	req.SetBodyRaw(body)

	wait := c.wait
	last := unavailable()
	// live: some try got a reply that shows the service alive (not 5xx or
	// 429), so the call does not count against the breaker even when it
	// ends Unavailable.
	tried, live := false, false
	for try := 1; try <= c.tries; try++ {
		if try > 1 {
			if !tk.tryAllowed() {
				// Opened by other calls meanwhile: no point holding a
				// pool slot through the wait.
				return unavailable()
			}
			if err := c.sleep(ctx, wait); err != nil {
				c.log.Warn("service call abandoned", logx.Session(ctx), "url", t.redacted, "try", try, "error", err)
				return unavailable()
			}
		}
		wait = c.wait
		if !tk.tryAllowed() {
			// Logged once by the breaker's transition, not per call.
			return unavailable()
		}
		tried = true
		err := c.do(ctx, t, req, resp)
		if err != nil {
			c.log.Warn("service call failed", logx.Session(ctx), "url", t.redacted, "try", try, "tries", c.tries, "error", err)
			if ctx.Err() != nil {
				// Abandoned by the caller: says nothing of the service.
				return unavailable()
			}
			last.Failure = FailOther
			if isTimeout(err) {
				last.Failure = FailTimeout
			}
			continue
		}
		status := resp.StatusCode()
		if status == fasthttp.StatusTooManyRequests {
			wait = c.rateLimitWait(resp)
			c.log.Warn("service call failed", logx.Session(ctx), "url", t.redacted, "try", try, "tries", c.tries, "status", status, "wait", wait)
			last.Failure = FailRateLimited
			continue
		}
		if status >= 500 {
			c.log.Warn("service call failed", logx.Session(ctx), "url", t.redacted, "try", try, "tries", c.tries, "status", status)
			last.Failure = FailOther
			continue
		}
		live = true
		if status < 200 || status > 299 {
			c.log.Warn("service call failed", logx.Session(ctx), "url", t.redacted, "try", try, "tries", c.tries, "status", status)
			last.Failure = FailOther
			continue
		}
		tk.record(false)
		r := decode(resp.Body())
		if r.Broken {
			c.log.Warn("service reply is not a JSON object", logx.Session(ctx), "url", t.redacted, "status", status)
		}
		return r
	}
	if tried {
		tk.record(!live)
	}
	return last
}

func unavailable() Result { return Result{Error: ServiceUnavailable, Unavailable: true} }

// isTimeout reports a try that ran out of time: fasthttp's own timeouts,
// the context's deadline, or a net.Error timeout.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// do runs one try: one request that may reach the service. fasthttp may
// re-send it only when probedConn proved that no byte of it was written
// (see hostClient), so a service never sees a POST more often than Tries.
func (c *HTTPCaller) do(ctx context.Context, t *target, req *fasthttp.Request, resp *fasthttp.Response) error {
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	req.SetTimeout(timeout)
	return t.hc.Do(req, resp)
}

// rateLimitWait reads the first present rate-limit header: seconds in
// 0..3600, anything else falls back to Wait.
func (c *HTTPCaller) rateLimitWait(resp *fasthttp.Response) time.Duration {
	for _, name := range c.rateLimits {
		vs := resp.Header.PeekAll(name)
		if len(vs) == 0 {
			continue
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(string(vs[0])), 64)
		if err != nil || math.IsNaN(s) || s < 0 || s > 3600 {
			return c.wait
		}
		return time.Duration(s * float64(time.Second))
	}
	return c.wait
}

// decode turns a 2xx body into a Result, reading the JSON as SocketShark's
// resp.json() (json.loads of the UTF-8 text) reads it: NaN and Infinity
// accepted, lone surrogate escapes kept, the last of duplicated keys
// winning (docs/json.md). Anything but a JSON object, and a body that is
// not UTF-8, is Broken.
func decode(body []byte) Result {
	m, ok := protocol.DecodeObject(body)
	if !ok {
		return Result{Broken: true}
	}
	r := Result{Fields: m, Data: m["data"]}
	r.OK = jsonString(m["status"]) == "ok"
	r.Error = jsonString(m["error"])
	return r
}

// jsonString returns raw's value when it is a JSON string, "" otherwise. A
// lone surrogate escape is kept (see protocol.UnquoteString), so an error
// text echoed to the client carries the same escape.
func jsonString(raw json.RawMessage) string {
	s, _ := protocol.UnquoteString(raw)
	return s
}

func (c *HTTPCaller) target(raw string) *target {
	if v, ok := c.targets.Load(raw); ok {
		return v.(*target)
	}
	t := c.newTarget(raw)
	if c.ntargets.Load() < maxTargets {
		if v, loaded := c.targets.LoadOrStore(raw, t); loaded {
			return v.(*target)
		}
		c.ntargets.Add(1)
		return t
	}
	// Uncached, so its breaker would live for one call: none at all.
	t.br = nil
	return t
}

func (c *HTTPCaller) newTarget(raw string) *target {
	// redact, not raw, even when no user info parses: a password holding
	// an unescaped "/" makes url.Parse see it as part of the path.
	t := &target{redacted: redact(raw)}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, credentials included.
		t.err = errors.New("invalid URL")
		return t
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.err = errors.New("URL must be http:// or https:// with a host")
		return t
	}
	if u.User != nil {
		// As aiohttp: the URL's (decoded) user info becomes Basic auth.
		pw, _ := u.User.Password()
		t.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw))
		clean := *u
		clean.User = nil
		t.uri = clean.String()
		red := *u
		red.User = url.User("xxxxx")
		t.redacted = red.String()
	} else {
		t.uri = raw
	}
	t.hc = c.hostClient(u.Scheme, u.Host)
	if c.breakers.failures > 0 {
		t.br = newBreaker(&c.breakers, t.redacted)
	}
	return t
}

func (c *HTTPCaller) hostClient(scheme, host string) *fasthttp.HostClient {
	key := scheme + "://" + host
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.clients[key]; ok {
		return hc
	}
	isTLS := scheme == "https"
	hc := &fasthttp.HostClient{
		Addr:      fasthttp.AddMissingPort(host, isTLS),
		IsTLS:     isTLS,
		TLSConfig: c.tlsConfig,
		Name:      "mako",
		// fasthttp re-sends a failed request on its own only through
		// RetryIfErr below, and only when nothing of it left: a POST that
		// may have reached the service is re-sent by Call's counted tries
		// or not at all.
		MaxIdemponentCallAttempts: maxFreeRedials + 1,
		// Past the per-host connection cap a call waits for a connection
		// rather than failing at once.
		MaxConnWaitTimeout: c.timeout,
		// The service URL's path is sent as configured.
		DisablePathNormalizing: true,
		DialTimeout:            dialProbed,
	}
	hc.RetryIfErr = func(_ *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
		if !errors.Is(err, errStale) {
			return false, false
		}
		// The other idle connections to this host are most likely dead
		// too (the service restarted or its idle timeout passed): drop
		// them so the re-send dials rather than drawing another corpse.
		hc.CloseIdleConnections()
		return false, true
	}
	c.clients[key] = hc
	return hc
}

// redact hides a URL's user info for logs. It works on the raw string so a
// URL that does not parse is hidden too; it errs toward hiding: everything
// between "://" and the last "@" goes.
func redact(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		i = -3
	}
	rest := raw[i+3:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	return raw[:i+3] + "xxxxx" + rest[at:]
}

// maxFreeRedials bounds the re-sends of a request that provably never left
// (each on a connection found dead before use). After the first one the
// idle pool is emptied, so more are needed only when other calls return
// dead connections to the pool meanwhile.
const maxFreeRedials = 3

// errStale is what probedConn reports instead of writing a request on a
// pooled connection the service has already closed. No byte was written,
// so the request may be re-sent without counting a try.
var errStale = errors.New("keep-alive connection closed by the service before the request was written")

// dialProbed dials as fasthttp does by default (both IP families, bounded
// by timeout when > 0) and wraps the TCP connection in a probedConn; for
// https fasthttp adds TLS on top, so the probe sees the TCP state.
func dialProbed(addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	var err error
	if timeout > 0 {
		conn, err = fasthttp.DialDualStackTimeout(addr, timeout)
	} else {
		conn, err = fasthttp.DialDualStack(addr)
	}
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return conn, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return conn, nil
	}
	return &probedConn{Conn: conn, probe: newTCPProbe(raw)}, nil
}

// probedConn tells a request that provably never left from one that may
// have reached the service. HTTP/1.1 without pipelining alternates writes
// and reads on a connection, so the first Write after a Read starts a
// request on a reused connection; before any of its bytes go out, the TCP
// state is checked, and on a connection the service has closed that Write
// fails with errStale and nothing written. Every other failure may come
// after the service read the request and is never re-sent uncounted.
//
// fasthttp's pool hands a connection to one request at a time, so the flag
// needs no lock.
type probedConn struct {
	net.Conn
	probe  *tcpProbe
	reRead bool // a Read happened since the last Write
}

func (c *probedConn) Read(p []byte) (int, error) {
	c.reRead = true
	return c.Conn.Read(p)
}

func (c *probedConn) Write(p []byte) (int, error) {
	if c.reRead {
		c.reRead = false
		if c.probe.peerClosed() {
			return 0, errStale
		}
	}
	return c.Conn.Write(p)
}
