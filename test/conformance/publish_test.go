package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mako/config"
	"mako/internal/e2e"
)

// pubFixture: "books" with extra field org and filter fields org/user_id,
// and one authenticated client subscribed to books.b1 with org o1.
func pubFixture(t *testing.T, mod func(s *config.Service)) (*fixture, *clientT) {
	t.Helper()
	f := newFixture(t, func(f *fixture) { f.cfg.Services["books"] = pubService(f, mod) })
	c := f.authed()
	subscribed(t, f, c, "books.b1", "org", "o1")
	return f, c
}

func pubService(f *fixture, mod func(s *config.Service)) *config.Service {
	s := &config.Service{
		Authorizer:   f.url("/authorizer"),
		ExtraFields:  []string{"org", "team"},
		FilterFields: []string{"org", "user_id"},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

// Published message shape: {"event":"message","subscription","data"} +
// extra fields + received_at, queue_size, sent_at; nothing else of the
// payload (options, other keys) is forwarded.
func TestPublishedMessageShape(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	f.publish(`{"subscription":"books.b1","data":{"title":"New","n":[1,2.5,null]},"options":{"order":1},"other":"x","org":"o1"}`)
	m := c.Recv()
	expectLive(t, m, `{"event":"message","subscription":"books.b1","data":{"title":"New","n":[1,2.5,null]},"org":"o1"}`)
	for _, data := range []string{`null`, `"s"`, `0`, `[]`, `{}`, `true`} {
		f.publish(`{"subscription":"books.b1","data":` + data + `}`)
		expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":`+data+`,"org":"o1"}`)
	}
}

// Timestamps: received_at ≤ sent_at, both close to now.
func TestPublishedTimestamps(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	before := time.Now().Add(-time.Second)
	f.publish(`{"subscription":"books.b1","data":1}`)
	m := c.Recv()
	after := time.Now().Add(time.Second)
	for _, k := range []string{"received_at", "sent_at"} {
		ts := parseISO(t, k, m[k])
		if ts.Before(before) || ts.After(after) {
			t.Fatalf("%s = %v, not around now", k, ts)
		}
	}
}

// published_at: a parseable ISO-8601 value is echoed as SocketShark echoes
// it, Python's datetime.fromisoformat(v).isoformat() (the publisher's own
// offset kept, none for a naive time, no fraction when it is zero); an
// unparseable one is omitted.
func TestPublishedAt(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	cases := []struct {
		in   string
		want string // "": omitted
	}{
		{`"2024-01-02T03:04:05+00:00"`, "2024-01-02T03:04:05+00:00"},
		{`"2024-01-02T03:04:05.123456Z"`, "2024-01-02T03:04:05.123456+00:00"},
		{`"2024-01-02T05:04:05.5+02:00"`, "2024-01-02T05:04:05.500000+02:00"},
		{`"2024-01-02T03:04:05"`, "2024-01-02T03:04:05"},
		{`"2024-01-02"`, "2024-01-02T00:00:00"},
		{`"20240102T030405-0130"`, "2024-01-02T03:04:05-01:30"},
		{`"not a date"`, ""},
		{`"2024-13-02T03:04:05Z"`, ""},
		{`""`, ""},
		{`12345`, ""},
		{`null`, ""},
	}
	for i, tc := range cases {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,"published_at":%s}`, i, tc.in))
		m := c.Recv()
		if tc.want == "" {
			if _, ok := m["published_at"]; ok {
				t.Fatalf("published_at %s: echoed %v", tc.in, m["published_at"])
			}
			expectLive(t, m, fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"org":"o1"}`, i))
			continue
		}
		if got := m["published_at"]; got != tc.want {
			t.Fatalf("published_at %s: got %#v, want %q", tc.in, got, tc.want)
		}
		delete(m, "published_at")
		expectLive(t, m, fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"org":"o1"}`, i))
	}
}

// The publish API refuses an object without subscription or data, or
// anything that is not a JSON object (400); nothing is delivered.
func TestPublishAPIRejectsInvalid(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	for _, body := range []string{
		`{"data":1}`,
		`{"subscription":"books.b1"}`,
		`{"subscription":"books.b1","options":{"order":1}}`,
		`{}`,
		`[{"subscription":"books.b1","data":1}]`,
		`"books.b1"`,
		`not json`,
		``,
	} {
		if code := f.publishStatus(body); code != 400 {
			t.Fatalf("publish %q: status %d, want 400", body, code)
		}
	}
	f.publish(`{"subscription":"books.b1","data":"ok"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"ok","org":"o1"}`)
}

// filter_fields: an extra field must equal the subscription's value, any
// other the session's auth field; a field absent from the message does not
// filter. Delivered messages keep publish order.
func TestFilterFields(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	seq := []struct {
		extra     string
		delivered bool
	}{
		{`"org":"o2"`, false},
		{`"org":"o1"`, true},
		{`"user_id":"u2"`, false},
		{`"user_id":"u1"`, true},
		{`"org":"o1","user_id":"u2"`, false},
		{`"org":"o2","user_id":"u1"`, false},
		{`"org":"o1","user_id":"u1"`, true},
		{`"org":null`, false},
		{`"session_id":"other"`, true}, // not a filter field
		{`"team":"x"`, true},           // extra field, not a filter field
		{`"other":1`, true},
	}
	var want []int
	for i, s := range seq {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,%s}`, i, s.extra))
		if s.delivered {
			want = append(want, i)
		}
	}
	for _, i := range want {
		expectLive(t, c.Recv(), fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"org":"o1"}`, i))
	}
}

// filter_fields on an extra field the subscription was made without: the
// subscription's value is null, so only a null (or absent) value passes;
// values compare as Python does (1 == 1.0 == true).
func TestFilterFieldsValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(f *fixture) {
		f.cfg.Services["books"] = &config.Service{
			Authorizer:   f.url("/authorizer"),
			ExtraFields:  []string{"org", "n"},
			FilterFields: []string{"org", "n"},
		}
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1", "n", 1)
	seq := []struct {
		extra     string
		delivered bool
	}{
		{`"org":"x"`, false},
		{`"org":null`, true},
		{`"n":2`, false},
		{`"n":"1"`, false},
		{`"n":1.0`, true},
		{`"n":1`, true},
		{`"n":true`, true},
	}
	var want []int
	for i, s := range seq {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,%s}`, i, s.extra))
		if s.delivered {
			want = append(want, i)
		}
	}
	for _, i := range want {
		expectLive(t, c.Recv(), fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"n":1}`, i))
	}
}

// orderSeq publishes data i with the given options and expects exactly the
// delivered ones, in order.
func orderSeq(t *testing.T, f *fixture, c *clientT, seq []orderStep) {
	t.Helper()
	var want []int
	for i, s := range seq {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,"options":%s}`, i, s.options))
		if s.delivered {
			want = append(want, i)
		}
	}
	for _, i := range want {
		expectLive(t, c.Recv(), fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"org":"o1"}`, i))
	}
}

type orderStep struct {
	options   string
	delivered bool
}

// order: numbers must exceed the highest seen.
func TestOrderNumbers(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	orderSeq(t, f, c, []orderStep{
		{`{"order":1}`, true},
		{`{"order":3}`, true},
		{`{"order":2}`, false},
		{`{"order":3}`, false},
		{`{"order":3.5}`, true},
		{`{"order":-10}`, false},
		{`{}`, true},
		{`{"order":4}`, true},
	})
}

// order: numeric strings parse as numbers ("3", "1e1"), booleans are 1/0.
func TestOrderStringsAndBooleans(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	orderSeq(t, f, c, []orderStep{
		{`{"order":"3"}`, true},
		{`{"order":2}`, false},
		{`{"order":"2.5"}`, false},
		{`{"order":"1e1"}`, true},
		{`{"order":9.5}`, false},
		{`{"order":"10"}`, false},
		{`{"order":11}`, true},
	})
	f2, c2 := pubFixture(t, nil)
	orderSeq(t, f2, c2, []orderStep{
		{`{"order":false}`, true},
		{`{"order":0}`, false},
		{`{"order":true}`, true},
		{`{"order":1}`, false},
		{`{"order":"1"}`, false},
		{`{"order":2}`, true},
		{`{"order":true}`, false},
	})
}

// order: state is per order_key; an absent key (or null) is the default key.
func TestOrderKeys(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	orderSeq(t, f, c, []orderStep{
		{`{"order":5,"order_key":"a"}`, true},
		{`{"order":1,"order_key":"b"}`, true},
		{`{"order":3,"order_key":"a"}`, false},
		{`{"order":2}`, true},
		{`{"order":2,"order_key":"b"}`, true},
		{`{"order":1,"order_key":null}`, false},
		{`{"order":3,"order_key":null}`, true},
		{`{"order":6,"order_key":"a"}`, true},
		{`{"order":3,"order_key":"c"}`, true},
	})
}

// order: an unusable order is ignored and leaves the state alone.
func TestOrderUnusableIgnored(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	orderSeq(t, f, c, []orderStep{
		{`{"order":5}`, true},
		{`{"order":"abc"}`, true},
		{`{"order":null}`, true},
		{`{"order":[1]}`, true},
		{`{"order":{"n":1}}`, true},
		{`{"order":""}`, true},
		{`{"order":4}`, false},
		{`{"order":5}`, false},
		{`{"order":6}`, true},
	})
}

// order is per subscription: two sessions hold their own state.
func TestOrderPerSubscription(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	f.publish(`{"subscription":"books.b1","data":0,"options":{"order":5}}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":0,"org":"o1"}`)
	d := f.authed()
	subscribed(t, f, d, "books.b1", "org", "o1")
	f.publish(`{"subscription":"books.b1","data":1,"options":{"order":3}}`)
	f.publish(`{"subscription":"books.b1","data":2,"options":{"order":6}}`)
	expectLive(t, d.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`)
	expectLive(t, d.Recv(), `{"event":"message","subscription":"books.b1","data":2,"org":"o1"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":2,"org":"o1"}`)
}

// throttleRig is pubFixture on a fake clock: every message published
// between two ticks arrives at the same instant, and a throttle window's
// trailing message goes out only when a tick runs its timer.
type throttleRig struct {
	t     *testing.T
	f     *fixture
	c     *clientT
	clock *e2e.FakeClock
	start time.Time
	syncs int
}

func newThrottleRig(t *testing.T) *throttleRig {
	t.Helper()
	r := &throttleRig{t: t}
	r.f = newFixture(t, func(f *fixture) {
		r.clock = fakeClock(f)
		f.cfg.Services["books"] = pubService(f, nil)
	})
	r.start = r.clock.Now()
	r.c = r.f.authed()
	subscribed(t, r.f, r.c, "books.b1", "org", "o1")
	return r
}

// pub publishes data i with the given options.
func (r *throttleRig) pub(i int, options string) {
	r.t.Helper()
	r.f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,"options":%s}`, i, options))
}

// sync publishes an unthrottled marker and returns the frames that reached
// the client before it. Messages of one channel reach a session in publish
// order, so once the marker is in, every message published before it has
// been offered to the throttle, and every message sent by then is among
// the frames returned.
func (r *throttleRig) sync() []map[string]any {
	r.t.Helper()
	r.syncs++
	marker := fmt.Sprintf("sync-%d", r.syncs)
	r.f.publish(`{"subscription":"books.b1","data":"` + marker + `"}`)
	var got []map[string]any
	for {
		m := r.c.Recv()
		if m["data"] == marker {
			expectLiveAt(r.t, m, `{"event":"message","subscription":"books.b1","data":"`+marker+`","org":"o1"}`, r.clock.Now())
			return got
		}
		got = append(got, m)
	}
}

// expectFrames syncs and checks the frames that arrived: data want[i] each,
// sent at the current fake instant, live or late.
func (r *throttleRig) expectFrames(live bool, want ...int) {
	r.t.Helper()
	got := r.sync()
	if len(got) != len(want) {
		r.t.Fatalf("at +%v got %d frames %s, want data %v", r.elapsed(), len(got), enc(got), want)
	}
	for i, m := range got {
		w := fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"org":"o1"}`, want[i])
		if live {
			expectLiveAt(r.t, m, w, r.clock.Now())
		} else {
			expectLateAt(r.t, m, w, r.clock.Now())
		}
	}
}

func (r *throttleRig) tick(d time.Duration) { r.t.Helper(); e2e.Tick(r.t, r.f.srv, r.clock, d) }

func (r *throttleRig) elapsed() time.Duration { return r.clock.Now().Sub(r.start) }

// throttle: the first message goes at once; a burst inside the window
// yields the first and the last, the last with sent_at only, when the
// window ends; after the window a new message goes at once again.
func TestThrottleBurst(t *testing.T) {
	t.Parallel()
	r := newThrottleRig(t)
	const window = time.Second
	for i := 0; i < 5; i++ {
		r.pub(i, `{"throttle":1}`)
	}
	r.expectFrames(true, 0)
	r.tick(window - time.Millisecond)
	r.expectFrames(false) // not before the window ends
	r.tick(time.Millisecond)
	r.expectFrames(false, 4)
	// The trailing send opened a window with nothing in it: it lapses.
	r.tick(window)
	r.expectFrames(false)
	r.pub(5, `{"throttle":1}`)
	r.expectFrames(true, 5)
}

// throttle: a steady stream (four messages per window) yields the first at
// once, then one message per window — the newest, sent when the window ends
// — in order, and the last message always arrives.
func TestThrottleSteadyStream(t *testing.T) {
	t.Parallel()
	r := newThrottleRig(t)
	const (
		n      = 24
		window = time.Second
		pace   = window / 4
	)
	for i := 0; i < n; i++ {
		r.pub(i, `{"throttle":1}`)
		if i == 0 {
			r.expectFrames(true, 0)
		} else {
			r.expectFrames(false)
		}
		r.tick(pace)
		if i%4 == 3 { // a window ended: its newest message goes out
			r.expectFrames(false, i)
		} else {
			r.expectFrames(false)
		}
	}
	r.tick(10 * window)
	r.expectFrames(false)
}

// throttle windows are per throttle_key (an absent key is its own): each
// key's first message goes at once, and each key's window ends on its own.
func TestThrottleKeys(t *testing.T) {
	t.Parallel()
	r := newThrottleRig(t)
	r.pub(0, `{"throttle":1,"throttle_key":"a"}`)
	r.pub(1, `{"throttle":2,"throttle_key":"b"}`)
	r.pub(2, `{"throttle":3}`)
	r.pub(3, `{}`)
	r.pub(4, `{"throttle":1,"throttle_key":"a"}`)
	r.pub(5, `{"throttle":2,"throttle_key":"b"}`)
	r.pub(6, `{"throttle":3}`)
	r.pub(7, `{}`)
	r.expectFrames(true, 0, 1, 2, 3, 7)
	r.tick(time.Second)
	r.expectFrames(false, 4)
	r.tick(time.Second)
	r.expectFrames(false, 5)
	r.tick(time.Second)
	r.expectFrames(false, 6)
	r.tick(10 * time.Second)
	r.expectFrames(false)
}

// Messages of one channel reach each session in publish order.
func TestChannelOrder(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	d := f.authed()
	subscribed(t, f, d, "books.b1", "org", "o2")
	const n = 200
	for i := 0; i < n; i++ {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d}`, i))
	}
	for _, cl := range []struct {
		c   *clientT
		org string
	}{{c, "o1"}, {d, "o2"}} {
		for i := 0; i < n; i++ {
			m := cl.c.Recv()
			if m["data"] != float64(i) {
				t.Fatalf("session %s: message %d has data %v", cl.org, i, m["data"])
			}
			if m["org"] != cl.org {
				t.Fatalf("session %s: org %v", cl.org, m["org"])
			}
		}
	}
}

// The publish API keeps big payloads intact.
func TestPublishLargePayload(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	big := strings.Repeat("abcdefgh", 32*1024)
	f.publish(`{"subscription":"books.b1","data":"` + big + `"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":"`+big+`","org":"o1"}`)
}
