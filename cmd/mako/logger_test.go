package main

import (
	"bytes"
	"strings"
	"testing"

	"mako/config"
)

// The process logger rate-limits per log.rate_limit_interval, and stopping
// it writes the summary of what was held, so an exit loses no count.
func TestNewLoggerRateLimitsAndFlushesAtStop(t *testing.T) {
	var buf bytes.Buffer
	log, stop := newLogger(config.Log{Level: "info", Format: "text", RateLimitInterval: 3600}, &buf)
	for range 1000 {
		log.Warn("closing connection: slow consumer", "session", 1)
	}
	stop()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "repeated=999") {
		t.Fatalf("got %d lines, want the first and a summary with repeated=999:\n%s", len(lines), buf.String())
	}

	buf.Reset()
	log, stop = newLogger(config.Log{Level: "info", Format: "json"}, &buf)
	for range 3 {
		log.Warn("x")
	}
	stop()
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("rate_limit_interval 0: %d lines, want every line (3)", n)
	}
}
