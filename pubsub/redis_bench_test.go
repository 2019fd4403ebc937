package pubsub

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mako/internal/redistest"
)

// BenchmarkRedisReceive measures the inbound path: Redis → rueidis reader
// → message hook → Handler, for one channel and 100-byte messages. The
// publisher is redis-benchmark (a separate process) when installed, so the
// allocs/op that -benchmem reports belong to the receive path only.
//
//	go test -run=^$ -bench=Redis -benchmem ./pubsub/
func BenchmarkRedisReceive(b *testing.B) {
	// The default pub/sub output buffer limit would disconnect a
	// subscriber that falls 8 MB behind a flood publisher.
	srv := redistest.Start(b, "--client-output-buffer-limit", "pubsub 0 0 0")
	var got atomic.Int64
	var target atomic.Int64
	reached := make(chan struct{}, 1)
	h := func(ch string, payload []byte, at time.Time) {
		if got.Add(1) == target.Load() {
			reached <- struct{}{}
		}
	}
	br := startRedis(b, RedisOptions{Addr: srv.Addr(), ChannelPrefix: "bench:"}, h)
	subscribeAll(b, br, "ch")
	payload := strings.Repeat("x", 100)
	bench, _ := exec.LookPath("redis-benchmark")
	var pub *Redis
	if bench == "" {
		var err error
		if pub, err = NewRedis(RedisOptions{Addr: srv.Addr()}, testLogger(b)); err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
	}

	got.Store(0)
	target.Store(int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if bench != "" {
		cmd := exec.Command(bench, "-p", strconv.Itoa(srv.Port()), "-n", strconv.Itoa(b.N),
			"-c", "4", "-P", "64", "-q", "PUBLISH", "bench:ch", payload)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("redis-benchmark: %v\n%s", err, out)
		}
	} else {
		for range b.N {
			if err := pub.Publish(context.Background(), "ch", []byte(payload)); err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}
