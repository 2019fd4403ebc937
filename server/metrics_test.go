package server

import (
	"testing"
	"time"

	"mako/config"
	"mako/server/service"
)

// The metrics work on the delivery and call paths allocates nothing and
// looks no label up: marking a message, observing a flush, and observing a
// call through the observers resolved at start-up. (BenchmarkFanout shows
// the same end to end: allocs/op is what it was without these metrics.)
func TestMetricsHotPathsAllocateNothing(t *testing.T) {
	cfg := config.Default()
	cfg.Services = map[string]*config.Service{"books": {Authorizer: "http://127.0.0.1:1/a", OnMessage: "http://127.0.0.1:1/m"}}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &s.metrics
	var f fanoutMarks
	now := time.Now()
	gen := uint64(0)
	deliver := func() {
		gen++
		for range 3 { // three encodings of one message: one mark
			f.mark(m.fanout, gen, now)
		}
		f.observe(m.fanout)
	}
	deliver() // the marks' slice grows once
	if n := testing.AllocsPerRun(1000, deliver); n != 0 {
		t.Errorf("mark + observe: %v allocs per message, want 0", n)
	}
	res := service.Result{Unavailable: true, Failure: service.FailTimeout}
	if n := testing.AllocsPerRun(1000, func() { m.observeCall("books", epOnMessage, &res, time.Millisecond) }); n != 0 {
		t.Errorf("observeCall: %v allocs per call, want 0", n)
	}
}
