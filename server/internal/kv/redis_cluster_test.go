//go:build linux

package kv

import (
	"strconv"
	"testing"
	"time"

	"github.com/basiq-bff/bff/server/internal/kv/kvtest"
)

// TestRedisCluster runs the contract suite against a real three-master cluster, then checks a
// single seed is enough and that keys really spread over the nodes.
func TestRedisCluster(t *testing.T) {
	c := kvtest.StartCluster(t)
	nodes, clusterURL := c.Nodes, c.URL
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
			c := kvtest.NodeClient(t, addr)
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
