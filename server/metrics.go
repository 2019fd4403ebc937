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
	s.writeLoopMetrics(w)
	if o, ok := s.hub.Broker().(interface{ Outages() uint64 }); ok {
		fmt.Fprintf(w, "# TYPE mako_redis_outages_total counter\nmako_redis_outages_total %d\n", o.Outages())
	}
}
