package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of real redis-server processes.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
}

// StartCluster starts masters*(1+replicasPerMaster) nodes, joins them with
// `redis-cli --cluster create` and waits until every node reports
// cluster_state:ok and agrees on which master owns every slot.
func StartCluster(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	requireBinaries(t)
	n := masters * (1 + replicasPerMaster)
	c := &Cluster{t: t, Nodes: make([]*Server, n)}
	var wg sync.WaitGroup
	ports := map[int]bool{}
	for i := range c.Nodes {
		s := &Server{t: t, dir: t.TempDir()}
		s.port = pickPort(t, ports)
		s.logPath = s.dir + "/redis.log"
		s.extra = []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", s.dir + "/nodes.conf",
			// Short enough for a killed master to be failed over within a
			// test, long enough not to flap on a loaded CI machine.
			"--cluster-node-timeout", "2000",
			"--cluster-allow-replica-migration", "no",
			// The default 5 s delay before a diskless full sync would
			// stall a fresh replica (and a failover onto it) for 5 s.
			"--repl-diskless-sync-delay", "0",
		}
		c.Nodes[i] = s
		t.Cleanup(s.Kill)
		wg.Add(1)
		go func() { defer wg.Done(); s.startNoFatal() }()
	}
	wg.Wait()
	for _, s := range c.Nodes {
		// A port free when picked can be taken before redis binds it
		// (by another test's process or an ephemeral client port).
		for try := 0; s.cmd == nil && try < 5; try++ {
			s.port = pickPort(t, ports)
			s.startNoFatal()
		}
		if s.cmd == nil {
			log, _ := os.ReadFile(s.logPath)
			t.Fatalf("redistest: cluster node %d did not start:\n%s", s.port, log)
		}
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitStable(30 * time.Second)
	c.waitReplicasSynced(30 * time.Second)
	return c
}

// waitReplicasSynced waits until every replica's link to its master is up,
// so that a manual failover can proceed at once.
func (c *Cluster) waitReplicasSynced(timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, "replicas synced", func() bool {
		for _, s := range c.alive() {
			r, err := s.Do("INFO", "replication")
			if err != nil {
				return false
			}
			info := fmt.Sprint(r)
			if strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
				return false
			}
		}
		return true
	})
}

func pickPort(t testing.TB, taken map[int]bool) int {
	for {
		p := freePort(t, true)
		if !taken[p] && !taken[p+10000] && !taken[p-10000] {
			taken[p] = true
			return p
		}
	}
}

func (s *Server) startNoFatal() {
	cmd := exec.Command("redis-server", s.args()...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := s.waitReady(10*time.Second, exited); err != nil {
		s.Kill()
	}
}

// Addrs lists every node's host:port (masters and replicas).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

func (c *Cluster) alive() []*Server {
	var out []*Server
	for _, s := range c.Nodes {
		s.mu.Lock()
		up := s.cmd != nil
		s.mu.Unlock()
		if up {
			out = append(out, s)
		}
	}
	return out
}

// WaitStable waits until every running node says cluster_state:ok and all
// of them map every slot to the same master address.
func (c *Cluster) WaitStable(timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, "cluster stable", func() bool {
		var ref string
		for i, s := range c.alive() {
			info, err := s.Do("CLUSTER", "INFO")
			if err != nil || !strings.Contains(fmt.Sprint(info), "cluster_state:ok") {
				return false
			}
			m, err := s.slotMap()
			if err != nil {
				return false
			}
			if i == 0 {
				ref = m
			} else if m != ref {
				return false
			}
		}
		return true
	})
}

// slotMap renders CLUSTER SLOTS as "start-end=port;..." sorted by start,
// comparable between nodes.
func (s *Server) slotMap() (string, error) {
	r, err := s.Do("CLUSTER", "SLOTS")
	if err != nil {
		return "", err
	}
	ranges, _ := r.([]any)
	owner := make([]string, 16384)
	for _, rg := range ranges {
		a, _ := rg.([]any)
		if len(a) < 3 {
			continue
		}
		lo, _ := a[0].(int64)
		hi, _ := a[1].(int64)
		m, _ := a[2].([]any)
		if len(m) < 2 {
			continue
		}
		port := fmt.Sprint(m[1])
		for i := lo; i <= hi; i++ {
			owner[i] = port
		}
	}
	var b strings.Builder
	for i := 0; i < 16384; {
		j := i
		for j < 16384 && owner[j] == owner[i] {
			j++
		}
		fmt.Fprintf(&b, "%d-%d=%s;", i, j-1, owner[i])
		i = j
	}
	return b.String(), nil
}

// NodeID is the node's cluster id.
func (s *Server) NodeID() string {
	s.t.Helper()
	id, _ := s.MustDo("CLUSTER", "MYID").(string)
	return id
}

// Slot is the hash slot of key.
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	return int(c.alive()[0].Int("CLUSTER", "KEYSLOT", key))
}

// Owner is the master serving slot, as seen by the first running node.
func (c *Cluster) Owner(slot int) *Server {
	c.t.Helper()
	for _, probe := range c.alive() {
		r, err := probe.Do("CLUSTER", "SLOTS")
		if err != nil {
			continue
		}
		ranges, _ := r.([]any)
		for _, rg := range ranges {
			a, _ := rg.([]any)
			lo, _ := a[0].(int64)
			hi, _ := a[1].(int64)
			if int64(slot) < lo || int64(slot) > hi {
				continue
			}
			m, _ := a[2].([]any)
			port, _ := m[1].(int64)
			for _, s := range c.Nodes {
				if s.port == int(port) {
					return s
				}
			}
		}
	}
	c.t.Fatalf("redistest: no owner for slot %d", slot)
	return nil
}

// Masters lists the running nodes whose role is master.
func (c *Cluster) Masters() []*Server {
	var out []*Server
	for _, s := range c.alive() {
		if s.role() == "master" {
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) role() string {
	r, err := s.Do("ROLE")
	if err != nil {
		return ""
	}
	a, _ := r.([]any)
	if len(a) == 0 {
		return ""
	}
	role, _ := a[0].(string)
	return role
}

// Replicas lists the running replicas of master.
func (c *Cluster) Replicas(master *Server) []*Server {
	id := master.NodeID()
	var out []*Server
	for _, s := range c.alive() {
		r, err := s.Do("CLUSTER", "NODES")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(fmt.Sprint(r), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && strings.Contains(f[2], "myself") && strings.Contains(f[2], "slave") && f[3] == id {
				out = append(out, s)
			}
		}
	}
	return out
}

// MoveSlot migrates slot from its current owner to dst with the
// IMPORTING / MIGRATING / (MIGRATE keys) / NODE sequence that
// `redis-cli --cluster reshard` runs, then waits until the cluster agrees.
func (c *Cluster) MoveSlot(slot int, dst *Server) {
	c.t.Helper()
	src := c.Owner(slot)
	if src == dst {
		return
	}
	s, d := strconv.Itoa(slot), dst.NodeID()
	srcID := src.NodeID()
	dst.MustDo("CLUSTER", "SETSLOT", s, "IMPORTING", srcID)
	src.MustDo("CLUSTER", "SETSLOT", s, "MIGRATING", d)
	for {
		keys := src.Strings("CLUSTER", "GETKEYSINSLOT", s, "100")
		if len(keys) == 0 {
			break
		}
		args := append([]string{"MIGRATE", "127.0.0.1", strconv.Itoa(dst.port), "", "0", "5000", "KEYS"}, keys...)
		src.MustDo(args...)
	}
	dst.MustDo("CLUSTER", "SETSLOT", s, "NODE", d)
	src.MustDo("CLUSTER", "SETSLOT", s, "NODE", d)
	for _, m := range c.Masters() {
		if m != src && m != dst {
			m.Do("CLUSTER", "SETSLOT", s, "NODE", d)
		}
	}
	c.WaitStable(20 * time.Second)
}

// Failover promotes a replica of master with CLUSTER FAILOVER (a manual,
// coordinated failover: no writes are lost) and waits until the cluster
// agrees on the new owner. It returns the new master.
func (c *Cluster) Failover(master *Server) *Server {
	c.t.Helper()
	reps := c.Replicas(master)
	if len(reps) == 0 {
		c.t.Fatalf("redistest: master %s has no replica", master.Addr())
	}
	r := reps[0]
	c.waitReplicasSynced(20 * time.Second)
	// A coordinated failover's MFSTART can go unanswered on a young
	// cluster (the master never logs the request; Redis gives up after
	// 5 s), so escalate: plain, then FORCE (no master handshake, still
	// elected by the masters), then TAKEOVER (no election).
	promoted := false
	for _, mode := range [][]string{{}, {"FORCE"}, {"TAKEOVER"}} {
		r.MustDo(append([]string{"CLUSTER", "FAILOVER"}, mode...)...)
		deadline := time.Now().Add(1500 * time.Millisecond)
		for !promoted && time.Now().Before(deadline) {
			promoted = r.role() == "master"
			if !promoted {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if promoted {
			break
		}
	}
	if !promoted {
		for _, n := range c.Nodes {
			log, _ := os.ReadFile(n.logPath)
			c.t.Logf("node %d log:\n%s", n.port, log)
		}
		c.t.Fatalf("redistest: replica %s was not promoted", r.Addr())
	}
	c.WaitStable(20 * time.Second)
	return r
}
