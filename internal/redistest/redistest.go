// Package redistest starts real redis-server processes for tests: a single
// server that can be killed and restarted on the same port, and a Redis
// Cluster whose slots can be moved and whose masters can be failed over.
//
// Everything runs in t.TempDir() on random free ports (never 6379, where a
// shared server may listen) and is killed on t.Cleanup.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	t       testing.TB
	port    int
	dir     string
	extra   []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// Start runs a standalone redis-server and waits until it answers PING.
// It fails the test when redis-server or redis-cli is missing, unless
// MAKO_SKIP_REDIS=1 (then it skips).
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	requireBinaries(t)
	s := &Server{t: t, dir: t.TempDir(), extra: extraArgs}
	s.port = freePort(t, false)
	s.logPath = filepath.Join(s.dir, "redis.log")
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func requireBinaries(t testing.TB) {
	t.Helper()
	for _, b := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			// A missing Redis must not turn the Redis tests green by
			// skipping them; MAKO_SKIP_REDIS=1 says the skip is meant.
			if os.Getenv("MAKO_SKIP_REDIS") == "1" {
				t.Skipf("%s not installed (MAKO_SKIP_REDIS=1)", b)
			}
			t.Fatalf("%s not installed: apt-get install redis-server redis-tools, or set MAKO_SKIP_REDIS=1 to skip the Redis tests", b)
		}
	}
}

// freePort finds a port that is free now (and, for cluster nodes, whose bus
// port +10000 is free too). Picking from a high random range instead of
// ":0" keeps port+10000 below 65536 and far from 6379.
func freePort(t testing.TB, withBus bool) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(25000)
		if !portFree(p) || (withBus && !portFree(p+10000)) {
			continue
		}
		return p
	}
	t.Fatal("redistest: no free port found")
	return 0
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", s.logPath,
		"--daemonize", "no",
	}
	return append(a, s.extra...)
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command("redis-server", s.args()...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := s.waitReady(10*time.Second, exited); err != nil {
		log, _ := os.ReadFile(s.logPath)
		s.t.Fatalf("redistest: redis-server on %d not ready: %v\n%s", s.port, err, log)
	}
}

// waitReady polls PING with a short growing backoff: the server's
// readiness is external state with no event to wait on.
func (s *Server) waitReady(timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	wait := 2 * time.Millisecond
	for {
		r, err := s.Do("PING")
		if err == nil && r == "PONG" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout: %v", err)
		}
		time.Sleep(wait)
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Kill SIGKILLs the server (no clean shutdown, like a crash) and waits for
// the process to exit. Killing a stopped server is a no-op.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Pause stops the process with SIGSTOP: connections stay open but nothing
// is answered, as with a hung server. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again on the same port and directory (a
// cluster node therefore rejoins with its nodes.conf).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Do sends one command and returns its reply: string for simple and bulk
// strings, int64, []any for arrays, nil for null; a Redis error reply is
// returned as error.
func (s *Server) Do(args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(c))
}

// MustDo is Do that fails the test on error.
func (s *Server) MustDo(args ...string) any {
	s.t.Helper()
	r, err := s.Do(args...)
	if err != nil {
		s.t.Fatalf("redistest: %s %v: %v", s.Addr(), args, err)
	}
	return r
}

// Strings runs a command whose reply is an array of strings.
func (s *Server) Strings(args ...string) []string {
	s.t.Helper()
	r := s.MustDo(args...)
	arr, _ := r.([]any)
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// Int runs a command whose reply is an integer.
func (s *Server) Int(args ...string) int64 {
	s.t.Helper()
	n, _ := s.MustDo(args...).(int64)
	return n
}

// RedisError is an error reply from the server.
type RedisError string

func (e RedisError) Error() string { return string(e) }

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, RedisError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				if _, ok := err.(RedisError); !ok {
					return nil, err
				}
				out[i] = err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Eventually polls cond with a short backoff until it holds or timeout
// passes; for external state (PUBSUB output, cluster state) that has no
// event to wait on.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("redistest: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(wait)
		wait = min(wait*2, 50*time.Millisecond)
	}
}
