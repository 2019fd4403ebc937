package server

import (
	"html"
	"net/http"
	"strings"

	makojs "mako/client/js"
)

// registerWeb serves the browser client and its demo on the API port:
// static, embedded in the binary, so a browser app can load the client
// from the mako it talks to and `make run` + /demo works with nothing else.
func (s *Server) registerWeb(mux *http.ServeMux) {
	mux.HandleFunc("GET /mako.js", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		// Cross-origin apps import it as a module, which needs CORS.
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(makojs.Client)
	})
	mux.HandleFunc("GET /demo", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		// The page reads its query itself; only the listener address,
		// which mako chose, is written into it.
		_, _ = w.Write([]byte(strings.Replace(makojs.Demo, "{{WS}}", html.EscapeString(s.addr), 1)))
	})
}
