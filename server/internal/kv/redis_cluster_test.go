//go:build linux

package kv

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

const redisCLIBin = "/usr/bin/redis-cli"

// startCluster starts a three-master Redis Cluster on loopback (redis-server 7.0 or later, for
// --cluster-port) and returns its nodes' addresses once every node reports cluster_state:ok.
func startCluster(t *testing.T) []string {
	t.Helper()
	redisURL(t) // skips unless Redis tests are wanted
	requireRedisBinary(t, redisServerBin)
	cli := requireRedisBinary(t, redisCLIBin)

	// Each node needs a client port and a cluster-bus port; the default bus port (client port
	// + 10000) could be taken or out of range.
	ports := freePorts(t, 6)
	nodes := make([]string, 3)
	for i := range nodes {
		port, bus := ports[2*i], ports[2*i+1]
		nodes[i] = loopback(port)
		startRedisServer(t, fmt.Sprintf("node-%d", i+1), port,
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, nodes...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, tail(string(out), 30))
	}
	for _, addr := range nodes {
		c := plainClient(t, addr)
		waitFor(t, 10*time.Second, addr+" to report cluster_state:ok", func(ctx context.Context) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster not ready")
			}
			return err
		})
	}
	return nodes
}

// TestRedisCluster runs the contract suite against a real three-master cluster, then checks a
// single seed is enough and that keys really spread over the nodes.
func TestRedisCluster(t *testing.T) {
	nodes := startCluster(t)
	clusterURL := "redis+cluster://" + strings.Join(nodes, ",")
	if d, err := Scheme(clusterURL); err != nil || d != DeploymentCluster {
		t.Fatalf("Scheme(%q) = %q, %v; want cluster", clusterURL, d, err)
	}

	t.Run("Contract", func(t *testing.T) {
		runContract(t, func(t *testing.T) Store { return newStoreAt(t, clusterURL) })
	})

	t.Run("PublishOrder", func(t *testing.T) {
		// One publisher's messages arrive in order, although PUBLISH is forwarded over the
		// cluster bus to nodes other than the one that received it.
		r := newStoreAt(t, clusterURL)
		ctx := t.Context()
		sub, err := r.Subscribe(ctx, "ordered")
		mustNoErr(t, err)
		const n = 100
		for i := range n {
			mustNoErr(t, r.Publish(ctx, "ordered", []byte(strconv.Itoa(i))))
		}
		for i := range n {
			if got := string(recv(t, sub)); got != strconv.Itoa(i) {
				t.Fatalf("message %d = %q: out of order", i, got)
			}
		}
	})

	t.Run("OneSeed", func(t *testing.T) {
		// One node is enough to find the rest; the keys land on all three masters, and a
		// multi-key Delete across slots succeeds.
		r := newStoreAt(t, "redis+cluster://"+nodes[2])
		ctx := t.Context()
		keys := make([]string, 30)
		for i := range keys {
			keys[i] = "k" + strconv.Itoa(i)
			mustNoErr(t, r.Set(ctx, keys[i], []byte(keys[i]), time.Minute))
		}
		for _, addr := range nodes {
			c := plainClient(t, addr)
			held, err := c.Keys(ctx, r.prefix+"*").Result()
			mustNoErr(t, err)
			if len(held) == 0 {
				t.Fatalf("node %s holds no key: the writes did not spread over the cluster", addr)
			}
		}
		for _, k := range keys {
			mustGet(t, r, k, []byte(k))
		}
		mustNoErr(t, r.Delete(ctx, keys...))
		for _, k := range keys {
			mustMissing(t, r, k)
		}
	})
}
