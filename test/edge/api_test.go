package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

type apiResp struct {
	status int
	body   map[string]any
	raw    string
}

func post(t *testing.T, url, auth, body string) apiResp {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

func get(t *testing.T, url string) apiResp {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) apiResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResp{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// expectError checks an error status with a JSON reason.
func (r apiResp) expectError(t *testing.T, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.raw, status)
	}
	if reason, _ := r.body["error"].(string); reason == "" || r.body["status"] != "error" {
		t.Fatalf("%d without a JSON reason: %s", status, r.raw)
	}
}

func TestPublishAPI(t *testing.T) {
	t.Parallel()
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	})
	url := "http://" + srv.APIAddr() + "/publish"
	rc := open(t, srv)
	rc.send(`{"event":"subscribe","subscription":"demo.api"}`)
	if m := rc.nextJSON(); m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}

	if r := post(t, url, "", `{"subscription":"demo.api","data":{"k":"v"}}`); r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("publish: %d %s", r.status, r.raw)
	}
	if m := rc.nextJSON(); m["event"] != "message" || m["subscription"] != "demo.api" || m["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("published message: %v", m)
	}

	post(t, url, "", `{"subscription":"demo.api","data":`).expectError(t, 400)
	post(t, url, "", `not json`).expectError(t, 400)
	post(t, url, "", `["subscription","data"]`).expectError(t, 400)
	post(t, url, "", `{"data":1}`).expectError(t, 400)
	post(t, url, "", `{"subscription":"demo.api"}`).expectError(t, 400)
	post(t, url, "", `{"subscription":"","data":1}`).expectError(t, 400)

	big := `{"subscription":"demo.api","data":"` + strings.Repeat("x", 1<<20) + `"}`
	post(t, url, "", big).expectError(t, 413)

	// Nothing the API refused reached the subscriber.
	rc.ping("quiet")

	if r := get(t, "http://"+srv.APIAddr()+"/healthz"); r.status != 200 {
		t.Fatalf("/healthz: %d %s", r.status, r.raw)
	}
	if r := get(t, "http://"+srv.APIAddr()+"/readyz"); r.status != 200 {
		t.Fatalf("/readyz: %d %s", r.status, r.raw)
	}
}

func TestPublishAPIToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(c *cfgT) { c.API.Token = "s3cret" })
	url := "http://" + srv.APIAddr() + "/publish"
	body := `{"subscription":"demo.x","data":1}`
	post(t, url, "", body).expectError(t, 401)
	post(t, url, "Bearer wrong", body).expectError(t, 401)
	post(t, url, "s3cret", body).expectError(t, 401)
	post(t, url, "Bearer s3cret2", body).expectError(t, 401)
	if r := post(t, url, "Bearer s3cret", body); r.status != 200 {
		t.Fatalf("right token: %d %s", r.status, r.raw)
	}
	// The token is checked before the body.
	post(t, url, "", `not json`).expectError(t, 401)
}

// /readyz turns 503 as soon as Shutdown begins, while sessions still drain.
func TestReadyzWhileDraining(t *testing.T) {
	t.Parallel()
	svc := e2e.NewService(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}) // runs before svc's own cleanup
	svc.ReplyFunc("/before_unsubscribe", func(e2e.Call) (int, string) {
		entered <- struct{}{}
		<-release
		return 200, `{"status":"ok"}`
	})
	no := false
	srv := startServer(t, func(c *cfgT) {
		c.HTTP.Timeout = 10
		c.Services["demo"] = &config.Service{RequireAuthentication: &no, BeforeUnsubscribe: svc.URL("/before_unsubscribe")}
	})
	c := e2e.Dial(t, srv)
	if m := c.Roundtrip(`{"event":"subscribe","subscription":"demo.r"}`); m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	if r := get(t, "http://"+srv.APIAddr()+"/readyz"); r.status != 200 {
		t.Fatalf("/readyz before shutdown: %d", r.status)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("before_unsubscribe not called on shutdown")
	}
	if r := get(t, "http://"+srv.APIAddr()+"/readyz"); r.status != 503 {
		t.Fatalf("/readyz while draining: %d %s, want 503", r.status, r.raw)
	}
	if r := get(t, "http://"+srv.APIAddr()+"/healthz"); r.status != 200 {
		t.Fatalf("/healthz while draining: %d %s, want 200 (alive)", r.status, r.raw)
	}
	// No new connection is admitted while draining: refused, or 503.
	if nc, err := net.DialTimeout("tcp", srv.Addr(), wait); err == nil {
		rc := &rawConn{t: t, c: nc.(*net.TCPConn), r: bufio.NewReader(nc)}
		t.Cleanup(func() { _ = nc.Close() })
		rc.write([]byte(upgradeRequest(newKey())))
		if resp, body := rc.response(); resp.StatusCode != 503 {
			t.Fatalf("upgrade while draining: %s %q, want 503", resp.Status, body)
		}
		rc.expectEOF()
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Shutdown did not return")
	}
}

func getAuth(t *testing.T, url, auth string) apiResp {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

// /debug/pprof is not served unless debug.pprof is on, and then only with
// the API token when one is set: profiles expose memory and the command line.
func TestPprofGuarded(t *testing.T) {
	t.Parallel()
	paths := []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline", "/debug/pprof/symbol"}

	if config.Default().Debug.Pprof {
		t.Fatal("debug.pprof is on by default")
	}
	off := startServer(t, func(c *cfgT) { c.Debug.Pprof = false })
	for _, p := range paths {
		if r := get(t, "http://"+off.APIAddr()+p); r.status != 404 {
			t.Errorf("pprof off: GET %s = %d, want 404", p, r.status)
		}
	}

	on := startServer(t, func(c *cfgT) { c.Debug.Pprof = true; c.API.Token = "s3cret" })
	for _, p := range paths {
		url := "http://" + on.APIAddr() + p
		getAuth(t, url, "").expectError(t, 401)
		getAuth(t, url, "Bearer wrong").expectError(t, 401)
		getAuth(t, url, "s3cret").expectError(t, 401)
		if r := getAuth(t, url, "Bearer s3cret"); r.status != 200 {
			t.Errorf("pprof with token: GET %s = %d %.200s, want 200", p, r.status, r.raw)
		}
	}

	// No token configured: the API is trusted by its bind address alone, as
	// POST /publish is.
	open := startServer(t, func(c *cfgT) { c.Debug.Pprof = true })
	if r := get(t, "http://"+open.APIAddr()+"/debug/pprof/cmdline"); r.status != 200 {
		t.Errorf("pprof on, no token: %d, want 200", r.status)
	}
}
