package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"mako/server/service"
)

// breakerSeries are the circuit breakers of the service URLs called so far
// (credentials redacted; the set is the config's URLs):
// mako_service_breaker_state is 0 closed, 1 half-open, 2 open;
// mako_service_breaker_transitions_total counts the times each state was
// entered; mako_service_breaker_refused_total counts calls failed at once
// without being sent. Nothing is collected when the caller keeps no
// breakers (http.breaker_failures 0, or a Caller from Options).
type breakerSeries struct {
	state, transitions, refused *prometheus.Desc
}

func newBreakerSeries() breakerSeries {
	return breakerSeries{
		state:       prometheus.NewDesc("mako_service_breaker_state", "Circuit breaker of a service URL: 0 closed, 1 half-open, 2 open.", []string{"url"}, nil),
		transitions: prometheus.NewDesc("mako_service_breaker_transitions_total", "Times a service URL's breaker entered a state.", []string{"url", "to"}, nil),
		refused:     prometheus.NewDesc("mako_service_breaker_refused_total", "Calls failed at once, unsent, because the URL's breaker was open.", []string{"url"}, nil),
	}
}

func (b breakerSeries) describe(ch chan<- *prometheus.Desc) {
	ch <- b.state
	ch <- b.transitions
	ch <- b.refused
}

func (b breakerSeries) collect(s *Server, ch chan<- prometheus.Metric) {
	c, ok := s.caller.(interface{ BreakerStats() []service.BreakerStats })
	if !ok {
		return
	}
	for _, st := range c.BreakerStats() {
		ch <- prometheus.MustNewConstMetric(b.state, prometheus.GaugeValue, float64(st.State), st.URL)
		for i, n := range st.Transitions {
			ch <- prometheus.MustNewConstMetric(b.transitions, prometheus.CounterValue, float64(n), st.URL, service.BreakerState(i).String())
		}
		ch <- prometheus.MustNewConstMetric(b.refused, prometheus.CounterValue, float64(st.Refused), st.URL)
	}
}
