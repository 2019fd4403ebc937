package server

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mako/internal/logx"
	"mako/server/service"
)

// metrics holds the counters the server updates as it works, and the
// Prometheus registry that reads them at scrape time (docs/metrics.md).
//
// SocketShark's four series keep its names, types and labels so existing
// dashboards work; mako's own are under mako_. Hot paths only add to
// atomics (or observe a pre-resolved histogram): every gauge and counter
// below is computed from them when /metrics is scraped.
type metrics struct {
	// connCount/connTotal are TCP sockets (accepted, handshake included):
	// limits.max_connections and Stats.Connections count them.
	connCount atomic.Int64
	connTotal atomic.Int64
	// wsCount/wsTotal are WebSocket sessions, as SocketShark counts
	// connections: from the 101 until the close steps are done.
	wsCount atomic.Int64
	wsTotal atomic.Int64
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

	reg *prometheus.Registry
	// calls holds each service's call-latency observers by endpoint and
	// outcome, resolved at start-up so a call looks no label up. Read-only
	// once built.
	calls map[string]*callObservers
	// fanout is observed once per message per loop flush (fanoutMarks).
	fanout prometheus.Histogram
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

// endpoint is the service callback a call is made for: the
// mako_service_call_duration_seconds endpoint label, named after its config
// key.
type endpoint uint8

const (
	epValidationURL endpoint = iota // authentication.ticket.validation_url
	epAuthorizer
	epBeforeSubscribe
	epOnSubscribe
	epOnMessage
	epBeforeUnsubscribe
	epOnUnsubscribe
	epOnAuthorizationChange
	epOnHeartbeat
	numEndpoints
)

var endpointNames = [numEndpoints]string{
	"validation_url", "authorizer", "before_subscribe", "on_subscribe", "on_message",
	"before_unsubscribe", "on_unsubscribe", "on_authorization_change", "on_heartbeat",
}

// Call outcomes: the service answered {"status": "ok"}; answered anything
// else (an error, or a 2xx that is not a JSON object); or never answered
// usefully within http.tries, by the last try's failure: a timeout, a 429,
// or anything else (refused connection, other status, refused unsent by
// the pool because http.max_queued_per_service calls wait).
const (
	outOK = iota
	outError
	outTimeout
	out429
	outUnavailable
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "error", "timeout", "429", "unavailable"}

type callObservers [numEndpoints][numOutcomes]prometheus.Observer

func outcomeOf(r *service.Result) int {
	switch {
	case r.OK:
		return outOK
	case !r.Unavailable:
		return outError
	case r.Failure == service.FailTimeout:
		return outTimeout
	case r.Failure == service.FailRateLimited:
		return out429
	}
	return outUnavailable
}

// observeCall records one service call's latency: from its submission to
// the pool to its result, the pool's wait and every try included (what the
// session waited for).
func (m *metrics) observeCall(svc string, ep endpoint, r *service.Result, d time.Duration) {
	if o := m.calls[svc]; o != nil && ep < numEndpoints {
		if h := o[ep][outcomeOf(r)]; h != nil {
			h.Observe(d.Seconds())
		}
	}
}

// Histogram buckets in seconds. Service calls run up to http.timeout
// (15 s by default) times http.tries; fan-out is expected well under a
// millisecond and is worth seeing when it is not.
var (
	callBuckets   = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60}
	fanoutBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// maxFanoutMarks bounds the receive times a loop keeps between flushes;
// past it they are observed early (a lower bound) rather than held.
const maxFanoutMarks = 1 << 14

// fanoutMarks collects, on one loop, the broker receive times of the
// messages whose live frames were queued since the last flush, so the
// flush observes each message once however many subscribers it had.
type fanoutMarks struct {
	gen  uint64  // loop.gen of the last message marked
	recv []int64 // ReceivedAt, Unix nanoseconds
}

// mark notes message gen's receive time once; a zero time (a message that
// did not come from a broker) is not measured.
func (f *fanoutMarks) mark(h prometheus.Observer, gen uint64, at time.Time) {
	if f.gen == gen || at.IsZero() {
		return
	}
	f.gen = gen
	if len(f.recv) >= maxFanoutMarks {
		f.observe(h)
	}
	f.recv = append(f.recv, at.UnixNano())
}

// drop forgets the marks: nothing marked was written.
func (f *fanoutMarks) drop() { f.recv = f.recv[:0] }

// observe records the time from each marked receive to now (the socket
// writes just done) and forgets the marks. The wall clock, as ReceivedAt.
func (f *fanoutMarks) observe(h prometheus.Observer) {
	if len(f.recv) == 0 {
		return
	}
	now := time.Now().UnixNano()
	for _, t := range f.recv {
		h.Observe(float64(now-t) / 1e9)
	}
	f.recv = f.recv[:0]
}

// initMetrics builds the registry: SocketShark's series, mako's own, the
// histograms, and the Go and process collectors. The registry is the
// server's own (not the global default), so servers in one process (tests)
// do not collide.
func (s *Server) initMetrics() {
	m := &s.metrics
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newServerCollector(s),
	)
	calls := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mako_service_call_duration_seconds",
		Help:    "Service callback latency: from the call's submission to its result, pool wait and every try included.",
		Buckets: callBuckets,
	}, []string{"service", "endpoint", "outcome"})
	m.fanout = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mako_fanout_latency_seconds",
		Help:    "Time from receiving a published message from the broker to writing it to the sockets of one event loop's subscribers (live deliveries; one observation per message per loop).",
		Buckets: fanoutBuckets,
	})
	m.reg.MustRegister(calls, m.fanout)

	// Every configured callback gets its series up front (zeros until
	// used), so a dashboard's rate() has a series to start from.
	m.calls = make(map[string]*callObservers)
	resolve := func(svc string, ep endpoint) {
		o := m.calls[svc]
		if o == nil {
			o = new(callObservers)
			m.calls[svc] = o
		}
		for out := range numOutcomes {
			o[ep][out] = calls.WithLabelValues(svc, endpointNames[ep], outcomeNames[out])
		}
	}
	if t := s.cfg.Authentication.Ticket; t != nil && t.ValidationURL != "" {
		resolve("auth", epValidationURL)
	}
	for name, si := range s.services {
		c := si.cfg
		for ep, url := range [numEndpoints]string{
			epAuthorizer: c.Authorizer, epBeforeSubscribe: c.BeforeSubscribe, epOnSubscribe: c.OnSubscribe,
			epOnMessage: c.OnMessage, epBeforeUnsubscribe: c.BeforeUnsubscribe, epOnUnsubscribe: c.OnUnsubscribe,
			epOnAuthorizationChange: c.OnAuthorizationChange, epOnHeartbeat: c.OnHeartbeat,
		} {
			if url != "" {
				resolve(name, endpoint(ep))
			}
		}
	}
}

// serverCollector reads the server's atomics and pools at scrape time.
type serverCollector struct {
	s       *Server
	scalars []scalar
	// Labelled families.
	events, cuts                   *prometheus.Desc
	svcQueue, svcInflight, svcRef  *prometheus.Desc
	fanout                         []fanoutSeries
	loopBacklog, loopCuts, loopDrp *prometheus.Desc
	limitHits                      *prometheus.Desc
	breakers                       breakerSeries
}

// scalar is one unlabelled series.
type scalar struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func() float64
}

type fanoutSeries struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(*pubsubStats) float64
}

func newServerCollector(s *Server) *serverCollector {
	m := &s.metrics
	c := &serverCollector{s: s}
	gauge := func(name, help string, v func() float64) {
		c.scalars = append(c.scalars, scalar{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v})
	}
	counter := func(name, help string, v func() float64) {
		c.scalars = append(c.scalars, scalar{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, v})
	}
	load := func(a *atomic.Int64) func() float64 { return func() float64 { return float64(a.Load()) } }
	started := float64(time.Now().UnixNano()) / 1e9

	// SocketShark's series: names, types and labels as its Prometheus
	// backend (prometheus_client) exposes them.
	gauge("socketshark_service_state", "1 while this node serves (started, not draining, broker reachable), else 0.", func() float64 {
		if s.Ready() {
			return 1
		}
		return 0
	})
	gauge("socketshark_connection_count", "WebSocket sessions open: upgraded, close steps not yet done.", load(&m.wsCount))
	counter("socketshark_connection_total", "WebSocket sessions opened (successful upgrades).", load(&m.wsTotal))
	// prometheus_client exposes a counter's creation time beside it.
	gauge("socketshark_connection_created", "Unix time socketshark_connection_total started counting.", func() float64 { return started })
	c.events = prometheus.NewDesc("socketshark_event_success_counter",
		"Client events answered, by event name and outcome (a gauge, as in SocketShark).", []string{"event", "status"}, nil)

	// mako's own.
	gauge("mako_tcp_connections", "TCP connections open, upgrade handshakes included (what limits.max_connections bounds).", load(&m.connCount))
	counter("mako_tcp_connections_total", "TCP connections accepted.", load(&m.connTotal))
	gauge("mako_channels", "Channels held at the hub (subscribed at the broker).", func() float64 { return float64(s.hub.Channels()) })
	c.svcQueue = prometheus.NewDesc("mako_service_queue", "Service calls waiting for a worker (bounded by http.max_queued_per_service).", []string{"service"}, nil)
	c.svcInflight = prometheus.NewDesc("mako_service_inflight", "Service calls in flight.", []string{"service"}, nil)
	c.svcRef = prometheus.NewDesc("mako_service_refused_total", "Service calls refused unsent because the service's wait queue was full.", []string{"service"}, nil)
	gauge("mako_throttle_keys", "Throttle keys tracked over all subscriptions.", load(&m.throttleKeys))
	counter("mako_throttle_untracked_total", "Messages sent unthrottled because a subscription tracked limits.max_throttle_keys keys.", load(&m.throttleUntracked))
	gauge("mako_order_keys", "Order keys remembered over all subscriptions.", load(&m.orderKeys))
	counter("mako_order_keys_evicted_total", "Order keys forgotten because a subscription remembered limits.max_order_keys keys.", load(&m.orderKeysEvicted))
	fs := func(name, help string, typ prometheus.ValueType, v func(*pubsubStats) float64) {
		c.fanout = append(c.fanout, fanoutSeries{prometheus.NewDesc(name, help, []string{"worker"}, nil), typ, v})
	}
	fs("mako_fanout_queue_messages", "Messages waiting on a fan-out worker.", prometheus.GaugeValue, func(f *pubsubStats) float64 { return float64(f.Messages) })
	fs("mako_fanout_queue_bytes", "Bytes waiting on a fan-out worker (payload + channel + 64 per message).", prometheus.GaugeValue, func(f *pubsubStats) float64 { return float64(f.Bytes) })
	fs("mako_fanout_queue_max_bytes", "A fan-out worker's bound (limits.max_fanout_queue_bytes).", prometheus.GaugeValue, func(f *pubsubStats) float64 { return float64(f.MaxBytes) })
	fs("mako_fanout_dropped_total", "Messages from the broker a full fan-out worker dropped.", prometheus.CounterValue, func(f *pubsubStats) float64 { return float64(f.Dropped) })
	fs("mako_fanout_refused_total", "Publishes a full fan-out worker refused (503).", prometheus.CounterValue, func(f *pubsubStats) float64 { return float64(f.Refused) })
	fs("mako_fanout_gaps_total", "Gapped channels a fan-out worker reported to the loops.", prometheus.CounterValue, func(f *pubsubStats) float64 { return float64(f.Gaps) })
	counter("mako_gap_cuts_total", "Sessions closed 1013 because messages of a channel they held were dropped.", load(&m.gapCuts))
	c.cuts = prometheus.NewDesc("mako_cuts_total", "Connections cut by a limit, by cause.", []string{"cause"}, nil)
	counter("mako_close_timeouts_total", "Closes whose queued output did not leave within ws.close_timeout (socket reset).", load(&m.closeTimeouts))
	gauge("mako_sessions_paused", "Sessions not read because limits.max_queued_events events wait.", load(&m.paused))
	c.loopBacklog = prometheus.NewDesc("mako_loop_backlog", "Published messages queued for delivery, over all event loops.", nil, nil)
	c.loopCuts = prometheus.NewDesc("mako_loop_backlog_cuts_total", "Sessions closed 1013 because a loop's backlog overflowed.", nil, nil)
	c.loopDrp = prometheus.NewDesc("mako_loop_backlog_dropped_total", "Messages not queued because a loop's backlog was full.", nil, nil)
	c.breakers = newBreakerSeries()
	c.limitHits = prometheus.NewDesc("mako_client_limit_hits_total", "Per-client limits hit, by the limit's key.", []string{"limit"}, nil)
	gauge("mako_client_ips", "Client addresses tracked by the per-address limits.", func() float64 {
		if s.lim.ips == nil {
			return 0
		}
		return float64(s.lim.ips.entries.Load())
	})
	counter("mako_log_lines_suppressed_total", "Log lines counted in a summary instead of written (log.rate_limit_interval).",
		func() float64 { return float64(logx.Suppressed.Load()) })
	counter("mako_proxy_protocol_errors_total", "Connections closed for a missing or malformed PROXY protocol header.", load(&s.lim.proxyErrors))
	if o, ok := s.hub.Broker().(interface{ Outages() uint64 }); ok {
		counter("mako_redis_outages_total", "Redis connection losses.", func() float64 { return float64(o.Outages()) })
	}
	if s.cfg.Redis != nil {
		counter("mako_redis_gaps_total", "Redis outages ended (every channel resubscribed).", load(&m.redisGaps))
		counter("mako_redis_gap_seconds_total", "Total length of the ended Redis outages.", func() float64 { return float64(m.redisGapNanos.Load()) / 1e9 })
		counter("mako_redis_drain_closed_total", "Sessions a redis.on_loss drain closed.", load(&m.drainClosed))
	}
	return c
}

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c.scalars {
		ch <- x.desc
	}
	for _, d := range []*prometheus.Desc{c.events, c.cuts, c.svcQueue, c.svcInflight, c.svcRef, c.loopBacklog, c.loopCuts, c.loopDrp, c.limitHits} {
		ch <- d
	}
	c.breakers.describe(ch)
	for _, f := range c.fanout {
		ch <- f.desc
	}
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s, m := c.s, &c.s.metrics
	for _, x := range c.scalars {
		ch <- prometheus.MustNewConstMetric(x.desc, x.typ, x.val())
	}
	for i, n := range eventNames {
		for st, label := range [2]string{"success", "error"} {
			ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(m.events[i][st].Load()), n, label)
		}
	}
	for i, cause := range cutCauses {
		ch <- prometheus.MustNewConstMetric(c.cuts, prometheus.CounterValue, float64(m.cuts[i].Load()), cause)
	}
	for _, x := range s.pool.ServiceStats() {
		ch <- prometheus.MustNewConstMetric(c.svcQueue, prometheus.GaugeValue, float64(x.Queued), x.Name)
		ch <- prometheus.MustNewConstMetric(c.svcInflight, prometheus.GaugeValue, float64(x.Running), x.Name)
		ch <- prometheus.MustNewConstMetric(c.svcRef, prometheus.CounterValue, float64(x.Refused), x.Name)
	}
	fs := s.hub.FanoutStats()
	for _, f := range c.fanout {
		for i := range fs {
			ch <- prometheus.MustNewConstMetric(f.desc, f.typ, f.val(&fs[i]), strconv.Itoa(i))
		}
	}
	var backlog, cuts, dropped int64
	for _, l := range s.loopList() {
		backlog += l.in.backlog.Load()
		cuts += l.in.cuts.Load()
		dropped += l.in.dropped.Load()
	}
	ch <- prometheus.MustNewConstMetric(c.loopBacklog, prometheus.GaugeValue, float64(backlog))
	ch <- prometheus.MustNewConstMetric(c.loopCuts, prometheus.CounterValue, float64(cuts))
	ch <- prometheus.MustNewConstMetric(c.loopDrp, prometheus.CounterValue, float64(dropped))
	c.breakers.collect(s, ch)
	lim := &s.lim
	for _, x := range [...]struct {
		key string
		n   *atomic.Int64
	}{
		{"max_connections_per_ip", &lim.refusedCap},
		{"connections_per_second_per_ip", &lim.refusedRate},
		{"client_events_per_second", &lim.eventsRefused},
		{"max_refused_events", &lim.eventCloses},
	} {
		ch <- prometheus.MustNewConstMetric(c.limitHits, prometheus.CounterValue, float64(x.n.Load()), x.key)
	}
}
