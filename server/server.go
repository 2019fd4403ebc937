package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"mako/config"
	"mako/pubsub"
	"mako/server/service"
)

// Options are the parts of a Server that tests and cmd/mako may replace.
type Options struct {
	Logger *slog.Logger
	// Version is the build's version, for the start-up line.
	Version string
	Clock   Clock
	// Broker overrides the broker chosen from the config (embedded when the
	// config has no redis block).
	Broker pubsub.Broker
	// Caller overrides the fasthttp service caller.
	Caller service.Caller
	// Multicore runs one event loop per CPU (default true via New).
	Loops int
	// TickInterval is how often the ticker checks loops for due timers.
	TickInterval time.Duration
	// ManualTimers starts no ticker: timers run only when RunTimers is
	// called. With a fake Clock, tests drive every timer deterministically.
	ManualTimers bool
}

// Server is one mako node.
type Server struct {
	cfg    *config.Config
	log    *slog.Logger
	clock  Clock
	hub    *pubsub.Hub
	caller service.Caller
	pool   *service.Pool
	opts   Options

	eng     gnet.Engine
	booted  chan struct{}
	stopped chan error
	addr    string

	loopMu sync.RWMutex
	loops  map[gnet.EventLoop]*loop
	loopL  []*loop

	services map[string]*serviceInfo

	draining atomic.Bool
	ready    atomic.Bool
	sessions atomic.Int64 // sessions not yet finished (close steps included)
	calls    atomic.Int64 // service calls whose continuation has not run yet
	idle     chan struct{}

	api     *apiServer
	metrics metrics
	lim     clientLimits // per-client limits (clientlimit.go)
	loss    lossWatch    // broker outages (broker.go)

	// inboundCap is limits.max_inbound_bytes, raised to the largest frame
	// ws.max_message_size admits on the wire, so a client is never cut for
	// sending one message it is allowed to send.
	inboundCap int

	tickStop chan struct{}
	tickDone chan struct{}
}

// New builds a server from a validated config.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = 5 * time.Millisecond
	}
	s := &Server{
		cfg:      cfg,
		log:      opts.Logger,
		clock:    opts.Clock,
		opts:     opts,
		booted:   make(chan struct{}),
		stopped:  make(chan error, 1),
		loops:    make(map[gnet.EventLoop]*loop),
		idle:     make(chan struct{}, 1),
		tickStop: make(chan struct{}),
		tickDone: make(chan struct{}),
	}
	// ws.Decoder's bound on a frame: the message, deflate's slack for
	// incompressible data, the largest header with its mask.
	mm := cfg.WS.MaxMessageSize
	s.inboundCap = max(cfg.Limits.MaxInboundBytes, mm+mm>>12+64+14)
	s.lim.init(&cfg.Limits)
	if cfg.Metrics.Log != nil {
		s.metrics.log = s.log
	}
	s.services = make(map[string]*serviceInfo, len(cfg.Services))
	for name, sc := range cfg.Services {
		s.services[name] = newServiceInfo(name, sc)
	}
	if opts.Caller != nil {
		s.caller = opts.Caller
	} else {
		c, err := service.FromConfig(cfg.HTTP, s.log, s.clock.Mono)
		if err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
		s.caller = c
	}
	s.pool = service.NewPool(cfg.HTTP.Workers, cfg.HTTP.MaxConcurrencyPerService, cfg.HTTP.MaxQueuedPerService)
	b := opts.Broker
	if b == nil {
		var err error
		if b, err = newBroker(cfg, s.log); err != nil {
			return nil, err
		}
	}
	s.hub = pubsub.NewHub(b, 0, s.log)
	s.hub.SetLimits(cfg.Limits.MaxFanoutQueueBytes, cfg.Limits.MaxGappedChannels)
	s.initMetrics()
	return s, nil
}

// Start listens and returns once the WebSocket listener (and the API and
// /metrics listeners, each when configured) accept connections.
func (s *Server) Start() error {
	// Before the broker starts: a Redis already down at start-up is a loss
	// the policy must see.
	s.watchBroker()
	if err := s.hub.Start(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	ln := net.JoinHostPort(s.cfg.WS.Host, strconv.Itoa(s.cfg.WS.Port))
	loops := s.opts.Loops
	go func() {
		err := gnet.Run(&handler{s: s}, "tcp://"+ln,
			gnet.WithMulticore(loops == 0),
			gnet.WithNumEventLoop(loops),
			gnet.WithReusePort(false),
			// A restart must bind while the connections the previous
			// process closed sit in TIME_WAIT on this port (about 60 s);
			// SO_REUSEADDR still refuses a port another socket listens on.
			gnet.WithReuseAddr(true),
			gnet.WithTCPKeepAlive(0),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.log}),
			// Accepted sockets inherit SO_SNDBUF from the listener; 0
			// leaves the kernel's autotuning.
			gnet.WithSocketSendBuffer(s.cfg.WS.SocketSendBuffer),
		)
		s.stopped <- err
	}()
	select {
	case <-s.booted:
	case err := <-s.stopped:
		// A failed start leaves nothing running (the broker's goroutines
		// included), so a caller may retry or exit cleanly.
		_ = s.hub.Close()
		return fmt.Errorf("ws listener %s: %w", ln, err)
	}
	// Port 0 is bound by the kernel's choice, read back from the listener
	// (probing for a free port first would race other processes for it).
	port, err := s.listenerPort()
	if err != nil {
		s.abandonStart()
		return fmt.Errorf("ws listener %s: %w", ln, err)
	}
	s.addr = net.JoinHostPort(s.cfg.WS.Host, strconv.Itoa(port))
	if s.cfg.API != nil || s.cfg.Metrics.Prometheus != nil {
		api, err := newAPIServer(s)
		if err != nil {
			s.abandonStart()
			return err
		}
		s.api = api
	}
	if s.opts.ManualTimers {
		close(s.tickDone)
	} else {
		go s.tick()
	}
	if len(s.cfg.WS.AllowedOrigins) == 0 {
		s.log.Warn("ws.allowed_origins is empty: upgrades from any Origin are accepted")
	}
	s.ready.Store(true)
	loopsN := s.opts.Loops
	if loopsN == 0 {
		loopsN = runtime.NumCPU()
	}
	s.log.Info("mako listening", "version", s.opts.Version, "ws", s.addr, "api", s.APIAddr(),
		"metrics", s.MetricsAddr(), "broker", brokerDesc(s.cfg), "loops", loopsN, "services", serviceNames(s.cfg))
	return nil
}

// abandonStart undoes a start that failed after the engine booted: the
// listener is closed (so the port is free again) and the broker stopped.
func (s *Server) abandonStart() {
	_ = s.eng.Stop(context.Background())
	<-s.stopped
	s.closeWakers()
	_ = s.hub.Close()
}

// Addr is the WebSocket listener's host:port.
func (s *Server) Addr() string { return s.addr }

// APIAddr is the publish/health API's host:port ("" when disabled).
func (s *Server) APIAddr() string {
	if s.api == nil {
		return ""
	}
	return s.api.addr
}

// Ready reports readiness: started, not draining, broker reachable.
func (s *Server) Ready() bool {
	return s.ready.Load() && !s.draining.Load() && s.hub.Broker().Ready()
}

// Hub exposes the pub/sub hub (publish API, tests).
func (s *Server) Hub() *pubsub.Hub { return s.hub }

// Shutdown stops accepting, closes every connection with 1001 running the
// close steps, waits for them (bounded by ctx), then stops the engine.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return errors.New("already shutting down")
	}
	s.log.Info("draining", "sessions", s.sessions.Load())
	for _, l := range s.loopList() {
		l.execute(l.closeAll)
	}
	var err error
	for s.sessions.Load() > 0 && err == nil {
		select {
		case <-s.idle:
		case <-ctx.Done():
			err = fmt.Errorf("drain deadline: %d sessions still closing", s.sessions.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if perr := s.pool.Close(ctx); perr != nil && err == nil {
		err = perr
	}
	close(s.tickStop)
	<-s.tickDone
	if s.api != nil {
		s.api.close()
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.eng.Stop(stopCtx)
	<-s.stopped
	s.closeWakers()
	_ = s.hub.Close()
	return err
}

// closeWakers closes mako's ends of the loops' wake sockets once the
// engine has stopped (gnet closed the loops' ends): no loop writes to them
// any more.
func (s *Server) closeWakers() {
	for _, l := range s.loopList() {
		if l.wk != nil {
			l.wk.close()
		}
	}
}

func (s *Server) sessionDone() {
	if s.sessions.Add(-1) == 0 {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

func (s *Server) loopList() []*loop {
	s.loopMu.RLock()
	defer s.loopMu.RUnlock()
	return s.loopL
}

// loopFor returns the loop state of el, creating it on first sight: gnet
// has no API listing its loops, so they are learnt from connections.
func (s *Server) loopFor(el gnet.EventLoop) *loop {
	s.loopMu.RLock()
	l := s.loops[el]
	s.loopMu.RUnlock()
	if l != nil {
		return l
	}
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if l = s.loops[el]; l != nil {
		return l
	}
	l = newLoop(s, el)
	l.enrollWaker()
	l.id = s.hub.AddSink(l)
	s.loops[el] = l
	s.loopL = append(append([]*loop(nil), s.loopL...), l)
	return l
}

// tick posts "run due timers" to loops that have something due.
func (s *Server) tick() {
	defer close(s.tickDone)
	t := time.NewTicker(s.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-s.tickStop:
			return
		case <-t.C:
		}
		now := s.clock.Mono()
		for _, l := range s.loopList() {
			if l.sched.due(now) && l.tickPosted.CompareAndSwap(false, true) {
				l.execute(l.runTimers)
			}
		}
	}
}

type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "src", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "src", "gnet") }
