package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mako/protocol"
	"mako/pubsub"
)

// maxPublishBody caps POST /publish bodies (413 beyond).
const maxPublishBody = 1 << 20

// apiServer serves the publish API and health (config api) and /metrics
// (config metrics.prometheus, on its own listener), each only when
// configured. It is ordinary net/http: a handful of operator and service
// connections, not the edge.
type apiServer struct {
	addr        string // the API's host:port, "" without an api block
	metricsAddr string // the metrics listener's host:port, "" without one
	srv         *http.Server
	metrics     *http.Server
}

func newAPIServer(s *Server) (*apiServer, error) {
	a := &apiServer{}
	if s.cfg.API != nil {
		var err error
		if a.srv, a.addr, err = serve(net.JoinHostPort(s.cfg.API.Host, strconv.Itoa(s.cfg.API.Port)), s.apiMux()); err != nil {
			return nil, fmt.Errorf("api listener: %w", err)
		}
	}
	if p := s.cfg.Metrics.Prometheus; p != nil {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{
			// A collector failing (none is expected to) costs its own
			// series, not the scrape.
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      promLogger{s.log},
		}))
		var err error
		if a.metrics, a.metricsAddr, err = serve(net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), mm); err != nil {
			a.close()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
	}
	return a, nil
}

func (s *Server) apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", s.handlePublish)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, `{"status":"unavailable"}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})
	s.registerWeb(mux) // GET /mako.js, GET /demo (web.go)
	if s.cfg.Debug.Pprof {
		// Profiles expose memory contents (heap), the command line and can
		// burn CPU on demand, so they sit behind the same token as publish.
		mux.HandleFunc("/debug/pprof/", s.withToken(pprof.Index))
		mux.HandleFunc("/debug/pprof/cmdline", s.withToken(pprof.Cmdline))
		mux.HandleFunc("/debug/pprof/profile", s.withToken(pprof.Profile))
		mux.HandleFunc("/debug/pprof/symbol", s.withToken(pprof.Symbol))
		mux.HandleFunc("/debug/pprof/trace", s.withToken(pprof.Trace))
	}
	return mux
}

// MetricsAddr is the /metrics listener's host:port ("" when
// metrics.prometheus is not configured).
func (s *Server) MetricsAddr() string {
	if s.api == nil {
		return ""
	}
	return s.api.metricsAddr
}

// promLogger passes promhttp's errors to the server's logger.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }

func serve(addr string, h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

func (a *apiServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if a.srv != nil {
		_ = a.srv.Shutdown(ctx)
	}
	if a.metrics != nil {
		_ = a.metrics.Shutdown(ctx)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, string(protocol.AppendReply(nil, &protocol.Reply{Status: "error", Error: reason})))
}

// authorized reports whether r carries "Authorization: Bearer <api.token>",
// or api.token is unset. On false it has written the 401.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := s.cfg.API.Token
	if tok == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	if subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+tok)) != 1 {
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return false
	}
	return true
}

// withToken guards h with the API token (see authorized).
func (s *Server) withToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.authorized(w, r) {
			h(w, r)
		}
	}
}

// handlePublish takes the JSON a service would PUBLISH to Redis and hands it
// to the broker, so it reaches subscribers on every node.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", maxPublishBody))
			return
		}
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	pub, err := protocol.DecodePublished(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.hub.Publish(r.Context(), pub.Subscription, body); err != nil {
		if errors.Is(err, pubsub.ErrFanoutFull) {
			// Backpressure, not loss: the message was not accepted. Counted
			// in mako_fanout_refused_total rather than logged per request.
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "fan-out queue full: message not accepted, retry later")
			return
		}
		s.log.Warn("publish failed", "subscription", pub.Subscription, "cause", err.Error())
		writeError(w, http.StatusServiceUnavailable, "broker: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}
