package redistest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Without redis-server on PATH a Redis test fails (a skip would let CI pass
// with none of them run), unless MAKO_SKIP_REDIS=1. The test re-runs this
// test binary with an empty PATH.
func TestMissingRedisFails(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		Start(t)
		return
	}
	for _, tc := range []struct {
		skip     string
		wantFail bool
		want     string
	}{
		{"", true, "redis-server not installed"},
		{"1", false, "SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingRedisFails$", "-test.v")
		cmd.Env = []string{"PATH=" + t.TempDir(), "REDISTEST_CHILD=1", "MAKO_SKIP_REDIS=" + tc.skip}
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail || !strings.Contains(string(out), tc.want) {
			t.Fatalf("MAKO_SKIP_REDIS=%q: failed %v (want %v), output:\n%s", tc.skip, failed, tc.wantFail, out)
		}
	}
}

func TestServerRestart(t *testing.T) {
	s := Start(t)
	if s.Port() == 6379 {
		t.Fatal("must never use 6379")
	}
	s.MustDo("SET", "k", "v")
	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("killed server answered")
	}
	s.Restart()
	if r := s.MustDo("PING"); r != "PONG" {
		t.Fatalf("PING = %v", r)
	}
}

func TestClusterMoveAndFailover(t *testing.T) {
	c := StartCluster(t, 3, 1)
	if n := len(c.Masters()); n != 3 {
		t.Fatalf("masters = %d", n)
	}
	slot := c.Slot("foo")
	src := c.Owner(slot)
	var dst *Server
	for _, m := range c.Masters() {
		if m != src {
			dst = m
			break
		}
	}
	start := time.Now()
	c.MoveSlot(slot, dst)
	if c.Owner(slot) != dst {
		t.Fatal("slot did not move")
	}
	t.Logf("move took %v", time.Since(start))
	start = time.Now()
	nm := c.Failover(dst)
	if c.Owner(slot) != nm {
		t.Fatal("failover did not move slot ownership")
	}
	t.Logf("failover took %v", time.Since(start))
}
