package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// 100,000 identical errors over one simulated second come out as the first
// line and one summary with the exact count of the rest.
func TestRateLimitFloodIsBounded(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h := NewRateLimit(slog.NewJSONHandler(&buf, nil), time.Second, clk.now)
	log := slog.New(h)
	const n = 100_000
	for i := range n {
		clk.t = time.Unix(1000, 0).Add(time.Duration(i) * (time.Second / n))
		log.Warn("service call failed", "session", i, "url", "http://svc/auth", "try", 1, "error", "connection refused")
	}
	if got := lines(t, &buf); len(got) != 1 {
		t.Fatalf("%d lines during the flood, want 1: %s", len(got), buf.String())
	}
	clk.t = time.Unix(1001, 0)
	h.(*RateLimit).Flush()
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("%d lines after the interval, want 2: %s", len(got), buf.String())
	}
	sum := got[1]
	if sum["msg"] != "service call failed" || sum["level"] != "WARN" || sum["url"] != "http://svc/auth" ||
		sum["repeated"] != float64(n-1) || sum["in_last"] != "1s" {
		t.Fatalf("summary = %v, want the message, level, url and repeated=%d", sum, n-1)
	}
	// A new interval writes the next line at once.
	log.Warn("service call failed", "url", "http://svc/auth")
	if got := lines(t, &buf); len(got) != 3 {
		t.Fatalf("%d lines, want the first line of the new interval", len(got))
	}
}

// Kinds are level+message+KeyAttrs: a second service's failures are not
// hidden behind the first's; the session id does not make a new kind.
func TestRateLimitKinds(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	log := slog.New(NewRateLimit(slog.NewJSONHandler(&buf, nil), time.Second, clk.now))
	for i := range 10 {
		log.Warn("service call failed", "session", i, "url", "http://a/")
		log.Warn("service call failed", "session", i, "url", "http://b/")
		log.Error("service call failed", "session", i, "url", "http://b/")
		log.With("loop", 1).Info("closing connection: slow consumer", "session", i)
	}
	if got := lines(t, &buf); len(got) != 4 {
		t.Fatalf("%d lines, want one per kind (4): %s", len(got), buf.String())
	}
	clk.t = clk.t.Add(time.Second)
	log.Info("other")
	got := lines(t, &buf)
	if len(got) != 9 {
		t.Fatalf("%d lines, want 4 + 4 summaries + 1: %s", len(got), buf.String())
	}
	for _, m := range got[4:8] {
		if m["repeated"] != float64(9) {
			t.Fatalf("summary %v: want repeated=9", m)
		}
		if m["msg"] == "closing connection: slow consumer" && m["loop"] != float64(1) {
			t.Fatalf("summary %v lost the logger's attrs", m)
		}
	}
}

// Distinct lines past MaxKeys share one bucket: the table does not grow
// and the lines dropped are still counted.
func TestRateLimitKeyTableBounded(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h := NewRateLimit(slog.NewJSONHandler(&buf, nil), time.Second, clk.now).(*RateLimit)
	log := slog.New(h)
	const n = 10_000
	for i := range n {
		log.Warn(fmt.Sprintf("gnet: error %d", i))
	}
	if got := lines(t, &buf); len(got) != MaxKeys {
		t.Fatalf("%d lines, want %d", len(got), MaxKeys)
	}
	if len(h.st.kinds) != MaxKeys {
		t.Fatalf("table holds %d kinds, want %d", len(h.st.kinds), MaxKeys)
	}
	clk.t = clk.t.Add(time.Second)
	h.Flush()
	got := lines(t, &buf)
	last := got[len(got)-1]
	if last["repeated"] != float64(n-MaxKeys) {
		t.Fatalf("overflow summary %v, want repeated=%d", last, n-MaxKeys)
	}
}

func TestRateLimitZeroIntervalPassesThrough(t *testing.T) {
	next := slog.NewJSONHandler(&bytes.Buffer{}, nil)
	if NewRateLimit(next, 0, nil) != slog.Handler(next) {
		t.Fatal("interval 0 must return the handler unchanged")
	}
}

func TestSessionFromContext(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Warn("a", Session(WithSession(context.Background(), 7)))
	log.Warn("b", Session(context.Background()))
	got := lines(t, &buf)
	if got[0]["session"] != float64(7) {
		t.Fatalf("line %v lacks session=7", got[0])
	}
	if _, ok := got[1]["session"]; ok || len(got[1]) != 3 {
		t.Fatalf("line %v: no session in ctx must add nothing", got[1])
	}
}

// BenchmarkFlood is the cost of one line of a flood: written (json) or
// counted by RateLimit (limited).
func BenchmarkFlood(b *testing.B) {
	for _, tc := range []struct {
		name    string
		limited bool
	}{{"json", false}, {"limited", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var n countWriter
			var h slog.Handler = slog.NewJSONHandler(&n, nil)
			if tc.limited {
				h = NewRateLimit(h, time.Hour, nil)
			}
			log := slog.New(h)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				log.Warn("service call failed", "session", i, "url", "http://svc/auth", "try", 1, "error", "connection refused")
			}
			b.ReportMetric(float64(n.bytes)/float64(b.N), "B_written/op")
		})
	}
}

type countWriter struct{ bytes int }

func (c *countWriter) Write(p []byte) (int, error) { c.bytes += len(p); return len(p), nil }
