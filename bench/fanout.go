package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// FanoutOptions configures the fan-out run.
type FanoutOptions struct {
	Common
	Subs     int
	Channel  string // subscription every subscriber takes and messages go to
	Size     int    // bytes per published body
	Duration time.Duration
	Rate     float64 // messages/s over all posters; 0 = as fast as the window allows
	Posters  int     // concurrent POST /publish loops, each its own sequence
	// Window bounds messages published but not yet received by every live
	// subscriber. /publish returns before fan-out, so without it a fast
	// publisher would only grow the server's queues until it cut
	// subscribers as slow consumers.
	Window int
	Drain  time.Duration // how long to wait for the last deliveries
	// PID is the server process whose CPU time is sampled; 0 = find the
	// listener of URL, < 0 = do not sample.
	PID int
}

// FanoutResult is what a fan-out run measured.
type FanoutResult struct {
	Subs, Up, Failed int
	Errors           map[string]int
	Published        int64
	PostErrors       int64
	PostError        string
	Stalled          bool
	PublishTime      time.Duration // first post to last post
	DeliverTime      time.Duration // first post to every live subscriber having all
	PublishRate      float64
	DeliveryRate     float64
	// ServerCPU is mako's CPU time over DeliverTime; -1 = unknown.
	ServerCPU time.Duration
	Delivery  *DeliveryStats
}

// Lost is the number of (subscriber, message) pairs that never arrived.
func (r *FanoutResult) Lost() int64 {
	if r.Delivery == nil {
		return 0
	}
	return r.Delivery.Lost
}

// RunFanout subscribes Subs connections to Channel and publishes to it for
// Duration, checking order and completeness per subscriber.
func RunFanout(ctx context.Context, o FanoutOptions) (*FanoutResult, error) {
	o.defaults()
	if o.Posters <= 0 {
		o.Posters = 4
	}
	if o.Window <= 0 {
		o.Window = 100
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	if o.Channel == "" || o.API == "" {
		return nil, errors.New("fanout needs a channel and the API address")
	}
	log := o.Log
	r := &FanoutResult{Subs: o.Subs, ServerCPU: -1}
	if o.PID == 0 {
		if pid, err := FindListener(o.URL); err == nil {
			o.PID = pid
		} else {
			fmt.Fprintln(log, "server pid: n/a:", err)
		}
	}
	serverCPU := func() time.Duration {
		if o.PID <= 0 {
			return -1
		}
		d, err := ServerCPU(o.PID)
		if err != nil {
			return -1
		}
		return d
	}
	f, err := startFleet(ctx, o.Common, o.Subs, o.Channel, o.Posters)
	if err != nil {
		return r, err
	}
	defer f.close()
	st, err := f.waitReady(ctx)
	r.Up, r.Failed, r.Errors = st.Up, st.Failed, st.Errors
	if err != nil {
		return r, err
	}
	if st.Up == 0 {
		return r, errors.New("no subscriber is up")
	}

	pub := newPublisher(o.API, o.Channel, o.Size, o.Posters)
	defer pub.close()
	var (
		published atomic.Int64
		tickets   atomic.Int64
		postErrs  atomic.Int64
		stalled   atomic.Bool
		firstErr  atomic.Pointer[string]
		lastSeq   = make([]int64, o.Posters)
		wg        sync.WaitGroup
	)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cpu0 := serverCPU()
	start := time.Now()
	end := start.Add(o.Duration)
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	lastProgress := time.Now()
	var progressMu sync.Mutex
	// windowOpen waits until fewer than Window messages are in flight.
	windowOpen := func() bool {
		for {
			if runCtx.Err() != nil || time.Now().After(end) {
				return false
			}
			m := f.minDelivered()
			if m < 0 {
				stalled.Store(true) // every subscriber is gone
				stop()
				return false
			}
			if published.Load()-m < int64(o.Window) {
				progressMu.Lock()
				lastProgress = time.Now()
				progressMu.Unlock()
				return true
			}
			progressMu.Lock()
			idle := time.Since(lastProgress)
			progressMu.Unlock()
			if idle > 10*time.Second {
				stalled.Store(true)
				stop()
				return false
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	for p := range o.Posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for seq := int64(1); ; seq++ {
				if !windowOpen() {
					return
				}
				if interval > 0 {
					at := start.Add(time.Duration(tickets.Add(1)-1) * interval)
					if at.After(end) || !sleepCtx(runCtx, time.Until(at)) {
						return
					}
				}
				if err := pub.post(runCtx, &buf, p, seq); err != nil {
					if runCtx.Err() == nil {
						postErrs.Add(1)
						s := err.Error()
						firstErr.CompareAndSwap(nil, &s)
						stop()
					}
					return
				}
				lastSeq[p] = seq
				published.Add(1)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			n := published.Load()
			fmt.Fprintf(log, "publishing: %d sent (%.0f/s), slowest subscriber at %d\n",
				n, float64(n)/time.Since(start).Seconds(), f.minDelivered())
		}
	}
	tick.Stop()
	r.PublishTime = time.Since(start)
	r.Published = published.Load()
	r.PostErrors = postErrs.Load()
	if p := firstErr.Load(); p != nil {
		r.PostError = *p
	}
	r.Stalled = stalled.Load()
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	// Every live subscriber has everything once the fleet minimum reaches
	// the total; that instant ends the delivery clock.
	drainEnd := time.Now().Add(o.Drain)
	for time.Now().Before(drainEnd) {
		if m := f.minDelivered(); m < 0 || m >= r.Published {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.DeliverTime = time.Since(start)
	if cpu1 := serverCPU(); cpu0 >= 0 && cpu1 >= 0 {
		r.ServerCPU = cpu1 - cpu0
	}
	res, err := f.finish(ctx, lastSeq, o.Drain)
	r.Delivery = res
	if s := r.PublishTime.Seconds(); s > 0 {
		r.PublishRate = float64(r.Published) / s
	}
	if s := r.DeliverTime.Seconds(); s > 0 && res != nil {
		r.DeliveryRate = float64(res.Received) / s
	}
	return r, err
}

// Print writes the human-readable report.
func (r *FanoutResult) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== fanout: %d subscribers requested, %d up, %d failed\n", r.Subs, r.Up, r.Failed)
	for e, n := range r.Errors {
		fmt.Fprintf(w, "   connect error ×%d: %s\n", n, e)
	}
	if r.PostErrors > 0 {
		fmt.Fprintf(w, "publish errors: %d (first: %s)\n", r.PostErrors, r.PostError)
	}
	if r.Stalled {
		fmt.Fprintln(w, "STALLED: deliveries stopped progressing (or every subscriber was dropped)")
	}
	fmt.Fprintf(w, "published: %d messages in %v = %.0f msg/s\n",
		r.Published, r.PublishTime.Round(time.Millisecond), r.PublishRate)
	d := r.Delivery
	if d == nil {
		return
	}
	fmt.Fprintf(w, "delivered: %d of %d in %v = %.0f deliveries/s\n",
		d.Received, r.Published*int64(r.Up), r.DeliverTime.Round(time.Millisecond), r.DeliveryRate)
	fmt.Fprintf(w, "latency (publish call → subscriber read): p50 %v p99 %v max %v\n",
		d.Latency.Quantile(0.5), d.Latency.Quantile(0.99), d.Latency.Max())
	if n := float64(d.Received); n > 0 {
		secs := r.DeliverTime.Seconds()
		if r.ServerCPU >= 0 {
			fmt.Fprintf(w, "server CPU: %v (%.0f%% of one core), %.2f µs per delivery\n", r.ServerCPU.Round(time.Millisecond),
				100*r.ServerCPU.Seconds()/secs, float64(r.ServerCPU.Microseconds())/n)
		}
		fmt.Fprintf(w, "client CPU (all workers): %v (%.0f%% of one core), %.2f µs per delivery\n", d.CPU.Round(time.Millisecond),
			100*d.CPU.Seconds()/secs, float64(d.CPU.Microseconds())/n)
	}
	fmt.Fprintf(w, "lost %d, out of order %d, unparsable %d, subscribers missing some %d, dropped %d %v\n",
		d.Lost, d.OutOfOrder, d.BadFrames, d.Incomplete, d.Dropped, d.CloseCodes)
	fmt.Fprintln(w)
}
