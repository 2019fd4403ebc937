package server

import (
	"strings"
	"testing"
	"unsafe"

	"mako/config"
)

// The session id lives in what was padding: the struct does not grow.
func TestSessionIDFitsInPadding(t *testing.T) {
	if s := unsafe.Sizeof(session{}); s > 232 {
		t.Fatalf("session is %d bytes, was 232 before the id", s)
	}
}

func TestBrokerDescRedactsPassword(t *testing.T) {
	cfg := &config.Config{Redis: &config.Redis{URL: "redis://user:s3cret@redis.example:6380/2"},
		RedisAlt: &config.Redis{Cluster: true, Addrs: []string{"a:7000", "b:7000"}}}
	got := brokerDesc(cfg)
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "redis.example:6380") || !strings.Contains(got, "redis cluster a:7000,b:7000") {
		t.Fatalf("brokerDesc = %q", got)
	}
	if got := brokerDesc(&config.Config{}); got != "embedded" {
		t.Fatalf("brokerDesc without redis = %q", got)
	}
}
