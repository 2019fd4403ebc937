package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"time"
)

// Common holds what both modes need to place client connections.
type Common struct {
	URL     string        // ws://host:port of mako
	API     string        // http://host:port of mako's API (publish, pprof)
	Procs   int           // client processes
	Sources []string      // local source addresses, used round-robin
	PerProc int           // connect concurrency per process
	Timeout time.Duration // per connection: connect + upgrade + subscribe
	// Exe is the worker executable; empty = this program. It is started
	// with WorkerEnv set, so it must call RunWorker first thing.
	Exe string
	Log io.Writer // progress and report; nil = discard
}

// maxConnsPerProc stays under the 20,000 open files a process may hold,
// leaving room for the runtime's own descriptors.
const maxConnsPerProc = 19000

func (c *Common) defaults() {
	if c.Procs <= 0 {
		c.Procs = 1
	}
	if c.PerProc <= 0 {
		c.PerProc = 64
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

type child struct {
	id    int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	conns int
	min   atomic.Int64 // latest "min" report; -1 = no live connection
	exit  chan struct{}
}

// fleet is the set of worker processes of one run.
type fleet struct {
	c        Common
	children []*child
	msgs     chan workerMsg
	total    int
}

// startFleet spawns the workers, splitting total connections among them.
func startFleet(ctx context.Context, c Common, total int, subscribe string, posters int) (*fleet, error) {
	if total <= 0 {
		return nil, errors.New("no connections requested")
	}
	per := (total + c.Procs - 1) / c.Procs
	if per > maxConnsPerProc {
		return nil, fmt.Errorf("%d connections per process exceeds %d (open-file limit): use more -procs", per, maxConnsPerProc)
	}
	exe := c.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	f := &fleet{c: c, msgs: make(chan workerMsg, 1024), total: total}
	first := 0
	for i := 0; i < c.Procs && first < total; i++ {
		n := min(per, total-first)
		args, _ := json.Marshal(workerArgs{ID: i, URL: c.URL, Conns: n, First: first, Sources: c.Sources,
			Subscribe: subscribe, Posters: posters, Concurrency: c.PerProc, Timeout: Duration(c.Timeout)})
		first += n
		cmd := exec.Command(exe, "worker")
		cmd.Env = append(os.Environ(), WorkerEnv+"="+string(args))
		cmd.Stderr = os.Stderr
		setPdeathsig(cmd)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			f.close()
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			f.close()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			f.close()
			return nil, fmt.Errorf("start worker: %w", err)
		}
		ch := &child{id: i, cmd: cmd, stdin: stdin, conns: n, exit: make(chan struct{})}
		ch.min.Store(-1)
		f.children = append(f.children, ch)
		go f.readChild(ch, stdout)
	}
	return f, nil
}

func (f *fleet) readChild(ch *child, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		m.ID = ch.id
		if m.T == "min" {
			ch.min.Store(m.Min)
			continue
		}
		f.msgs <- m
	}
	_ = ch.cmd.Wait()
	close(ch.exit)
	f.msgs <- workerMsg{T: "exit", ID: ch.id}
}

// readyStats is the fleet's connect phase, merged over workers.
type readyStats struct {
	Up, Failed int
	Start, End time.Time
	Errors     map[string]int
	Handshake  HistData
	Subscribe  HistData
}

// waitReady collects every worker's "ready", printing progress meanwhile.
func (f *fleet) waitReady(ctx context.Context) (*readyStats, error) {
	st := &readyStats{Errors: map[string]int{}}
	up := make([]int, len(f.children))
	failed := make([]int, len(f.children))
	pending := len(f.children)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Each worker finishes its connections within about conns/concurrency
	// timeouts; this only stops a hung worker from hanging the run.
	per := (f.total + len(f.children) - 1) / len(f.children)
	limit := time.NewTimer(time.Duration(per/f.c.PerProc+2) * f.c.Timeout)
	defer limit.Stop()
	for pending > 0 {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-limit.C:
			return st, errors.New("workers did not finish connecting in time")
		case <-tick.C:
			fmt.Fprintf(f.c.Log, "connecting: %d/%d up, %d failed\n", sum(up), f.total, sum(failed))
		case m := <-f.msgs:
			switch m.T {
			case "progress":
				up[m.ID], failed[m.ID] = m.Up, m.Failed
			case "ready":
				pending--
				up[m.ID], failed[m.ID] = m.Up, m.Failed
				st.Up += m.Up
				st.Failed += m.Failed
				s, e := time.Unix(0, m.StartNS), time.Unix(0, m.EndNS)
				if st.Start.IsZero() || s.Before(st.Start) {
					st.Start = s
				}
				if e.After(st.End) {
					st.End = e
				}
				for k, v := range m.Errors {
					st.Errors[k] += v
				}
				if m.HS != nil {
					st.Handshake.Merge(*m.HS)
				}
				if m.Sub != nil {
					st.Subscribe.Merge(*m.Sub)
				}
			case "exit":
				return st, fmt.Errorf("worker %d exited before it was ready", m.ID)
			}
		}
	}
	fmt.Fprintf(f.c.Log, "connected: %d/%d up, %d failed\n", st.Up, f.total, st.Failed)
	return st, nil
}

// minDelivered is the fewest messages any live connection of the fleet has
// received; -1 when no connection is live.
func (f *fleet) minDelivered() int64 {
	m := int64(-1)
	for _, ch := range f.children {
		if v := ch.min.Load(); v >= 0 && (m < 0 || v < m) {
			m = v
		}
	}
	return m
}

// finish asks every worker to account for the expected sequences and
// returns the merged result.
func (f *fleet) finish(ctx context.Context, expect []int64, drain time.Duration) (*DeliveryStats, error) {
	line, _ := json.Marshal(workerCmd{Cmd: "finish", Expect: expect, Drain: Duration(drain)})
	line = append(line, '\n')
	for _, ch := range f.children {
		if _, err := ch.stdin.Write(line); err != nil {
			return nil, fmt.Errorf("worker %d: %w", ch.id, err)
		}
	}
	total := &DeliveryStats{CloseCodes: map[string]int{}}
	pending := len(f.children)
	limit := time.NewTimer(drain + 30*time.Second)
	defer limit.Stop()
	for pending > 0 {
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-limit.C:
			return total, errors.New("workers did not report in time")
		case m := <-f.msgs:
			switch m.T {
			case "result":
				pending--
				r := m.Result
				total.Received += r.Received
				total.Lost += r.Lost
				total.OutOfOrder += r.OutOfOrder
				total.BadFrames += r.BadFrames
				total.Incomplete += r.Incomplete
				total.Dropped += r.Dropped
				for k, v := range r.CloseCodes {
					total.CloseCodes[k] += v
				}
				total.Latency.Merge(r.Latency)
				total.CPU += r.CPU
			case "exit":
				return total, fmt.Errorf("worker %d exited without a result", m.ID)
			}
		}
	}
	return total, nil
}

// close ends every worker: stdin EOF asks it to close its connections and
// exit; one that does not is killed.
func (f *fleet) close() {
	for _, ch := range f.children {
		_ = ch.stdin.Close()
	}
	deadline := time.After(10 * time.Second)
	for _, ch := range f.children {
		select {
		case <-ch.exit:
		case <-deadline:
			_ = ch.cmd.Process.Kill()
			<-ch.exit
		}
	}
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}
