package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

// The composition rules of docs/protocol.md ("How replies and pushes are
// composed"), one row per reply or push kind. Each row drives a real server
// with a real WebSocket client and real HTTP services, takes the frame of
// its kind as sent, and checks the exact top-level keys in order, their
// values, and the timing fields' format. Key order is SocketShark's: the
// insertion order of the Python dict it serialises.

// composeRow is one row of the rules table.
type composeRow struct {
	name string
	// mod adjusts the fixture (service "books" has every callback and
	// extra_fields org, team) before the server starts.
	mod func(f *fixture)
	// frame produces the frame of the row's kind.
	frame func(t *testing.T, f *fixture) []byte
	// keys are the top-level keys, in order.
	keys string
	// values are the expected values of every key but the timing ones
	// (received_at, queue_size, sent_at), which are checked for format.
	values string
}

// Frames carry extra fields in the client's order "team, org"; the config
// lists them "org, team", and SocketShark echoes them in config order.
const subFrame = `{"event":"subscribe","subscription":"books.b1","team":"t","org":"o","x":"not an extra field"}`

func composeFixture(f *fixture) {
	s := allCallbacks(f)
	s.AuthorizerFields = nil
}

// subscribedRaw logs in and subscribes with subFrame, returning the client;
// the subscribe's service calls are consumed.
func subscribedRaw(t *testing.T, f *fixture) *clientT {
	t.Helper()
	c := f.authed()
	m := c.Roundtrip(subFrame)
	if m["status"] != "ok" {
		t.Fatalf("subscribe: %v", m)
	}
	f.call("/authorizer", "")
	f.call("/before_subscribe", "")
	f.call("/on_subscribe", "")
	return c
}

func composeRows() []composeRow {
	return []composeRow{
		{
			name:   "invalid event",
			frame:  func(t *testing.T, f *fixture) []byte { return rawRoundtrip(f.dial(), `[1]`) },
			keys:   "status error",
			values: `{"status":"error","error":"` + errInvalidEvent + `"}`,
		},
		{
			name:   "unknown event",
			frame:  func(t *testing.T, f *fixture) []byte { return rawRoundtrip(f.dial(), `{"event":"nope","org":"o"}`) },
			keys:   "event status error",
			values: `{"event":"nope","status":"error","error":"` + errEventNotFound + `"}`,
		},
		{
			name:   "unknown event named empty",
			frame:  func(t *testing.T, f *fixture) []byte { return rawRoundtrip(f.dial(), `{"event":""}`) },
			keys:   "event status error",
			values: `{"event":"","status":"error","error":"` + errEventNotFound + `"}`,
		},
		{
			name: "pong",
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.dial(), `{"event":"ping","data":"p","org":"o"}`)
			},
			keys:   "event data",
			values: `{"event":"pong","data":"p"}`,
		},
		{
			name:   "pong without string data",
			frame:  func(t *testing.T, f *fixture) []byte { return rawRoundtrip(f.dial(), `{"event":"ping","data":5}`) },
			keys:   "event data",
			values: `{"event":"pong","data":null}`,
		},
		{
			name: "auth ok",
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.dial(), `{"event":"auth","ticket":"tk","org":"o"}`)
			},
			keys:   "event status",
			values: `{"event":"auth","status":"ok"}`,
		},
		{
			name:   "auth error, mako's string",
			frame:  func(t *testing.T, f *fixture) []byte { return rawRoundtrip(f.dial(), `{"event":"auth","org":"o"}`) },
			keys:   "event status error",
			values: `{"event":"auth","status":"error","error":"` + errNeedsTicket + `"}`,
		},
		{
			name: "auth error, the service's error verbatim, no data",
			mod:  func(f *fixture) { f.svc.Reply("/auth", `{"status":"error","error":7,"data":{"x":1}}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.dial(), `{"event":"auth","ticket":"tk"}`)
			},
			keys:   "event status error",
			values: `{"event":"auth","status":"error","error":7}`,
		},
		{
			name: "subscription check error: extra fields of the named service, even for a bad format",
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.dial(), `{"event":"subscribe","subscription":"books.","team":"t","org":"o"}`)
			},
			keys:   "event status error org team subscription",
			values: `{"event":"subscribe","status":"error","error":"` + errSubFormat + `","org":"o","team":"t","subscription":"books."}`,
		},
		{
			name: "subscription check error: no extra fields without a configured service",
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.dial(), `{"event":"message","subscription":"nosuch.b","org":"o"}`)
			},
			keys:   "event status error subscription",
			values: `{"event":"message","status":"error","error":"` + errInvalidSvc + `","subscription":"nosuch.b"}`,
		},
		{
			name:   "subscription check error: authentication required",
			frame:  func(t *testing.T, f *fixture) []byte { return rawRoundtrip(f.dial(), subFrame) },
			keys:   "event status error org team subscription",
			values: `{"event":"subscribe","status":"error","error":"` + errAuthRequired + `","org":"o","team":"t","subscription":"books.b1"}`,
		},
		{
			name: "subscription check error: the held subscription's extra fields",
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				return rawRoundtrip(c, `{"event":"subscribe","subscription":"books.b1","org":"other"}`)
			},
			keys:   "event status error org team subscription",
			values: `{"event":"subscribe","status":"error","error":"` + errAlreadySub + `","org":"o","team":"t","subscription":"books.b1"}`,
		},
		{
			name: "callback error: its error and data, extra fields, subscription last",
			mod:  func(f *fixture) { f.svc.Reply("/authorizer", `{"status":"error","error":"No.","data":{"why":1}}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.authed(), subFrame)
			},
			keys:   "event status error org team data subscription",
			values: `{"event":"subscribe","status":"error","error":"No.","org":"o","team":"t","data":{"why":1},"subscription":"books.b1"}`,
		},
		{
			name: "callback error: error null echoed, false data left out",
			mod:  func(f *fixture) { f.svc.Reply("/before_subscribe", `{"status":"error","error":null,"data":0}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.authed(), subFrame)
			},
			keys:   "event status error org team subscription",
			values: `{"event":"subscribe","status":"error","error":null,"org":"o","team":"t","subscription":"books.b1"}`,
		},
		{
			name: "callback error: no error key gives the default",
			mod:  func(f *fixture) { f.svc.Reply("/on_message", `{"status":"error","data":[1]}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(subscribedRaw(t, f), `{"event":"message","subscription":"books.b1","data":1}`)
			},
			keys:   "event status error org team data subscription",
			values: `{"event":"message","status":"error","error":"` + errUnhandled + `","org":"o","team":"t","data":[1],"subscription":"books.b1"}`,
		},
		{
			name: "subscribe ok with data",
			mod:  func(f *fixture) { f.svc.Reply("/before_subscribe", `{"status":"ok","data":{"a":1}}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(f.authed(), subFrame)
			},
			keys:   "event status org team data subscription",
			values: `{"event":"subscribe","status":"ok","org":"o","team":"t","data":{"a":1},"subscription":"books.b1"}`,
		},
		{
			name: "subscribe ok, null data left out, false kept",
			mod:  func(f *fixture) { f.svc.Reply("/before_subscribe", `{"status":"ok","data":null}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				c := f.authed()
				a := rawRoundtrip(c, subFrame)
				f.svc.Reply("/before_subscribe", `{"status":"ok","data":false}`)
				b := rawRoundtrip(c, `{"event":"subscribe","subscription":"books.b2","org":"o","team":"t"}`)
				checkKeys(t, b, "event status org team data subscription")
				return a
			},
			keys:   "event status org team subscription",
			values: `{"event":"subscribe","status":"ok","org":"o","team":"t","subscription":"books.b1"}`,
		},
		{
			name: "subscribe ok dropped by a check on the before_subscribe reply: no reply (the next frame is the pong)",
			mod: func(f *fixture) {
				f.cfg.Services["books"].FilterFields = []string{"user_id"}
				f.svc.Reply("/before_subscribe", `{"status":"ok","data":1,"user_id":"someone else"}`)
			},
			frame: func(t *testing.T, f *fixture) []byte {
				c := f.authed()
				c.Send(subFrame)
				return rawRoundtrip(c, `{"event":"ping","data":"after"}`)
			},
			keys:   "event data",
			values: `{"event":"pong","data":"after"}`,
		},
		{
			name: "message ok with data",
			mod:  func(f *fixture) { f.svc.Reply("/on_message", `{"status":"ok","data":{"r":1}}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(subscribedRaw(t, f), `{"event":"message","subscription":"books.b1","data":1}`)
			},
			keys:   "event status org team data subscription",
			values: `{"event":"message","status":"ok","org":"o","team":"t","data":{"r":1},"subscription":"books.b1"}`,
		},
		{
			name: "message ok, data null: a reply without data",
			mod:  func(f *fixture) { f.svc.Reply("/on_message", `{"status":"ok","data":null}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(subscribedRaw(t, f), `{"event":"message","subscription":"books.b1","data":1}`)
			},
			keys:   "event status org team subscription",
			values: `{"event":"message","status":"ok","org":"o","team":"t","subscription":"books.b1"}`,
		},
		{
			name: "message ok without a data key: no reply (the next frame is the pong)",
			mod:  func(f *fixture) { f.svc.Reply("/on_message", `{"status":"ok","other":1}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				c.Send(`{"event":"message","subscription":"books.b1","data":1}`)
				return rawRoundtrip(c, `{"event":"ping","data":"after"}`)
			},
			keys:   "event data",
			values: `{"event":"pong","data":"after"}`,
		},
		{
			name: "unsubscribe ok with data",
			mod:  func(f *fixture) { f.svc.Reply("/before_unsubscribe", `{"status":"ok","data":"bye"}`) },
			frame: func(t *testing.T, f *fixture) []byte {
				return rawRoundtrip(subscribedRaw(t, f), `{"event":"unsubscribe","subscription":"books.b1","org":"x"}`)
			},
			keys:   "event status org team data subscription",
			values: `{"event":"unsubscribe","status":"ok","org":"o","team":"t","data":"bye","subscription":"books.b1"}`,
		},
		{
			name: "unsubscribe pushed by a failed re-authorization: data, error, extra fields last",
			mod: func(f *fixture) {
				renewing(f)
				f.cfg.Services["free"] = &config.Service{RequireAuthentication: boolp(false)}
				f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok"}`, `{"status":"error","error":"Gone.","data":{"x":1}}`))
				f.svc.Reply("/before_unsubscribe", `{"status":"error","error":"ignored","data":{"bye":1}}`)
			},
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				checkKeys(t, rawRoundtrip(c, `{"event":"subscribe","subscription":"free.x"}`), "event status subscription")
				g := newGate(t)
				f.svc.ReplyFunc("/on_unsubscribe", func(e2e.Call) (int, string) { g.wait(); return 200, `{"status":"ok"}` })
				// Not e2e.Tick: it would wait for the held call.
				f.clock.Advance(10 * renewalPeriod)
				ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
				defer cancel()
				if err := f.srv.RunTimers(ctx); err != nil {
					t.Fatal(err)
				}
				// As self_unsubscribe: the push follows on_unsubscribe. A
				// message published while on_unsubscribe is held arrives
				// first (a push written before the call would precede it).
				g.waitEntered(t)
				f.publish(`{"subscription":"free.x","data":"marker"}`)
				if m := c.Recv(); m["data"] != "marker" {
					t.Fatalf("got %v before on_unsubscribe returned", m)
				}
				g.open()
				return c.RecvRaw()
			},
			keys:   "event subscription data error org team",
			values: `{"event":"unsubscribe","subscription":"books.b1","data":{"bye":1},"error":"Gone.","org":"o","team":"t"}`,
		},
		{
			name: "unsubscribe pushed: error null and no data left out",
			mod: func(f *fixture) {
				renewing(f)
				f.svc.ReplyFunc("/authorizer", sequence(`{"status":"ok"}`, `{"status":"error","error":null}`))
			},
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				e2e.Tick(t, f.srv, f.clock, 10*renewalPeriod)
				return c.RecvRaw()
			},
			keys:   "event subscription org team",
			values: `{"event":"unsubscribe","subscription":"books.b1","org":"o","team":"t"}`,
		},
		{
			name: "live message with published_at (as the publisher wrote it, through isoformat)",
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				f.publish(`{"subscription":"books.b1","data":{"n":1},"published_at":"2026-01-02T05:04:05.123456+02:00","org":"o"}`)
				return c.RecvRaw()
			},
			keys: "event subscription data published_at received_at queue_size org team sent_at",
			values: `{"event":"message","subscription":"books.b1","data":{"n":1},` +
				`"published_at":"2026-01-02T05:04:05.123456+02:00","org":"o","team":"t"}`,
		},
		{
			name: "live message without published_at",
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				f.publish(`{"subscription":"books.b1","data":2,"published_at":"not a time"}`)
				return c.RecvRaw()
			},
			keys:   "event subscription data received_at queue_size org team sent_at",
			values: `{"event":"message","subscription":"books.b1","data":2,"org":"o","team":"t"}`,
		},
		{
			name: "message held in the provisional window, sent after the ok: published_at, sent_at",
			mod:  func(f *fixture) { singleLoop(f) },
			frame: func(t *testing.T, f *fixture) []byte {
				obs := subscribedRaw(t, f)
				g := newGate(t)
				f.svc.ReplyFunc("/before_subscribe", func(e2e.Call) (int, string) { g.wait(); return 200, `{"status":"ok"}` })
				c := f.authed()
				c.Send(subFrame)
				g.waitEntered(t)
				f.publishSeen(obs, `{"subscription":"books.b1","data":3,"published_at":"2026-01-02T03:04:05"}`)
				g.open()
				checkKeys(t, c.RecvRaw(), "event status org team subscription")
				return c.RecvRaw()
			},
			keys: "event subscription data published_at org team sent_at",
			values: `{"event":"message","subscription":"books.b1","data":3,` +
				`"published_at":"2026-01-02T03:04:05","org":"o","team":"t"}`,
		},
		{
			name: "trailing message of a throttle window: sent_at only",
			mod:  func(f *fixture) { f.clock = fakeClock(f) },
			frame: func(t *testing.T, f *fixture) []byte {
				c := subscribedRaw(t, f)
				f.publish(`{"subscription":"books.b1","data":0,"options":{"throttle":1}}`)
				f.publish(`{"subscription":"books.b1","data":1,"options":{"throttle":1},"published_at":"2026-01-02T03:04:05.123456+00:00"}`)
				f.publish(`{"subscription":"books.b1","data":"marker"}`)
				checkKeys(t, c.RecvRaw(), "event subscription data received_at queue_size org team sent_at")
				checkKeys(t, c.RecvRaw(), "event subscription data received_at queue_size org team sent_at")
				e2e.Tick(t, f.srv, f.clock, time.Second)
				return c.RecvRaw()
			},
			keys:   "event subscription data org team sent_at",
			values: `{"event":"message","subscription":"books.b1","data":1,"org":"o","team":"t"}`,
		},
		{
			name: "extra fields named like the message's keys: in place, sent_at keeps the send time",
			mod: func(f *fixture) {
				f.cfg.Services["odd"] = &config.Service{RequireAuthentication: boolp(false), ExtraFields: []string{"sent_at", "data"}}
			},
			frame: func(t *testing.T, f *fixture) []byte {
				c := f.dial()
				checkKeys(t, rawRoundtrip(c, `{"event":"subscribe","subscription":"odd.x","data":"mine","sent_at":"fake"}`),
					"event status sent_at data subscription")
				f.publish(`{"subscription":"odd.x","data":"theirs"}`)
				return c.RecvRaw()
			},
			keys:   "event subscription data received_at queue_size sent_at",
			values: `{"event":"message","subscription":"odd.x","data":"mine"}`,
		},
	}
}

// renewing puts the fixture on a fake clock with re-authorization every
// renewalPeriod (no jitter).
func renewing(f *fixture) {
	f.clock = fakeClock(f)
	s := f.cfg.Services["books"]
	s.AuthorizationRenewalPeriod = config.Seconds(renewalPeriod.Seconds())
}

func TestCompositionRules(t *testing.T) {
	t.Parallel()
	for _, row := range composeRows() {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(f *fixture) {
				composeFixture(f)
				if row.mod != nil {
					row.mod(f)
				}
			})
			raw := row.frame(t, f)
			checkKeys(t, raw, row.keys)
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("frame is not a JSON object: %s", raw)
			}
			for _, k := range []string{"received_at", "sent_at"} {
				if v, ok := got[k]; ok {
					parseISO(t, k, v)
					delete(got, k)
				}
			}
			if v, ok := got["queue_size"]; ok {
				if q, isNum := v.(float64); !isNum || q < 0 || q != math.Trunc(q) {
					t.Fatalf("queue_size = %#v, want an integer ≥ 0", v)
				}
				delete(got, "queue_size")
			}
			expectJSONMsg(t, string(raw), got, row.values)
		})
	}
}

// rawRoundtrip sends frame and returns the next frame's bytes.
func rawRoundtrip(c *clientT, frame string) []byte {
	c.Send(frame)
	return c.RecvRaw()
}

// checkKeys asserts the top-level keys of raw, in order (space separated).
func checkKeys(t testing.TB, raw []byte, want string) {
	t.Helper()
	got, err := topKeys(raw)
	if err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("keys in order:\n got  %s\n want %s\n frame %s", strings.Join(got, " "), want, raw)
	}
}

// topKeys lists an object's top-level keys in the order they appear.
func topKeys(raw []byte) ([]string, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// A ping's string comes back cut in its JSON text: a lone surrogate escape
// stays the same escape (SocketShark's json.loads keeps it and json.dumps
// writes it back), a surrogate pair counts as one character.
func TestPongEscapesVerbatim(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.dial()
	a127 := strings.Repeat("a", 127)
	for _, tc := range []struct{ data, want string }{
		{`"\ud800x"`, `{"event":"pong","data":"\ud800x"}`},
		{`"` + a127 + `\ud83d\ude00b"`, `{"event":"pong","data":"` + a127 + `\ud83d\ude00"}`},
	} {
		if got := string(rawRoundtrip(c, `{"event":"ping","data":`+tc.data+`}`)); got != tc.want {
			t.Fatalf("ping %s:\n got  %s\n want %s", tc.data, got, tc.want)
		}
	}
}
