package edge

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"mako/config"
	"mako/protocol"
	"mako/pubsub"
	"mako/server"
)

// FuzzPublish drives a running server with arbitrary publish API bodies and
// arbitrary broker payloads (what any publisher on Redis may send on a
// channel), with a subscriber connected:
//   - POST /publish answers 200 exactly when the body decodes
//     (protocol.DecodePublished, the function that validates it), and
//     otherwise an error status with a JSON reason;
//   - whatever reaches the subscriber is a JSON message for its
//     subscription, and the session survives: a sentinel published after
//     each input on the same channel (so the same fan-out worker, in order)
//     arrives.
func FuzzPublish(f *testing.F) {
	for _, s := range []string{
		`{"subscription":"demo.fz","data":{"k":"v"}}`,
		`{"subscription":"demo.fz","data":1,"options":{"order":3,"order_key":"k","throttle":0.01,"throttle_key":"t"}}`,
		`{"subscription":"demo.fz","data":"x","published_at":"2026-11-25T08:24:12.5+02:00","user_id":"u"}`,
		`{"subscription":"demo.fz","data":NaN}`,
		`{"subscription":"demo.fz","data":"\ud800"}`,
		"{\"subscription\":\"demo.fz\",\"data\":\"\xff\"}",
		`{"subscription":"","data":1}`, `{"data":1}`, `[]`, ``, `{"subscription":"demo.fz"`,
	} {
		f.Add([]byte(s), []byte(s))
	}
	no := false
	broker := pubsub.NewEmbedded()
	srv := startServer(f, func(c *cfgT) {
		c.Services["demo"] = &config.Service{RequireAuthentication: &no}
	}, func(o *server.Options) { o.Broker = broker })
	rc := open(f, srv)
	rc.send(`{"event":"subscribe","subscription":"demo.fz"}`)
	if m := rc.nextJSON(); m["status"] != "ok" {
		f.Fatalf("subscribe: %v", m)
	}
	url := "http://" + srv.APIAddr() + "/publish"
	n := 0
	f.Fuzz(func(t *testing.T, body, raw []byte) {
		rc.t = t
		r := post(t, url, "", string(body))
		_, derr := protocol.DecodePublished(body)
		switch {
		case r.status == 200:
			if derr != nil {
				t.Fatalf("accepted %q, which does not decode: %v", body, derr)
			}
		case r.status == http.StatusServiceUnavailable && strings.Contains(r.raw, "fan-out queue full"):
		default:
			if derr == nil {
				t.Fatalf("refused %q (%d %s), which decodes", body, r.status, r.raw)
			}
			r.expectError(t, r.status)
		}

		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := broker.Publish(ctx, "demo.fz", raw); err != nil {
			t.Fatal(err)
		}
		n++
		sentinel := fmt.Sprintf("sentinel-%d", n)
		if err := broker.Publish(ctx, "demo.fz", []byte(`{"subscription":"demo.fz","data":"`+sentinel+`"}`)); err != nil {
			t.Fatal(err)
		}
		for {
			// Read as Python reads JSON: mako passes NaN and Infinity
			// through, as SocketShark does (docs/json.md).
			fr := rc.next()
			ev, ok := protocol.DecodeClientEvent(fr.payload)
			sub, _, _ := ev.String("subscription")
			if fr.op != opText || !ok || ev.Event != "message" || sub != "demo.fz" {
				t.Fatalf("subscriber got %.300q", fr.payload)
			}
			if data, _ := ev.Raw("data"); string(data) == `"`+sentinel+`"` {
				return
			}
		}
	})
}
