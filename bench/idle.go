package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// IdleOptions configures the idle-connections run.
type IdleOptions struct {
	Common
	Conns     int
	Subscribe string        // subscription every connection takes; "" = none
	Hold      time.Duration // how long the connections stay up once all are up
	// PID is the server process for RSS; 0 = find the listener of URL,
	// < 0 = do not sample.
	PID int
	// PublishEvery, when > 0 (and Subscribe is set), publishes to Subscribe
	// at this interval during Hold; every connection must receive each.
	PublishEvery time.Duration
	// Settle is the pause between "all up" and the RSS sample, so the
	// server's last allocations land in the figure.
	Settle time.Duration
}

// IdleResult is what an idle run measured. Unknown figures are -1.
type IdleResult struct {
	Conns, Up, Failed int
	Errors            map[string]int
	PID               int
	RSSBefore         int64
	RSSUp             int64 // after all connections are up
	RSSEnd            int64 // at the end of the hold
	BytesPerConn      float64
	GoroutinesBefore  int
	GoroutinesUp      int
	ConnectTime       time.Duration
	ConnectRate       float64 // connections per second
	Handshake         HistData
	Subscribe         HistData
	Published         int64
	Delivery          *DeliveryStats
}

// Lost is the number of published messages some connection did not get.
func (r *IdleResult) Lost() int64 {
	if r.Delivery == nil {
		return 0
	}
	return r.Delivery.Lost
}

// RunIdle opens Conns connections over Procs worker processes, holds them
// and reports the server's memory and goroutines per connection.
func RunIdle(ctx context.Context, o IdleOptions) (*IdleResult, error) {
	o.defaults()
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	log := o.Log
	r := &IdleResult{Conns: o.Conns, PID: o.PID, RSSBefore: -1, RSSUp: -1, RSSEnd: -1,
		GoroutinesBefore: -1, GoroutinesUp: -1}
	if r.PID == 0 {
		pid, err := FindListener(o.URL)
		if err != nil {
			fmt.Fprintln(log, "server pid: n/a:", err)
			r.PID = -1
		} else {
			r.PID = pid
		}
	}
	sample := func() (int64, int) {
		rss, g := int64(-1), -1
		if r.PID > 0 {
			if v, err := ServerRSS(r.PID); err == nil {
				rss = v
			} else {
				fmt.Fprintln(log, "server RSS: n/a:", err)
			}
		}
		if o.API != "" {
			if v, err := ServerGoroutines(ctx, o.API); err == nil {
				g = v
			} else {
				fmt.Fprintln(log, "server goroutines: n/a:", err)
			}
		}
		return rss, g
	}
	r.RSSBefore, r.GoroutinesBefore = sample()
	fmt.Fprintf(log, "before: server RSS %s, goroutines %s\n", fmtBytes(r.RSSBefore), fmtInt(r.GoroutinesBefore))

	posters := 0
	if o.PublishEvery > 0 && o.Subscribe != "" && o.API != "" {
		posters = 1
	}
	f, err := startFleet(ctx, o.Common, o.Conns, o.Subscribe, posters)
	if err != nil {
		return r, err
	}
	defer f.close()
	st, err := f.waitReady(ctx)
	r.Up, r.Failed, r.Errors = st.Up, st.Failed, st.Errors
	r.Handshake, r.Subscribe = st.Handshake, st.Subscribe
	if err != nil {
		return r, err
	}
	r.ConnectTime = st.End.Sub(st.Start)
	if r.ConnectTime > 0 {
		r.ConnectRate = float64(st.Up) / r.ConnectTime.Seconds()
	}
	if !sleepCtx(ctx, o.Settle) {
		return r, ctx.Err()
	}
	r.RSSUp, r.GoroutinesUp = sample()
	if r.RSSBefore >= 0 && r.RSSUp >= 0 && r.Up > 0 {
		r.BytesPerConn = float64(r.RSSUp-r.RSSBefore) / float64(r.Up)
	}
	fmt.Fprintf(log, "up: server RSS %s, goroutines %s; holding %v\n", fmtBytes(r.RSSUp), fmtInt(r.GoroutinesUp), o.Hold)

	var pub *publisher
	if posters > 0 {
		pub = newPublisher(o.API, o.Subscribe, 0, 1)
		defer pub.close()
	}
	end := time.Now().Add(o.Hold)
	var buf []byte
	for ctx.Err() == nil && time.Now().Before(end) {
		wait := time.Until(end)
		if pub != nil {
			wait = min(wait, o.PublishEvery)
		}
		if !sleepCtx(ctx, wait) {
			break
		}
		if pub != nil && time.Now().Before(end) {
			if err := pub.post(ctx, &buf, 0, r.Published+1); err != nil {
				return r, err
			}
			r.Published++
		}
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.RSSEnd, _ = sample()
	var expect []int64
	if posters > 0 {
		expect = []int64{r.Published}
	}
	res, err := f.finish(ctx, expect, 10*time.Second)
	r.Delivery = res
	return r, err
}

// Print writes the human-readable report.
func (r *IdleResult) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== idle: %d connections requested, %d up, %d failed\n", r.Conns, r.Up, r.Failed)
	for e, n := range r.Errors {
		fmt.Fprintf(w, "   connect error ×%d: %s\n", n, e)
	}
	fmt.Fprintf(w, "connect: %.0f conn/s over %v; handshake p50 %v p99 %v max %v\n",
		r.ConnectRate, r.ConnectTime.Round(time.Millisecond),
		r.Handshake.Quantile(0.5), r.Handshake.Quantile(0.99), r.Handshake.Max())
	if r.Subscribe.Count() > 0 {
		fmt.Fprintf(w, "subscribe: p50 %v p99 %v max %v\n",
			r.Subscribe.Quantile(0.5), r.Subscribe.Quantile(0.99), r.Subscribe.Max())
	}
	fmt.Fprintf(w, "server pid %s: RSS before %s, all up %s, end of hold %s\n",
		fmtInt(r.PID), fmtBytes(r.RSSBefore), fmtBytes(r.RSSUp), fmtBytes(r.RSSEnd))
	if r.BytesPerConn != 0 {
		fmt.Fprintf(w, "RSS per connection: %.0f bytes (%.2f KiB) — meaningful only against a freshly started server\n",
			r.BytesPerConn, r.BytesPerConn/1024)
	} else {
		fmt.Fprintln(w, "RSS per connection: n/a")
	}
	fmt.Fprintf(w, "server goroutines: before %s, all up %s\n", fmtInt(r.GoroutinesBefore), fmtInt(r.GoroutinesUp))
	if d := r.Delivery; d != nil {
		fmt.Fprintf(w, "hold: %d connections dropped %v\n", d.Dropped, d.CloseCodes)
		if r.Published > 0 {
			fmt.Fprintf(w, "published %d, deliveries %d (want %d), lost %d, out of order %d, connections missing some %d; latency p50 %v p99 %v max %v\n",
				r.Published, d.Received, r.Published*int64(r.Up), d.Lost, d.OutOfOrder, d.Incomplete,
				d.Latency.Quantile(0.5), d.Latency.Quantile(0.99), d.Latency.Max())
		}
	}
	fmt.Fprintln(w)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func fmtBytes(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func fmtInt(v int) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprint(v)
}
