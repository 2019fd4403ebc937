package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// The exact error strings of protocol.md.
const (
	errInvalidEvent  = "Messages must be JSON and contain an event field."
	errEventNotFound = "Event not found."
	errAuthMethod    = "Authentication method unsupported."
	errNeedsTicket   = "Must specify ticket."
	errAuthFailed    = "Authentication failed."
	errAuthRequired  = "Authentication required."
	errUnauthorized  = "Unauthorized."
	errSubFormat     = "Invalid subscription format."
	errInvalidSvc    = "Invalid service."
	errAlreadySub    = "Already subscribed."
	errSubNotFound   = "Subscription does not exist."
	errUnavailable   = "Service unavailable."
	errUnhandled     = "Unhandled exception."
)

// fixture is one mako server with one recording service behind every URL
// (told apart by path) and ticket authentication that, by default, answers
// {"status":"ok","user_id":"u1","session_id":"s1"}.
type fixture struct {
	t    *testing.T
	svc  *e2e.Service
	cfg  *config.Config
	srv  *server.Server
	opts []func(*server.Options) // set by mod, e.g. a fake clock

	clock *e2e.FakeClock // set by a mod that puts the server on a fake clock
}

// newFixture builds the fixture; mod adjusts the config (and service
// replies) before the server starts.
func newFixture(t *testing.T, mod func(f *fixture)) *fixture {
	t.Helper()
	f := &fixture{t: t, svc: e2e.NewService(t), cfg: e2e.Config()}
	f.cfg.Authentication.Ticket = &config.Ticket{
		ValidationURL: f.svc.URL("/auth"),
		AuthFields:    []string{"user_id", "session_id"},
	}
	f.svc.Reply("/auth", `{"status":"ok","user_id":"u1","session_id":"s1"}`)
	if mod != nil {
		mod(f)
	}
	f.srv = e2e.StartServer(t, f.cfg, f.opts...)
	return f
}

// singleLoop runs the fixture's server on one event loop (see publishSeen).
func singleLoop(f *fixture) {
	f.opts = append(f.opts, func(o *server.Options) { o.Loops = 1 })
}

// url is the service URL of a path.
func (f *fixture) url(path string) string { return f.svc.URL(path) }

func (f *fixture) dial() *e2e.Client {
	f.t.Helper()
	return e2e.Dial(f.t, f.srv)
}

// login authenticates c with the default /auth reply and consumes the call.
func (f *fixture) login(c *e2e.Client) {
	f.t.Helper()
	expectJSON(f.t, c.Roundtrip(`{"event":"auth","ticket":"tk"}`), `{"event":"auth","status":"ok"}`)
	f.call("/auth", `{"ticket":"tk"}`)
}

// authed dials and logs in.
func (f *fixture) authed() *e2e.Client {
	f.t.Helper()
	c := f.dial()
	f.login(c)
	return c
}

// call asserts the next service call is to path with exactly body (JSON);
// an empty body skips the body check. It returns the decoded body.
func (f *fixture) call(path, body string) map[string]any {
	f.t.Helper()
	c := f.svc.Next(f.t)
	if c.Path != path {
		f.t.Fatalf("next service call is %s %s, want %s %s", c.Path, c.Raw, path, body)
	}
	if body != "" {
		if c.Body == nil {
			f.t.Fatalf("call %s: body is not a JSON object: %s", path, c.Raw)
		}
		expectJSONMsg(f.t, "call "+path+" body", c.Body, body)
	}
	return c.Body
}

// nextCall returns the next call whatever its path.
func (f *fixture) nextCall() e2e.Call {
	f.t.Helper()
	return f.svc.Next(f.t)
}

// publish posts body through the publish API (status 200 required).
func (f *fixture) publish(body string) {
	f.t.Helper()
	e2e.Publish(f.t, f.srv, body)
}

// publishStatus posts body and returns the API's status code.
func (f *fixture) publishStatus(body string) int {
	f.t.Helper()
	resp, err := http.Post("http://"+f.srv.APIAddr()+"/publish", "application/json", strings.NewReader(body))
	if err != nil {
		f.t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// publishSeen publishes body and waits until obs (a session subscribed to
// the same channel, whose frames carry the data) received it. On a server
// with one event loop (singleLoop), once obs has it every session has been
// offered it, so it can no longer reach a session that subscribes
// afterwards. (With several loops the Hub hands a message to the loops one
// after another, so obs's loop may be ahead of another's.)
func (f *fixture) publishSeen(obs *e2e.Client, body string) {
	f.t.Helper()
	f.publish(body)
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		f.t.Fatalf("publishSeen: %v", err)
	}
	m := obs.Recv()
	if m["event"] != "message" || !reflect.DeepEqual(m["data"], p["data"]) {
		f.t.Fatalf("observer: got %v, want the message with data %v", m, p["data"])
	}
}

// expectJSON compares a decoded frame with want (a JSON object) as a whole:
// same keys, same values.
func expectJSON(t testing.TB, got map[string]any, want string) {
	t.Helper()
	expectJSONMsg(t, "frame", got, want)
}

func expectJSONMsg(t testing.TB, what string, got map[string]any, want string) {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %q: %v", want, err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("%s:\n got  %s\n want %s", what, enc(got), enc(w))
	}
}

func enc(v any) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
	return strings.TrimSpace(b.String())
}

// isoUTC is an ISO-8601 timestamp with a +00:00 offset, as Python's
// datetime.isoformat() writes an aware UTC time.
var isoUTC = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$`)

func parseISO(t testing.TB, key string, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok || !isoUTC.MatchString(s) {
		t.Fatalf("%s = %#v, want an ISO-8601 time with +00:00", key, v)
	}
	ts, err := time.Parse("2006-01-02T15:04:05.999999-07:00", s)
	if err != nil {
		t.Fatalf("%s = %q: %v", key, s, err)
	}
	return ts
}

// expectLive checks a published message delivered as it arrived: it must
// carry received_at, queue_size (integer ≥ 0) and sent_at, and apart from
// them equal want.
func expectLive(t testing.TB, got map[string]any, want string) {
	t.Helper()
	g := clone(got)
	recv := parseISO(t, "received_at", g["received_at"])
	sent := parseISO(t, "sent_at", g["sent_at"])
	if sent.Before(recv) {
		t.Fatalf("sent_at %v before received_at %v", sent, recv)
	}
	q, ok := g["queue_size"].(float64)
	if !ok || q < 0 || q != math.Trunc(q) {
		t.Fatalf("queue_size = %#v, want an integer ≥ 0 in %s", g["queue_size"], enc(got))
	}
	delete(g, "received_at")
	delete(g, "sent_at")
	delete(g, "queue_size")
	expectJSONMsg(t, "live message", g, want)
}

// expectLate checks a message sent later than it arrived (held during the
// provisional window, or a throttle window's trailing message): sent_at
// only.
func expectLate(t testing.TB, got map[string]any, want string) {
	t.Helper()
	g := clone(got)
	parseISO(t, "sent_at", g["sent_at"])
	for _, k := range []string{"received_at", "queue_size", "published_at"} {
		if _, ok := g[k]; ok {
			t.Fatalf("late message has %s: %s", k, enc(got))
		}
	}
	delete(g, "sent_at")
	expectJSONMsg(t, "late message", g, want)
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// gate blocks service handlers until the test opens it. entered gets a
// value each time a handler starts waiting.
type gate struct {
	ch      chan struct{}
	once    sync.Once
	entered chan struct{}
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{}), entered: make(chan struct{}, 64)}
	t.Cleanup(g.open)
	return g
}

// wait is called from a handler; the timeout only keeps a failed test from
// hanging the service's shutdown.
func (g *gate) wait() {
	g.entered <- struct{}{}
	select {
	case <-g.ch:
	case <-time.After(e2e.Timeout):
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// waitEntered waits until a handler is blocked on the gate.
func (g *gate) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(e2e.Timeout):
		t.Fatalf("no handler reached the gate within %v", e2e.Timeout)
	}
}

// sequence replies with the bodies in turn; the last one repeats.
func sequence(bodies ...string) func(e2e.Call) (int, string) {
	var mu sync.Mutex
	i := 0
	return func(e2e.Call) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		b := bodies[i]
		if i < len(bodies)-1 {
			i++
		}
		return 200, b
	}
}

// ev builds a client event: {"event":event,"subscription":name,kv...}
// (name "" leaves subscription out).
func ev(event, name string, kv ...any) string {
	m := map[string]any{"event": event}
	if name != "" {
		m["subscription"] = name
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return enc(m)
}

type clientT = e2e.Client

func boolp(b bool) *bool { return &b }
