package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"mako/bench"
	"mako/config"
	"mako/internal/e2e"
)

// TestMain lets this test binary double as the worker executable: the
// harness starts os.Executable() with bench.WorkerEnv set.
func TestMain(m *testing.M) {
	if code, ok := bench.RunWorker(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func startMako(t *testing.T) (ws, api string) {
	cfg := e2e.Config()
	cfg.Debug.Pprof = true
	no := false
	cfg.Services["demo"] = &config.Service{RequireAuthentication: &no}
	srv := e2e.StartServer(t, cfg)
	return "ws://" + srv.Addr(), "http://" + srv.APIAddr()
}

func common(t *testing.T, ws, api string) bench.Common {
	return bench.Common{URL: ws, API: api, Procs: 2, Sources: []string{"127.0.0.2", "127.0.0.3"},
		Timeout: 10 * time.Second, Log: testLog{t}}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestIdle(t *testing.T) {
	ws, api := startMako(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := bench.RunIdle(ctx, bench.IdleOptions{
		Common: common(t, ws, api), Conns: 50, Subscribe: "demo.idle",
		Hold: time.Second, PublishEvery: 200 * time.Millisecond, Settle: 100 * time.Millisecond,
		PID: os.Getpid(),
	})
	if r != nil {
		r.Print(testLog{t})
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.Up != 50 || r.Failed != 0 {
		t.Fatalf("up %d failed %d: %v", r.Up, r.Failed, r.Errors)
	}
	if r.RSSUp <= 0 || r.GoroutinesUp <= 0 {
		t.Errorf("server figures missing: rss %d goroutines %d", r.RSSUp, r.GoroutinesUp)
	}
	if r.Published < 3 {
		t.Fatalf("published only %d", r.Published)
	}
	d := r.Delivery
	if d.Lost != 0 || d.OutOfOrder != 0 || d.Dropped != 0 || d.Received != r.Published*50 {
		t.Fatalf("delivery: %+v (published %d)", d, r.Published)
	}
}

func TestFanout(t *testing.T) {
	ws, api := startMako(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := bench.RunFanout(ctx, bench.FanoutOptions{
		Common: common(t, ws, api), Subs: 20, Channel: "demo.fan", Size: 100,
		Duration: time.Second, Posters: 3, Window: 50,
	})
	if r != nil {
		r.Print(testLog{t})
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.Up != 20 || r.Published == 0 || r.PostErrors != 0 || r.Stalled {
		t.Fatalf("run: %+v", r)
	}
	d := r.Delivery
	if d.Lost != 0 || d.OutOfOrder != 0 || d.BadFrames != 0 || d.Dropped != 0 || d.Received != r.Published*20 {
		t.Fatalf("delivery: %+v (published %d)", d, r.Published)
	}
	if d.Latency.Count() != uint64(d.Received) || d.Latency.Quantile(0.99) <= 0 {
		t.Errorf("latency histogram: %d samples, p99 %v", d.Latency.Count(), d.Latency.Quantile(0.99))
	}
}

func TestParseSources(t *testing.T) {
	got, err := bench.ParseSources("127.0.0.2-127.0.0.4, 10.0.0.1,127.0.1.7-8")
	if err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.2 127.0.0.3 127.0.0.4 10.0.0.1 127.0.1.7 127.0.1.8"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"127.0.0.9-127.0.0.2", "127.0.0.2-127.0.1.3", "x-y"} {
		if _, err := bench.ParseSources(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
