package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/coder/websocket"
)

// tail connects as a client, optionally authenticates, subscribes and
// prints every frame it receives, one JSON object per line.
func tail(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mako tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ticket := fs.String("ticket", "", "authenticate with this ticket first")
	var extras multiFlag
	fs.Var(&extras, "field", "extra field for the subscribe event, NAME=JSON (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mako tail [-ticket T] [-field name=json] ws://HOST:PORT SUBSCRIPTION")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	url, subName := fs.Arg(0), fs.Arg(1)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "mako tail:", err)
		return 1
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	send := func(v map[string]any) error {
		b, _ := json.Marshal(v)
		return c.Write(ctx, websocket.MessageText, b)
	}
	if *ticket != "" {
		if err := send(map[string]any{"event": "auth", "ticket": *ticket}); err != nil {
			fmt.Fprintln(stderr, "mako tail:", err)
			return 1
		}
	}
	sub := map[string]any{"event": "subscribe", "subscription": subName}
	for _, e := range extras {
		name, val, _ := strings.Cut(e, "=")
		var v any
		if json.Unmarshal([]byte(val), &v) != nil {
			v = val
		}
		sub[name] = v
	}
	if err := send(sub); err != nil {
		fmt.Fprintln(stderr, "mako tail:", err)
		return 1
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintln(stderr, "mako tail:", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
