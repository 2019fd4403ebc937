package bench

import (
	"testing"
	"time"
)

// TestHistBuckets checks the bucket layout round-trips within its stated
// precision, since merged histograms from every worker rely on it.
func TestHistBuckets(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<24; us = us*17/16 + 1 {
		i := histIndex(us)
		if i < prev {
			t.Fatalf("index not monotonic at %d", us)
		}
		prev = i
		v := histValue(i)
		if diff := float64(v) - float64(us); diff < -0.04*float64(us)-1 || diff > 0.04*float64(us)+1 {
			t.Fatalf("value %d in bucket %d reads back as %d", us, i, v)
		}
	}
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	d := h.Snapshot()
	if d.Count() != 1000 || d.Max() != time.Second {
		t.Fatalf("count %d max %v", d.Count(), d.Max())
	}
	if p := d.Quantile(0.5); p < 480*time.Millisecond || p > 520*time.Millisecond {
		t.Fatalf("p50 %v", p)
	}
	if p := d.Quantile(0.99); p < 960*time.Millisecond || p > 1000*time.Millisecond {
		t.Fatalf("p99 %v", p)
	}
}
