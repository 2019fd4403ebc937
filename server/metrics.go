package server

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// metrics are kept under SocketShark's names so existing dashboards work.
type metrics struct {
	connCount atomic.Int64
	connTotal atomic.Int64

	mu     sync.Mutex
	events map[[2]string]*atomic.Int64
}

// event counts socketshark_event_success_counter{event,status}.
func (m *metrics) event(event, status string) {
	switch event {
	case "auth", "subscribe", "message", "unsubscribe", "ping", "invalid", "unknown":
	default:
		// Client-chosen names must not grow the label set.
		event = "unknown"
	}
	k := [2]string{event, status}
	m.mu.Lock()
	if m.events == nil {
		m.events = make(map[[2]string]*atomic.Int64)
	}
	c := m.events[k]
	if c == nil {
		c = new(atomic.Int64)
		m.events[k] = c
	}
	m.mu.Unlock()
	c.Add(1)
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
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.events))
	for k := range m.events {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "socketshark_event_success_counter{event=%q,status=%q} %d\n", k[0], k[1], m.events[k].Load())
	}
	m.mu.Unlock()
	fmt.Fprintf(w, "# TYPE mako_channels gauge\nmako_channels %d\n", s.hub.Channels())
}
