// Package browser runs mako.js's node tests and the real-Chromium tests of
// mako.js and /demo against a real mako. The JavaScript side drives; this
// side starts mako, the services it calls, and a control endpoint through
// which the JavaScript restarts mako or reads what the services saw.
//
// Environment: MAKO_SKIP_BROWSER=1 skips these tests (only that skips
// them: a missing node, npm package or chromium is a failure, so that CI
// cannot go green without running them; .ci/run installs all three).
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"mako/config"
	"mako/internal/e2e"
	"mako/server"
)

// jsTimeout bounds one node run; the tests inside bound their own waits.
const jsTimeout = 60 * time.Second

// harness is a mako on fixed ports that the JavaScript side can restart,
// plus the services it calls.
type harness struct {
	t       *testing.T
	cfg     *config.Config
	mu      sync.Mutex // srv: held across a restart
	srv     *server.Server
	rec     sync.Mutex // calls, conns: never held while mako runs a step, so a restart cannot wait on it
	calls   []call     // requests to the services, in arrival order
	conns   map[string]int
	control *httptest.Server
}

type call struct {
	Path string         `json:"path"`
	Body map[string]any `json:"body"`
}

func skipUnlessBrowser(t *testing.T) {
	t.Helper()
	if os.Getenv("MAKO_SKIP_BROWSER") == "1" {
		t.Skip("MAKO_SKIP_BROWSER=1")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the browser tests run on Linux (Debian's chromium)")
	}
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, conns: map[string]int{}}
	svc := httptest.NewServer(http.HandlerFunc(h.service))
	t.Cleanup(svc.Close)

	cfg := e2e.Config()
	ports := freePorts(t, 2)
	cfg.WS.Port, cfg.API.Port = ports[0], ports[1]
	cfg.WS.Compression = true
	cfg.Limits.DrainTimeout = 5
	cfg.Authentication.Ticket = &config.Ticket{ValidationURL: svc.URL + "/auth", AuthFields: []string{"user_id"}}
	no := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &no}
	cfg.Services["books"] = &config.Service{
		ExtraFields:     []string{"lang"},
		BeforeSubscribe: svc.URL + "/before_subscribe",
		OnMessage:       svc.URL + "/on_message",
	}
	h.cfg = cfg
	h.start()
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.stop()
	})
	h.control = httptest.NewServer(http.HandlerFunc(h.serveControl))
	t.Cleanup(h.control.Close)
	return h
}

// service answers mako's calls: ticket "good" authenticates as user_1,
// before_subscribe echoes the extra field, on_message echoes the data.
func (h *harness) service(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	h.rec.Lock()
	h.calls = append(h.calls, call{r.URL.Path, body})
	h.rec.Unlock()
	reply := map[string]any{"status": "ok"}
	switch r.URL.Path {
	case "/auth":
		if body["ticket"] == "good" {
			reply["user_id"] = "user_1"
		} else {
			reply = map[string]any{"status": "error", "error": "Bad ticket."}
		}
	case "/before_subscribe":
		reply["data"] = map[string]any{"lang": body["lang"]}
	case "/on_message":
		reply["data"] = map[string]any{"echo": body["data"]}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

func (h *harness) start() {
	h.t.Helper()
	if err := h.cfg.Validate(); err != nil {
		h.t.Fatalf("config: %v", err)
	}
	srv, err := server.New(h.cfg, server.Options{Logger: e2e.Logger(h.t)})
	if err != nil {
		h.t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		h.t.Fatalf("server.Start: %v", err)
	}
	h.srv = srv
}

func (h *harness) stop() {
	if h.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
	h.srv = nil
}

// serveControl is the JavaScript side's handle on this process:
//
//	POST /restart        shut mako down (clients get 1001), start it again on the same ports
//	GET  /calls          the service calls so far, [{path, body}], in order
//	GET  /conns/KEY      how many WebSocket connections /close/… and /silent got under KEY
//	WS   /close/CODE/KEY accept, then close with CODE (a peer that is not mako, for close-code handling)
//	WS   /silent/KEY     accept and never answer (a dead peer, for liveness)
func (h *harness) serveControl(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && parts[0] == "restart":
		h.mu.Lock()
		h.stop()
		h.start()
		h.mu.Unlock()
		_, _ = io.WriteString(w, "{}")
	case parts[0] == "calls":
		h.rec.Lock()
		b, _ := json.Marshal(h.calls)
		h.rec.Unlock()
		_, _ = w.Write(b)
	case parts[0] == "conns" && len(parts) == 2:
		h.rec.Lock()
		n := h.conns[parts[1]]
		h.rec.Unlock()
		_, _ = io.WriteString(w, strconv.Itoa(n))
	case parts[0] == "close" && len(parts) == 3:
		code, err := strconv.Atoi(parts[1])
		if err != nil {
			http.Error(w, "bad code", http.StatusBadRequest)
			return
		}
		c := h.accept(w, r, parts[2])
		if c == nil {
			return
		}
		_ = c.Close(websocket.StatusCode(code), "test close")
	case parts[0] == "silent" && len(parts) == 2:
		c := h.accept(w, r, parts[1])
		if c == nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (h *harness) accept(w http.ResponseWriter, r *http.Request, key string) *websocket.Conn {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	h.rec.Lock()
	h.conns[key]++
	h.rec.Unlock()
	return c
}

// env is what the JavaScript side reads.
func (h *harness) env() []string {
	return append(os.Environ(),
		"MAKO_WS_URL=ws://"+h.cfg.WS.Host+":"+strconv.Itoa(h.cfg.WS.Port),
		"MAKO_API_URL=http://"+h.cfg.API.Host+":"+strconv.Itoa(h.cfg.API.Port),
		"MAKO_CONTROL_URL="+h.control.URL,
	)
}

// runNode runs node with args in dir and fails the test with its output
// when it fails.
func runNode(t *testing.T, h *harness, dir string, args ...string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required (MAKO_SKIP_BROWSER=1 skips): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = h.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if testing.Verbose() || err != nil {
		t.Logf("node %s:\n%s", strings.Join(args, " "), out.String())
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			t.Fatalf("node %s failed: %v", strings.Join(args, " "), err)
		}
		t.Fatalf("node: %v", err)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// freePorts returns n distinct ports free on 127.0.0.1 right now (mako
// restarts on the same ones, so they are fixed, not 0).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
