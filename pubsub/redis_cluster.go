package pubsub

// Redis Cluster topology: which node owns which slot (sharded mode must
// SSUBSCRIBE on the slot owner itself) and per-node clients, since the
// cluster client's dedicated connections cannot hold channels of many slots.

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"

	"github.com/redis/rueidis"
)

func (b *Redis) clusterNodeAddrs() []string {
	var addrs []string
	for a := range b.cmd.Nodes() {
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		addrs = append(addrs, b.opts.Addrs...)
	}
	slices.Sort(addrs)
	return addrs
}

// nodeClient returns a client bound to one cluster node (for SSUBSCRIBE on
// the slot owner, which the cluster client's dedicated connections cannot
// do for channels of many slots).
func (b *Redis) nodeClient(addr string) (rueidis.Client, error) {
	if c := b.nodes[addr]; c != nil {
		return c, nil
	}
	co := b.clientOption(addr)
	co.ForceSingleClient = true
	c, err := rueidis.NewClient(co)
	if err != nil {
		return nil, err
	}
	b.nodes[addr] = c
	return c, nil
}

// refreshTopology reads CLUSTER SLOTS into the slot → master map.
func (b *Redis) refreshTopology() error {
	ctx, cf := context.WithTimeout(context.Background(), b.opts.CommandTimeout)
	defer cf()
	b.mu.Lock()
	from := b.topoFrom
	b.topoFrom = ""
	b.mu.Unlock()
	// Ask that node first, then every other known node: the cluster
	// client alone may route to the very node that just died.
	var ranges []rueidis.RedisMessage
	err := errors.New("no cluster node known")
	clients := []rueidis.Client{b.nodes[from]}
	for _, n := range b.cmd.Nodes() {
		clients = append(clients, n)
	}
	for _, n := range clients {
		if n == nil {
			continue
		}
		if ranges, err = n.Do(ctx, n.B().ClusterSlots().Build()).ToArray(); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	slots := make([]string, 16384)
	for _, r := range ranges {
		v, err := r.ToArray()
		if err != nil || len(v) < 3 {
			continue
		}
		lo, _ := v[0].AsInt64()
		hi, _ := v[1].AsInt64()
		node, _ := v[2].ToArray()
		if len(node) < 2 || lo < 0 || hi >= 16384 {
			continue
		}
		host, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		if host == "" {
			host, _, _ = net.SplitHostPort(b.opts.Addrs[0])
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		for s := lo; s <= hi; s++ {
			slots[s] = addr
		}
	}
	b.slots = slots
	b.topoStale.Store(false)
	b.log.Debug("redis cluster topology refreshed", "asked", from)
	return nil
}
