package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// WorkerEnv names the environment variable that carries a worker's JSON
// arguments. Its presence is what turns a process into a worker, so a test
// binary can serve as the worker executable too (see RunWorker).
const WorkerEnv = "MAKO_BENCH_WORKER"

// workerArgs is what the parent hands each child process.
type workerArgs struct {
	ID          int      `json:"id"`
	URL         string   `json:"url"`
	Conns       int      `json:"conns"`
	First       int      `json:"first"` // global index of the first connection
	Sources     []string `json:"sources,omitempty"`
	Subscribe   string   `json:"subscribe,omitempty"`
	Posters     int      `json:"posters"` // sequence streams to check; 0 = none
	Concurrency int      `json:"concurrency"`
	Timeout     Duration `json:"timeout"`
}

// Child → parent lines on stdout.
type workerMsg struct {
	T       string         `json:"t"` // progress | ready | min | result
	ID      int            `json:"id"`
	Up      int            `json:"up,omitempty"`
	Failed  int            `json:"failed,omitempty"`
	StartNS int64          `json:"start_ns,omitempty"`
	EndNS   int64          `json:"end_ns,omitempty"`
	Min     int64          `json:"min,omitempty"`
	Errors  map[string]int `json:"errors,omitempty"`
	HS      *HistData      `json:"hs,omitempty"`
	Sub     *HistData      `json:"sub,omitempty"`
	Result  *DeliveryStats `json:"result,omitempty"`
}

// DeliveryStats is the delivery accounting of a run (per worker, then merged).
type DeliveryStats struct {
	Received   int64          `json:"received"`
	Lost       int64          `json:"lost"`
	OutOfOrder int64          `json:"out_of_order"`
	BadFrames  int64          `json:"bad_frames"`
	Incomplete int            `json:"incomplete"` // connections missing ≥1 message
	Dropped    int            `json:"dropped"`    // connections the server or network ended
	CloseCodes map[string]int `json:"close_codes,omitempty"`
	Latency    HistData       `json:"latency"`
	// CPU is what the client processes spent between "ready" and the
	// result: the load generator's share of a machine it shares with mako.
	CPU time.Duration `json:"cpu_ns"`
}

// Parent → child lines on stdin.
type workerCmd struct {
	Cmd    string   `json:"cmd"` // finish
	Expect []int64  `json:"expect,omitempty"`
	Drain  Duration `json:"drain,omitempty"`
}

// Duration marshals as a Go duration string.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// sub is one client connection of a worker.
type sub struct {
	ws       *wsConn
	received atomic.Int64
	done     atomic.Bool // reader ended
	// Written by the reader goroutine only; read by the finisher after
	// the reader has ended or under w.mu via snapshot.
	mu        sync.Mutex
	last      []int64
	lost      int64
	ooo       int64
	bad       int64
	closeCode int
}

type worker struct {
	args   workerArgs
	u      *url.URL
	out    *json.Encoder
	outMu  sync.Mutex
	lat    Hist
	hs     Hist
	subLat Hist
	subs   []atomic.Pointer[sub] // set by each connection's goroutine
	up     atomic.Int64
	failed atomic.Int64
	errMu  sync.Mutex
	errs   map[string]int
	cpu0   time.Duration // CPU used up to "ready"
}

// RunWorker runs a worker process when WorkerEnv is set and returns its exit
// code; ok is false when the environment does not ask for a worker. Call it
// first thing in main (and in TestMain of tests that start workers).
func RunWorker() (code int, ok bool) {
	raw := os.Getenv(WorkerEnv)
	if raw == "" {
		return 0, false
	}
	var a workerArgs
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		fmt.Fprintln(os.Stderr, "mako-bench worker: bad args:", err)
		return 2, true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runWorker(ctx, a, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "mako-bench worker %d: %v\n", a.ID, err)
		return 1, true
	}
	return 0, true
}

func runWorker(ctx context.Context, a workerArgs, stdin io.Reader, stdout io.Writer) error {
	u, err := url.Parse(a.URL)
	if err != nil {
		return err
	}
	var locals []*net.TCPAddr
	for _, s := range a.Sources {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("bad source address %q", s)
		}
		locals = append(locals, &net.TCPAddr{IP: ip})
	}
	w := &worker{args: a, u: u, out: json.NewEncoder(stdout), errs: map[string]int{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// stdin carries commands; its end (parent gone or done) ends the worker.
	cmds := make(chan workerCmd, 1)
	go func() {
		defer cancel()
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			var c workerCmd
			if json.Unmarshal(sc.Bytes(), &c) == nil {
				select {
				case cmds <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	w.subs = make([]atomic.Pointer[sub], a.Conns)
	start := time.Now()
	sem := make(chan struct{}, max(a.Concurrency, 1))
	var connectWG, readWG sync.WaitGroup
	progressDone := make(chan struct{})
	go w.reportProgress(ctx, progressDone)
	for i := range a.Conns {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		var local *net.TCPAddr
		if len(locals) > 0 {
			local = locals[(a.First+i)%len(locals)]
		}
		connectWG.Add(1)
		readWG.Add(1)
		go func() {
			defer readWG.Done()
			s := w.connect(local)
			if s != nil {
				w.subs[i].Store(s)
			}
			connectWG.Done()
			<-sem
			if s != nil {
				w.read(s)
			}
		}()
	}
	connectWG.Wait()
	close(progressDone)
	end := time.Now()
	hs, sl := w.hs.Snapshot(), w.subLat.Snapshot()
	w.errMu.Lock()
	errs := w.errs
	w.errMu.Unlock()
	w.cpu0 = selfCPU()
	if a.Posters > 0 {
		// Before "ready", so the parent's window starts from a known minimum.
		w.send(workerMsg{T: "min", Min: w.minReceived()})
	}
	w.send(workerMsg{T: "ready", Up: int(w.up.Load()), Failed: int(w.failed.Load()),
		StartNS: start.UnixNano(), EndNS: end.UnixNano(), Errors: errs, HS: &hs, Sub: &sl})

	defer func() {
		for i := range w.subs {
			if s := w.subs[i].Load(); s != nil {
				s.ws.Close()
			}
		}
		readWG.Wait()
	}()
	if a.Posters > 0 {
		go w.reportMin(ctx)
	}
	select {
	case <-ctx.Done():
		return nil
	case c := <-cmds:
		if c.Cmd != "finish" {
			return fmt.Errorf("unknown command %q", c.Cmd)
		}
		res := w.finish(ctx, c)
		w.send(workerMsg{T: "result", Result: res})
		return nil
	}
}

func (w *worker) send(m workerMsg) {
	m.ID = w.args.ID
	w.outMu.Lock()
	_ = w.out.Encode(m)
	w.outMu.Unlock()
}

func (w *worker) fail(err error) {
	w.failed.Add(1)
	msg := err.Error()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "timeout"
	} else if len(msg) > 120 {
		msg = msg[:120]
	}
	w.errMu.Lock()
	if len(w.errs) < 20 || w.errs[msg] > 0 {
		w.errs[msg]++
	}
	w.errMu.Unlock()
}

func (w *worker) reportProgress(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.send(workerMsg{T: "progress", Up: int(w.up.Load()), Failed: int(w.failed.Load())})
		case <-done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// connect dials, upgrades and (optionally) subscribes, awaiting the ok.
func (w *worker) connect(local *net.TCPAddr) *sub {
	t0 := time.Now()
	ws, err := dialWS(w.u, local, t0.Add(time.Duration(w.args.Timeout)))
	if err != nil {
		w.fail(err)
		return nil
	}
	w.hs.Record(time.Since(t0))
	if name := w.args.Subscribe; name != "" {
		t1 := time.Now()
		ev, _ := json.Marshal(map[string]string{"event": "subscribe", "subscription": name})
		if err := ws.writeFrame(opText, ev); err != nil {
			ws.Close()
			w.fail(err)
			return nil
		}
		msg, err := ws.readMessage()
		if err != nil {
			ws.Close()
			w.fail(err)
			return nil
		}
		var rep struct{ Event, Status, Error string }
		if json.Unmarshal(msg, &rep) != nil || rep.Event != "subscribe" || rep.Status != "ok" {
			ws.Close()
			w.fail(fmt.Errorf("subscribe reply: %.100s", msg))
			return nil
		}
		w.subLat.Record(time.Since(t1))
	}
	_ = ws.c.SetDeadline(time.Time{})
	w.up.Add(1)
	return &sub{ws: ws, last: make([]int64, w.args.Posters)}
}

// Field names of the bench payload; unusual enough not to collide with the
// keys mako adds around data.
var (
	keyPoster = []byte(`"mb_p":`)
	keySeq    = []byte(`"mb_seq":`)
	keyTS     = []byte(`"mb_ts":`)
)

func jsonInt(b, key []byte) (int64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	b = bytes.TrimLeft(b[i+len(key):], " ")
	j := 0
	for j < len(b) && (b[j] == '-' || b[j] >= '0' && b[j] <= '9') {
		j++
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, err == nil
}

// read consumes pushed messages until the connection ends, checking that
// each poster's sequence arrives complete and in order.
func (w *worker) read(s *sub) {
	defer s.done.Store(true)
	for {
		msg, err := s.ws.readMessage()
		now := time.Now()
		if err != nil {
			var ce *closeErr
			s.mu.Lock()
			if errors.As(err, &ce) {
				s.closeCode = ce.code
			} else {
				s.closeCode = -1
			}
			s.mu.Unlock()
			return
		}
		p, ok1 := jsonInt(msg, keyPoster)
		seq, ok2 := jsonInt(msg, keySeq)
		ts, ok3 := jsonInt(msg, keyTS)
		s.mu.Lock()
		switch {
		case !ok1 || !ok2 || !ok3 || p < 0 || int(p) >= len(s.last):
			s.bad++
		case seq == s.last[p]+1:
			s.last[p] = seq
		case seq > s.last[p]+1:
			s.lost += seq - s.last[p] - 1
			s.last[p] = seq
		default:
			s.ooo++
		}
		s.mu.Unlock()
		if ok3 {
			w.lat.Record(now.Sub(time.Unix(0, ts)))
		}
		s.received.Add(1)
	}
}

// reportMin tells the parent how many messages every live connection has
// received at least; the fan-out publisher keeps its in-flight window on it.
// It polls rather than being woken per message, which would put one shared
// channel on every reader's hot path.
func (w *worker) reportMin(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m := w.minReceived()
		if m != last {
			last = m
			w.send(workerMsg{T: "min", Min: m})
		}
	}
}

// minReceived is over live connections only, so one dropped connection does
// not freeze the publisher (it is counted as dropped instead). -1 = none.
func (w *worker) minReceived() int64 {
	m := int64(-1)
	for i := range w.subs {
		s := w.subs[i].Load()
		if s == nil || s.done.Load() {
			continue
		}
		if r := s.received.Load(); m < 0 || r < m {
			m = r
		}
	}
	return m
}

// finish waits until every live connection has the expected last sequence
// of each poster (or the drain time is up), then accounts.
func (w *worker) finish(ctx context.Context, c workerCmd) *DeliveryStats {
	complete := func(s *sub) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for p, want := range c.Expect {
			if p < len(s.last) && s.last[p] < want {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(time.Duration(c.Drain))
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for i := range w.subs {
			if s := w.subs[i].Load(); s != nil && !s.done.Load() && !complete(s) {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := &DeliveryStats{CloseCodes: map[string]int{}}
	for i := range w.subs {
		s := w.subs[i].Load()
		if s == nil {
			continue
		}
		s.mu.Lock()
		r.Received += s.received.Load()
		r.OutOfOrder += s.ooo
		r.BadFrames += s.bad
		lost := s.lost
		for p, want := range c.Expect {
			if p < len(s.last) && s.last[p] < want {
				lost += want - s.last[p]
			}
		}
		r.Lost += lost
		if lost > 0 {
			r.Incomplete++
		}
		if s.done.Load() {
			r.Dropped++
			r.CloseCodes[strconv.Itoa(s.closeCode)]++
		}
		s.mu.Unlock()
	}
	r.Latency = w.lat.Snapshot()
	r.CPU = selfCPU() - w.cpu0
	return r
}
