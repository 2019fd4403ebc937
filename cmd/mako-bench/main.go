// Command mako-bench loads a running mako over WebSocket and its HTTP API.
//
//	mako-bench idle   -url ws://127.0.0.1:9000 -conns 10000 -procs 4 \
//	                  -sources 127.0.0.2-127.0.0.9 -subscribe demo.idle -hold 30s \
//	                  -api http://127.0.0.1:9001 [-pid PID] [-publish-every 1s]
//	mako-bench fanout -url ws://127.0.0.1:9000 -api http://127.0.0.1:9001 \
//	                  -subs 1000 -channel demo.fan -size 100 -duration 10s [-rate 0]
//
// Client connections are spread over -procs child processes of this program
// (the hidden `worker` subcommand) and over the -sources addresses.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"mako/bench"
)

func main() {
	if code, ok := bench.RunWorker(); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mako-bench idle|fanout [flags]   (mako-bench MODE -h for flags)")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "idle":
		return runIdle(ctx, args[1:], stdout, stderr)
	case "fanout":
		return runFanout(ctx, args[1:], stdout, stderr)
	case "worker":
		fmt.Fprintln(stderr, "mako-bench: worker is started by mako-bench itself")
		return 2
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "mako-bench: unknown mode %q\n", args[0])
	usage(stderr)
	return 2
}

// failed reports err; an interrupt exits 130 as shells expect.
func failed(stderr io.Writer, mode string, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "mako-bench %s: interrupted\n", mode)
		return 130
	}
	fmt.Fprintf(stderr, "mako-bench %s: %v\n", mode, err)
	return 1
}

// common registers the flags both modes share.
func common(fs *flag.FlagSet, c *bench.Common, sources *string) {
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:9000", "mako WebSocket URL")
	fs.StringVar(&c.API, "api", "http://127.0.0.1:9001", "mako API base URL (publish, pprof)")
	fs.IntVar(&c.Procs, "procs", 4, "client processes (each holds < 19,000 connections)")
	fs.StringVar(sources, "sources", "", "local source addresses, e.g. 127.0.0.2-127.0.0.9 or a,b,c (empty = any)")
	fs.IntVar(&c.PerProc, "concurrency", 64, "connections being set up at once per process")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "per connection: connect + upgrade + subscribe")
}

func finishCommon(c *bench.Common, sources string, stderr io.Writer) bool {
	if sources != "" {
		s, err := bench.ParseSources(sources)
		if err != nil {
			fmt.Fprintln(stderr, "mako-bench:", err)
			return false
		}
		c.Sources = s
	}
	c.Log = stderr
	return true
}

func runIdle(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mako-bench idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.IdleOptions
	var sources string
	common(fs, &o.Common, &sources)
	fs.IntVar(&o.Conns, "conns", 1000, "connections to open")
	fs.StringVar(&o.Subscribe, "subscribe", "", "subscription each connection takes (empty = none)")
	fs.DurationVar(&o.Hold, "hold", 30*time.Second, "how long to hold the connections once all are up")
	fs.IntVar(&o.PID, "pid", 0, "server pid for RSS (0 = find the process listening on -url, -1 = skip)")
	fs.DurationVar(&o.PublishEvery, "publish-every", 0, "publish to -subscribe at this interval during the hold and check every connection gets it")
	fs.DurationVar(&o.Settle, "settle", 2*time.Second, "pause between all-up and the RSS sample")
	jsonOut := fs.Bool("json", false, "also print the result as one JSON line on stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !finishCommon(&o.Common, sources, stderr) {
		return 2
	}
	r, err := bench.RunIdle(ctx, o)
	if r != nil {
		r.Print(stdout)
		if *jsonOut {
			_ = json.NewEncoder(stdout).Encode(r)
		}
	}
	if err != nil {
		return failed(stderr, "idle", err)
	}
	if r.Failed > 0 || r.Lost() > 0 || (r.Delivery != nil && r.Delivery.Dropped > 0) {
		return 1
	}
	return 0
}

func runFanout(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mako-bench fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.FanoutOptions
	var sources string
	common(fs, &o.Common, &sources)
	fs.IntVar(&o.Subs, "subs", 1000, "subscribers")
	fs.StringVar(&o.Channel, "channel", "demo.fan", "subscription the subscribers take and messages go to")
	fs.IntVar(&o.Size, "size", 100, "bytes per published message body")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish")
	fs.Float64Var(&o.Rate, "rate", 0, "messages/s over all posters (0 = as fast as the window allows)")
	fs.IntVar(&o.Posters, "posters", 4, "concurrent publishers, each its own sequence")
	fs.IntVar(&o.Window, "window", 100, "messages in flight: published but not yet received by every subscriber")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "how long to wait for the last deliveries")
	fs.IntVar(&o.PID, "pid", 0, "server pid for CPU time (0 = find the process listening on -url, -1 = skip)")
	jsonOut := fs.Bool("json", false, "also print the result as one JSON line on stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !finishCommon(&o.Common, sources, stderr) {
		return 2
	}
	r, err := bench.RunFanout(ctx, o)
	if r != nil {
		r.Print(stdout)
		if *jsonOut {
			_ = json.NewEncoder(stdout).Encode(r)
		}
	}
	if err != nil {
		return failed(stderr, "fanout", err)
	}
	if r.Failed > 0 || r.Lost() > 0 || r.Stalled || r.PostErrors > 0 ||
		(r.Delivery != nil && (r.Delivery.OutOfOrder > 0 || r.Delivery.Dropped > 0)) {
		return 1
	}
	return 0
}
