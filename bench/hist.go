package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Hist is a log-linear latency histogram in microseconds: 32 sub-buckets per
// power of two, so any reported quantile is within ~3% of the true value.
// Buckets are atomic because every reader goroutine of a worker records into
// one shared histogram; a fixed bucket layout lets the parent merge workers'
// histograms exactly.
type Hist struct {
	b   [histBuckets]atomic.Uint64
	max atomic.Uint64
}

const (
	histSub     = 32
	histBuckets = histSub * 48
)

func histIndex(us uint64) int {
	if us < 2*histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 6
	i := 2*histSub + (shift-1)*histSub + int(us>>shift) - histSub
	return min(i, histBuckets-1)
}

// histValue is the midpoint of bucket i in microseconds.
func histValue(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := (i-2*histSub)/histSub + 1
	top := uint64(histSub + (i-2*histSub)%histSub)
	lo := top << shift
	return lo + (uint64(1)<<shift)/2
}

// Record adds one observation.
func (h *Hist) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.b[histIndex(us)].Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// HistData is the wire and merge form of a Hist: sparse bucket counts.
type HistData struct {
	Buckets map[int]uint64 `json:"b,omitempty"`
	MaxUS   uint64         `json:"max_us"`
}

// Snapshot returns the current counts.
func (h *Hist) Snapshot() HistData {
	d := HistData{Buckets: map[int]uint64{}, MaxUS: h.max.Load()}
	for i := range h.b {
		if n := h.b[i].Load(); n > 0 {
			d.Buckets[i] = n
		}
	}
	return d
}

// Merge adds o into d.
func (d *HistData) Merge(o HistData) {
	if d.Buckets == nil {
		d.Buckets = map[int]uint64{}
	}
	for i, n := range o.Buckets {
		d.Buckets[i] += n
	}
	d.MaxUS = max(d.MaxUS, o.MaxUS)
}

// Count is the number of observations.
func (d HistData) Count() uint64 {
	var n uint64
	for _, c := range d.Buckets {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q ≤ 1); 0 when empty.
func (d HistData) Quantile(q float64) time.Duration {
	total := d.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := 0; i < histBuckets; i++ {
		seen += d.Buckets[i]
		if seen >= rank {
			v := min(histValue(i), d.MaxUS)
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(d.MaxUS) * time.Microsecond
}

// Max is the largest observation.
func (d HistData) Max() time.Duration { return time.Duration(d.MaxUS) * time.Microsecond }
