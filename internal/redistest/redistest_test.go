package redistest

import (
	"testing"
	"time"
)

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
