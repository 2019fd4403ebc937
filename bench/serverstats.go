package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ServerRSS reads VmRSS of pid from /proc, in bytes.
func ServerRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// ServerCPU reads the user+system CPU time of pid from /proc/PID/stat.
func ServerCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are fixed: utime and stime are the 12th and 13th there.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	// USER_HZ is 100 on every Linux the harness targets.
	return time.Duration(u+s) * (time.Second / 100), nil
}

// ServerGoroutines reads the goroutine total from mako's pprof endpoint,
// which exists only with debug.pprof: true.
func ServerGoroutines(ctx context.Context, api string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(api, "/")+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("pprof: HTTP %d (is debug.pprof on?)", resp.StatusCode)
	}
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if err != nil && line == "" {
		return 0, err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("pprof: unexpected first line %q", line)
	}
	return strconv.Atoi(v)
}

// FindListener returns the pid of the process listening on the TCP port of
// wsURL, by matching the socket's inode in /proc/net/tcp{,6} against the
// processes' open descriptors (only those this user may read).
func FindListener(wsURL string) (int, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0, fmt.Errorf("no port in %q", wsURL)
	}
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			fs := strings.Fields(string(line))
			// local_address is field 1, st field 3 (0A = LISTEN), inode field 9.
			if len(fs) > 9 && fs[3] == "0A" && strings.HasSuffix(fs[1], want) {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, d := range procs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(d, e.Name())); err == nil && inodes[l] {
				return strconv.Atoi(filepath.Base(filepath.Dir(d)))
			}
		}
	}
	return 0, fmt.Errorf("no readable process holds the listener on port %d", port)
}

// ParseSources expands "127.0.0.2-127.0.0.9" (last octet range) and comma
// lists of addresses or ranges.
func ParseSources(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			out = append(out, part)
			continue
		}
		i := strings.LastIndexByte(lo, '.')
		if i < 0 {
			return nil, fmt.Errorf("bad source range %q", part)
		}
		a, err1 := strconv.Atoi(lo[i+1:])
		if j := strings.LastIndexByte(hi, '.'); j >= 0 {
			if hi[:j] != lo[:i] {
				return nil, fmt.Errorf("source range %q must differ only in the last octet", part)
			}
			hi = hi[j+1:]
		}
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a > b || b > 255 {
			return nil, fmt.Errorf("bad source range %q", part)
		}
		for k := a; k <= b; k++ {
			out = append(out, lo[:i+1]+strconv.Itoa(k))
		}
	}
	return out, nil
}
