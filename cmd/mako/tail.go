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
	// expectOK prints the reply to the event just sent; an error reply
	// ends tail with status 1, since nothing would follow.
	expectOK := func(event string) bool {
		_, b, err := c.Read(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "mako tail:", err)
			return false
		}
		fmt.Fprintln(stdout, string(b))
		var r struct{ Status, Error string }
		if json.Unmarshal(b, &r) != nil || r.Status != "ok" {
			fmt.Fprintf(stderr, "mako tail: %s failed: %s\n", event, r.Error)
			return false
		}
		return true
	}
	if *ticket != "" {
		if err := send(map[string]any{"event": "auth", "ticket": *ticket}); err != nil {
			fmt.Fprintln(stderr, "mako tail:", err)
			return 1
		}
		if !expectOK("auth") {
			return 1
		}
	}
	sub := map[string]any{"event": "subscribe", "subscription": subName}
	for _, e := range extras {
		name, val, _ := strings.Cut(e, "=")
		sub[name] = json.RawMessage(val) // checked by multiFlag.Set
	}
	if err := send(sub); err != nil {
		fmt.Fprintln(stderr, "mako tail:", err)
		return 1
	}
	// A subscription's messages come only after its ok reply.
	if !expectOK("subscribe") {
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

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

// Set takes NAME=JSON; a missing name or a value that is not JSON is
// refused (quote a string: -field 'org="acme"').
func (m *multiFlag) Set(v string) error {
	name, val, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=JSON, got %q", v)
	}
	if !json.Valid([]byte(val)) {
		return fmt.Errorf("%s: value %q is not JSON (quote a string: %s='\"%s\"')", name, val, name, val)
	}
	*m = append(*m, v)
	return nil
}
