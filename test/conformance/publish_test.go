package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mako/config"
)

// pubFixture: "books" with extra field org and filter fields org/user_id,
// and one authenticated client subscribed to books.b1 with org o1.
func pubFixture(t *testing.T, mod func(s *config.Service)) (*fixture, *clientT) {
	t.Helper()
	f := newFixture(t, func(f *fixture) {
		s := &config.Service{
			Authorizer:   f.url("/authorizer"),
			ExtraFields:  []string{"org", "team"},
			FilterFields: []string{"org", "user_id"},
		}
		if mod != nil {
			mod(s)
		}
		f.cfg.Services["books"] = s
	})
	c := f.authed()
	subscribed(t, f, c, "books.b1", "org", "o1")
	return f, c
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

// published_at: a parseable ISO-8601 value is echoed, normalised to UTC
// with +00:00; an unparseable one is omitted.
func TestPublishedAt(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	cases := []struct {
		in   string
		want time.Time // zero: omitted
	}{
		{`"2024-01-02T03:04:05+00:00"`, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{`"2024-01-02T03:04:05.123456Z"`, time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)},
		{`"2024-01-02T05:04:05.5+02:00"`, time.Date(2024, 1, 2, 3, 4, 5, 500000000, time.UTC)},
		{`"2024-01-02T03:04:05"`, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{`"2024-01-02"`, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		{`"not a date"`, time.Time{}},
		{`"2024-13-02T03:04:05Z"`, time.Time{}},
		{`""`, time.Time{}},
		{`12345`, time.Time{}},
		{`null`, time.Time{}},
	}
	for i, tc := range cases {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,"published_at":%s}`, i, tc.in))
		m := c.Recv()
		if tc.want.IsZero() {
			if _, ok := m["published_at"]; ok {
				t.Fatalf("published_at %s: echoed %v", tc.in, m["published_at"])
			}
			expectLive(t, m, fmt.Sprintf(`{"event":"message","subscription":"books.b1","data":%d,"org":"o1"}`, i))
			continue
		}
		got := parseISO(t, "published_at", m["published_at"])
		if !got.Equal(tc.want) {
			t.Fatalf("published_at %s: got %v, want %v", tc.in, got, tc.want)
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

// throttle: the first message goes at once; a burst inside the window
// yields the first and the last, the last with sent_at only, at the end of
// the window.
func TestThrottleBurst(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	const window = 300 * time.Millisecond
	start := time.Now()
	for i := 0; i < 5; i++ {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,"options":{"throttle":0.3}}`, i))
	}
	if time.Since(start) > window/2 {
		t.Skipf("publishing the burst took %v, longer than half the window", time.Since(start))
	}
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":0,"org":"o1"}`)
	first := time.Since(start)
	expectLate(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":4,"org":"o1"}`)
	last := time.Since(start)
	if last < window*8/10 {
		t.Fatalf("trailing message after %v, window is %v", last, window)
	}
	if first > window/2 {
		t.Fatalf("first message after %v: not at once", first)
	}
	// After the window, a new message goes at once again.
	time.Sleep(window + 100*time.Millisecond)
	f.publish(`{"subscription":"books.b1","data":5,"options":{"throttle":0.3}}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":5,"org":"o1"}`)
}

// throttle: a steady stream yields about one message per window, in
// order, and the last message always arrives.
func TestThrottleSteadyStream(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	const n = 24
	start := time.Now()
	for i := 0; i < n; i++ {
		f.publish(fmt.Sprintf(`{"subscription":"books.b1","data":%d,"options":{"throttle":0.2}}`, i))
		time.Sleep(50 * time.Millisecond) // the stream's pace, not synchronisation
	}
	elapsed := time.Since(start)
	var got []int
	for {
		m := c.Recv()
		d := int(m["data"].(float64))
		got = append(got, d)
		if d == n-1 {
			break
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("throttled stream out of order: %v", got)
		}
	}
	windows := int(elapsed/(200*time.Millisecond)) + 1
	if len(got) < windows/2 || len(got) > windows+2 {
		t.Fatalf("%d messages over %v (%d windows): %v", len(got), elapsed, windows, got)
	}
	c.Quiet()
}

// throttle windows are per throttle_key: another key goes at once.
func TestThrottleKeys(t *testing.T) {
	t.Parallel()
	f, c := pubFixture(t, nil)
	f.publish(`{"subscription":"books.b1","data":0,"options":{"throttle":1,"throttle_key":"a"}}`)
	f.publish(`{"subscription":"books.b1","data":1,"options":{"throttle":1,"throttle_key":"b"}}`)
	f.publish(`{"subscription":"books.b1","data":2,"options":{"throttle":1}}`)
	f.publish(`{"subscription":"books.b1","data":3}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":0,"org":"o1"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":1,"org":"o1"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":2,"org":"o1"}`)
	expectLive(t, c.Recv(), `{"event":"message","subscription":"books.b1","data":3,"org":"o1"}`)
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
