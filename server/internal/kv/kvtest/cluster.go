//go:build linux

package kvtest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a throwaway three-master Redis Cluster on loopback (no replicas).
type Cluster struct {
	// URL names every node for kv.NewRedis: redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3.
	URL string
	// Nodes are the masters' addresses (host:port).
	Nodes []string
}

// StartCluster starts the cluster (redis-server 7.0 or later, for --cluster-port) and returns
// once every node reports cluster_state:ok. Everything is killed when tb ends. It skips unless
// BFF_TEST_REDIS_URL is set and when the Redis binaries are missing (fails instead when
// BFF_TEST_REQUIRE_SERVICES=1).
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	RedisURL(tb) // skips unless Redis tests are wanted
	requireBinary(tb, redisServerBin)
	cli := requireBinary(tb, redisCLIBin)

	// Each node needs a client port and a cluster-bus port; the default bus port (client port
	// + 10000) could be taken or out of range.
	ports := freePorts(tb, 6)
	c := &Cluster{Nodes: make([]string, 3)}
	for i := range c.Nodes {
		port, bus := ports[2*i], ports[2*i+1]
		c.Nodes[i] = loopback(port)
		startRedisServer(tb, fmt.Sprintf("node-%d", i+1), port,
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}

	ctx, cancel := context.WithTimeout(tb.Context(), 15*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Nodes...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, tail(string(out), 30))
	}
	for _, addr := range c.Nodes {
		nc := NodeClient(tb, addr)
		WaitFor(tb, 10*time.Second, addr+" to report cluster_state:ok", func(ctx context.Context) error {
			info, err := nc.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster not ready")
			}
			return err
		})
	}
	c.URL = "redis+cluster://" + strings.Join(c.Nodes, ",")
	return c
}
