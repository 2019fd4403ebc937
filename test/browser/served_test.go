package browser

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"mako/internal/e2e"
)

// TestServedAssets checks what mako serves to browsers on the API port:
// mako.js byte for byte as a JavaScript module, and /demo pointing at the
// WebSocket listener. It needs no browser, so MAKO_SKIP_BROWSER does not
// skip it.
func TestServedAssets(t *testing.T) {
	srv := e2e.StartServer(t, e2e.Config())
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.APIAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	resp, body := get("/mako.js")
	want, err := os.ReadFile("../../client/js/mako.js")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body != string(want) {
		t.Fatalf("/mako.js: %d, %d bytes; want 200 and client/js/mako.js (%d bytes)", resp.StatusCode, len(body), len(want))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Fatalf("/mako.js Content-Type %q: browsers refuse a module that is not JavaScript", ct)
	}

	resp, body = get("/demo?subscription=demo.x")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/demo: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `<meta name="mako-ws" content="`+srv.Addr()+`">`) || strings.Contains(body, "{{WS}}") {
		t.Fatalf("/demo does not name the listener %s:\n%s", srv.Addr(), body)
	}
	if !strings.Contains(body, `from '/mako.js'`) {
		t.Fatal("/demo does not load /mako.js")
	}
	if resp, _ := get("/mako.jsx"); resp.StatusCode != 404 {
		t.Fatalf("/mako.jsx: %d", resp.StatusCode)
	}
}
