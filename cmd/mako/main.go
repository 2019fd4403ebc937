// Command mako is the WebSocket message router.
//
//	mako -c PATH            run
//	mako check -c PATH      validate the config and exit
//	mako tail [-ticket T] ws://HOST:PORT SUBSCRIPTION
//	mako convert-config SOCKETSHARK_CONFIG.py   print the equivalent YAML
//	mako version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"mako/config"
	"mako/internal/logx"
	"mako/server"
)

const usage = `usage: mako COMMAND

  mako -c PATH              run with the config at PATH (YAML; JSON works too)
  mako check -c PATH        validate the config and exit (0 ok, 2 invalid)
  mako tail [-ticket T] [-field NAME=JSON] ws://HOST:PORT SUBSCRIPTION
                            connect, authenticate, subscribe, print every frame
  mako convert-config [-python P] SOCKETSHARK_CONFIG.py
                            print the equivalent mako YAML (needs python3)
  mako version              print the version (also --version)
  mako help                 print this (also --help, -h)

Configuration reference: docs/config.md; example: deploy/mako.example.yaml.
`

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		case "version", "-version", "--version":
			fmt.Fprintln(stdout, "mako", version)
			return 0
		case "check":
			cfg, code := loadConfig(args[1:], stderr)
			if cfg == nil {
				return code
			}
			fmt.Fprintln(stdout, "config ok")
			return 0
		case "tail":
			return tail(args[1:], stdout, stderr)
		case "convert-config":
			return convertConfig(args[1:], stdout, stderr)
		}
	}
	cfg, code := loadConfig(args, stderr)
	if cfg == nil {
		return code
	}
	log, stopLog := newLogger(cfg.Log, stderr)
	defer stopLog()
	// Registered before start-up so a signal during it still drains.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	srv, err := server.New(cfg, server.Options{Logger: log, Version: version})
	if err != nil {
		log.Error("start-up failed", "cause", err.Error())
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("start-up failed", "cause", err.Error())
		return 1
	}
	got := <-sig
	log.Info("shutting down", "signal", got.String(), "drain_timeout", cfg.Limits.DrainTimeout.Duration().String())
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.DrainTimeout.Duration())
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown incomplete", "cause", err.Error())
	}
	log.Info("stopped")
	return 0
}

// loadConfig parses -c PATH and loads it; a bad config exits 2.
func loadConfig(args []string, stderr io.Writer) (*config.Config, int) {
	fs := flag.NewFlagSet("mako", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (YAML or JSON)")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mako: unknown command or argument %q (see mako help)\n", fs.Arg(0))
		return nil, 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "mako: -c PATH is required (see deploy/mako.example.yaml)")
		return nil, 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, "mako: config:", err)
		return nil, 2
	}
	if cfg.WS.TLS.Cert != "" || cfg.WS.TLS.Key != "" {
		// gnet has no TLS; an edge tier terminates TLS at its load balancer.
		fmt.Fprintf(stderr, "mako: config: %s: ws.tls: TLS is not terminated by mako; terminate wss:// at the load balancer and remove ws.tls\n", *path)
		return nil, 2
	}
	return cfg, 0
}

// newLogger builds the process's logger per config.Log: JSON or text on w,
// with identical lines rate-limited per log.rate_limit_interval (see
// internal/logx). stop ends the goroutine that writes the last interval's
// summaries when no new line comes to trigger them, and writes what is held.
func newLogger(c config.Log, w io.Writer) (log *slog.Logger, stop func()) {
	var lvl slog.Level
	switch c.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	o := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewJSONHandler(w, o)
	if c.Format == "text" {
		h = slog.NewTextHandler(w, o)
	}
	every := c.RateLimitInterval.Duration()
	h = logx.NewRateLimit(h, every, nil)
	rl, ok := h.(*logx.RateLimit)
	if !ok {
		return slog.New(h), func() {}
	}
	// One goroutine for the process, not one per kind of line.
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				rl.Flush()
			case <-done:
				return
			}
		}
	}()
	return slog.New(h), func() {
		close(done)
		<-finished
		rl.FlushAll()
	}
}
