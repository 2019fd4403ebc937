package server

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
)

// metrics are kept under SocketShark's names so existing dashboards work.
type metrics struct {
	connCount atomic.Int64
	connTotal atomic.Int64
	// events is socketshark_event_success_counter, indexed by eventNames ×
	// {success, error}: fixed, so counting is one atomic add on any loop.
	events [len(eventNames)][2]atomic.Int64
	// Broker outages as gaps (broker.go, drain.go): ended outages, their
	// total length, and sessions a redis.on_loss drain closed.
	redisGaps     atomic.Int64
	redisGapNanos atomic.Int64
	drainClosed   atomic.Int64
	// Per-subscription key state over all subscriptions (gauges), and the
	// times a cap was hit (counters): see keystate.go.
	throttleKeys, orderKeys             atomic.Int64
	throttleUntracked, orderKeysEvicted atomic.Int64
	// gapCuts counts sessions closed because a fan-out queue dropped
	// messages of a channel they held (gap.go).
	gapCuts atomic.Int64
	// cuts counts connections cut by a limit, by cause (cutCauses).
	cuts [len(cutCauses)]atomic.Int64
	// closeTimeouts counts closes whose queued output did not leave within
	// ws.close_timeout, so the socket was aborted.
	closeTimeouts atomic.Int64
	// paused is the sessions whose reading is paused because
	// limits.max_queued_events events wait.
	paused atomic.Int64
	// log, when metrics.log is configured, logs every event at debug level
	// (SocketShark's log metrics backend).
	log *slog.Logger
}

// eventNames are the label values; client-chosen names count as "unknown"
// so they cannot grow the label set.
var eventNames = [...]string{"auth", "subscribe", "message", "unsubscribe", "ping", "invalid", "unknown"}

func (m *metrics) event(event, status string) {
	i := len(eventNames) - 1
	for j, n := range eventNames {
		if n == event {
			i = j
			break
		}
	}
	st := 0
	if status == "error" {
		st = 1
	}
	m.events[i][st].Add(1)
	if m.log != nil {
		m.log.Debug("metric", "name", "socketshark_event_success_counter", "event", eventNames[i], "status", status)
	}
}

// writePrometheus writes the text exposition format.
func (s *Server) writePrometheus(w io.Writer) {
	m := &s.metrics
	ready := 0
	if s.Ready() {
		ready = 1
	}
	fmt.Fprintf(w, "# TYPE socketshark_service_state gauge\nsocketshark_service_state %d\n", ready)
	fmt.Fprintf(w, "# TYPE socketshark_connection_count gauge\nsocketshark_connection_count %d\n", m.connCount.Load())
	fmt.Fprintf(w, "# TYPE socketshark_connection_total counter\nsocketshark_connection_total %d\n", m.connTotal.Load())
	fmt.Fprintf(w, "# TYPE socketshark_event_success_counter counter\n")
	for i, n := range eventNames {
		for st, label := range [2]string{"success", "error"} {
			fmt.Fprintf(w, "socketshark_event_success_counter{event=%q,status=%q} %d\n", n, label, m.events[i][st].Load())
		}
	}
	fmt.Fprintf(w, "# TYPE mako_channels gauge\nmako_channels %d\n", s.hub.Channels())
	s.writeServiceMetrics(w)
	s.writeBreakerMetrics(w)
	fmt.Fprintf(w, "# TYPE mako_throttle_keys gauge\nmako_throttle_keys %d\n", m.throttleKeys.Load())
	fmt.Fprintf(w, "# TYPE mako_throttle_untracked_total counter\nmako_throttle_untracked_total %d\n", m.throttleUntracked.Load())
	fmt.Fprintf(w, "# TYPE mako_order_keys gauge\nmako_order_keys %d\n", m.orderKeys.Load())
	fmt.Fprintf(w, "# TYPE mako_order_keys_evicted_total counter\nmako_order_keys_evicted_total %d\n", m.orderKeysEvicted.Load())
	s.writeFanoutMetrics(w)
	fmt.Fprintf(w, "# TYPE mako_cuts_total counter\n")
	for i, c := range cutCauses {
		fmt.Fprintf(w, "mako_cuts_total{cause=%q} %d\n", c, m.cuts[i].Load())
	}
	fmt.Fprintf(w, "# TYPE mako_close_timeouts_total counter\nmako_close_timeouts_total %d\n", m.closeTimeouts.Load())
	fmt.Fprintf(w, "# TYPE mako_sessions_paused gauge\nmako_sessions_paused %d\n", m.paused.Load())
	s.writeLoopMetrics(w)
	if o, ok := s.hub.Broker().(interface{ Outages() uint64 }); ok {
		fmt.Fprintf(w, "# TYPE mako_redis_outages_total counter\nmako_redis_outages_total %d\n", o.Outages())
	}
	if s.cfg.Redis != nil {
		fmt.Fprintf(w, "# TYPE mako_redis_gaps_total counter\nmako_redis_gaps_total %d\n", m.redisGaps.Load())
		fmt.Fprintf(w, "# TYPE mako_redis_gap_seconds_total counter\nmako_redis_gap_seconds_total %g\n", float64(m.redisGapNanos.Load())/1e9)
		fmt.Fprintf(w, "# TYPE mako_redis_drain_closed_total counter\nmako_redis_drain_closed_total %d\n", m.drainClosed.Load())
	}
}

// writeServiceMetrics writes the service-call pool per service: calls
// waiting for a worker (bounded by http.max_queued_per_service), calls in
// flight, and calls refused because the wait queue was full.
func (s *Server) writeServiceMetrics(w io.Writer) {
	st := s.pool.ServiceStats()
	fmt.Fprintf(w, "# TYPE mako_service_queue gauge\n")
	for _, x := range st {
		fmt.Fprintf(w, "mako_service_queue{service=%q} %d\n", x.Name, x.Queued)
	}
	fmt.Fprintf(w, "# TYPE mako_service_inflight gauge\n")
	for _, x := range st {
		fmt.Fprintf(w, "mako_service_inflight{service=%q} %d\n", x.Name, x.Running)
	}
	fmt.Fprintf(w, "# TYPE mako_service_refused_total counter\n")
	for _, x := range st {
		fmt.Fprintf(w, "mako_service_refused_total{service=%q} %d\n", x.Name, x.Refused)
	}
}
