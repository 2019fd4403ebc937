package server

import (
	"fmt"
	"io"

	"mako/server/service"
)

// writeBreakerMetrics writes the circuit breaker of every service URL
// called so far (credentials redacted; the set is the config's URLs):
// mako_service_breaker_state is 0 closed, 1 half-open, 2 open;
// mako_service_breaker_transitions_total counts the times each state was
// entered; mako_service_breaker_refused_total counts calls failed at once
// without being sent. Nothing is written when the caller keeps no breakers
// (http.breaker_failures 0, or a Caller from Options).
func (s *Server) writeBreakerMetrics(w io.Writer) {
	c, ok := s.caller.(interface{ BreakerStats() []service.BreakerStats })
	if !ok {
		return
	}
	st := c.BreakerStats()
	if len(st) == 0 {
		return
	}
	fmt.Fprintf(w, "# TYPE mako_service_breaker_state gauge\n")
	for _, b := range st {
		fmt.Fprintf(w, "mako_service_breaker_state{url=%q} %d\n", b.URL, b.State)
	}
	fmt.Fprintf(w, "# TYPE mako_service_breaker_transitions_total counter\n")
	for _, b := range st {
		for i, n := range b.Transitions {
			fmt.Fprintf(w, "mako_service_breaker_transitions_total{url=%q,to=%q} %d\n", b.URL, service.BreakerState(i), n)
		}
	}
	fmt.Fprintf(w, "# TYPE mako_service_breaker_refused_total counter\n")
	for _, b := range st {
		fmt.Fprintf(w, "mako_service_breaker_refused_total{url=%q} %d\n", b.URL, b.Refused)
	}
}
