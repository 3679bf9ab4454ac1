//go:build linux

package kvtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the Sentinels of StartSentinel monitor the master set under.
const SentinelMaster = "mymaster"

// Sentinel is a throwaway Redis master set on loopback: a master, one replica and three
// Sentinels (quorum 2). It is not safe for concurrent use; Master may be read
// while no Failover runs.
type Sentinel struct {
	// URL names the set for kv.NewRedis and the BFF's redis_url:
	// redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster.
	URL string
	// Sentinels are the Sentinels' addresses (host:port).
	Sentinels []string

	master, replica string
	nodes           map[string]*redis.Client // by address
	sentinels       []*redis.SentinelClient
}

// StartSentinel starts a master, a replica and three Sentinels, and returns once every
// Sentinel knows the replica in sync, so a failover can start at once. Everything is killed
// when tb ends. It skips unless BFF_TEST_REDIS_URL is set and when the Redis binaries are
// missing (fails instead when BFF_TEST_REQUIRE_SERVICES=1).
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	RedisURL(tb) // skips unless Redis tests are wanted
	sentinelBin := requireBinary(tb, redisSentinelBin)
	requireBinary(tb, redisServerBin)

	ports := freePorts(tb, 5)
	s := &Sentinel{master: loopback(ports[0]), replica: loopback(ports[1])}
	startRedisServer(tb, "master", ports[0])
	startRedisServer(tb, "replica", ports[1], "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
	s.nodes = map[string]*redis.Client{s.master: NodeClient(tb, s.master), s.replica: NodeClient(tb, s.replica)}
	// Sentinels start only once the replica is in sync, so their first INFO of the master
	// already lists it; the next one would come 10 s later.
	s.waitReplicaInSync(tb)

	for i, port := range ports[2:] {
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it, so it must be writable
		// Short timeouts keep a failover within seconds: a master is judged down after one
		// silent second, and a stuck failover is retried after five.
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 5000\n", port, dir, SentinelMaster, ports[0])
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		startProcess(tb, fmt.Sprintf("sentinel-%d", i+1), sentinelBin, conf)
		addr := loopback(port)
		s.Sentinels = append(s.Sentinels, addr)
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
		tb.Cleanup(func() { _ = sc.Close() })
		s.sentinels = append(s.sentinels, sc)
	}
	s.waitSentinelsKnowReplica(tb)
	s.URL = "redis+sentinel://" + strings.Join(s.Sentinels, ",") + "/" + SentinelMaster
	return s
}

// Master returns the current master's address.
func (s *Sentinel) Master() string { return s.master }

// Failover promotes the replica through SENTINEL FAILOVER and returns once every Sentinel
// names it as the master; the old master becomes its replica. It first waits until the
// replica holds every write the master had acknowledged, because a forced failover does not
// wait for replication: a write lost that way would look like a bug of the client under test.
// tb is the calling (sub)test. Failover may be called again once it returns, but the
// Sentinels reconfigure the demoted master only on their next INFO round, so a second one
// starts about 20 s later.
func (s *Sentinel) Failover(tb testing.TB) {
	tb.Helper()
	// The demoted master of an earlier failover must be a synced replica again before the
	// Sentinels will promote it.
	s.waitReplicaInSync(tb)
	s.waitSentinelsKnowReplica(tb)
	WaitFor(tb, 5*time.Second, "SENTINEL FAILOVER to be accepted", func(ctx context.Context) error {
		return s.sentinels[0].Failover(ctx, SentinelMaster).Err()
	})
	s.waitNewMaster(tb)
}

// HangMaster makes the master stop answering clients for d (CLIENT PAUSE), as a hung or
// cut-off master does, so the Sentinels judge it down and fail over by themselves; it returns
// once every Sentinel names the replica as the master. Commands sent to the old master
// meanwhile wait unanswered. d must outlast the Sentinels' detection and election (about 3 s
// here); when it ends, the Sentinels turn the old master into a replica. Like Failover, it
// first waits until the replica holds every acknowledged write.
func (s *Sentinel) HangMaster(tb testing.TB, d time.Duration) {
	tb.Helper()
	s.waitReplicaInSync(tb)
	s.waitSentinelsKnowReplica(tb)
	ctx, cancel := context.WithTimeout(tb.Context(), time.Second)
	defer cancel()
	if err := s.nodes[s.master].ClientPause(ctx, d).Err(); err != nil {
		tb.Fatalf("CLIENT PAUSE on the master: %v", err)
	}
	s.waitNewMaster(tb)
}

// waitNewMaster waits until every Sentinel names the replica as the master, then swaps the
// roles. Until then the failover does not count as done: a client asking a Sentinel that has
// not yet heard of it is sent back to the old master.
func (s *Sentinel) waitNewMaster(tb testing.TB) {
	tb.Helper()
	for i, sc := range s.sentinels {
		WaitFor(tb, 15*time.Second, "Sentinel "+s.Sentinels[i]+" to name "+s.replica+" the master", func(ctx context.Context) error {
			got, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
			if err == nil && (len(got) != 2 || net.JoinHostPort(got[0], got[1]) != s.replica) {
				err = fmt.Errorf("master is %v", got)
			}
			return err
		})
	}
	s.master, s.replica = s.replica, s.master
}

// waitReplicaInSync waits until the replica's link to the master is up and it has applied
// the master's replication stream up to the offset of this call's start.
func (s *Sentinel) waitReplicaInSync(tb testing.TB) {
	tb.Helper()
	target := int64(-1)
	WaitFor(tb, 30*time.Second, "replica "+s.replica+" to catch up with the master", func(ctx context.Context) error {
		if target < 0 {
			info, err := s.nodes[s.master].Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if target, err = infoInt(info, "master_repl_offset"); err != nil {
				return err
			}
		}
		info, err := s.nodes[s.replica].Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") || !strings.Contains(info, "master_port:"+port(s.master)) {
			return errors.New("the link to the master is not up")
		}
		got, err := infoInt(info, "slave_repl_offset")
		if err == nil && got < target {
			err = fmt.Errorf("replica at offset %d, master was at %d", got, target)
		}
		return err
	})
}

// waitSentinelsKnowReplica waits until every Sentinel lists the replica as a healthy one: a
// forced failover needs a Sentinel that knows a replica to promote.
func (s *Sentinel) waitSentinelsKnowReplica(tb testing.TB) {
	tb.Helper()
	for i, sc := range s.sentinels {
		WaitFor(tb, 30*time.Second, "Sentinel "+s.Sentinels[i]+" to see replica "+s.replica, func(ctx context.Context) error {
			replicas, err := sc.Replicas(ctx, SentinelMaster).Result()
			if err != nil {
				return err
			}
			for _, r := range replicas {
				if net.JoinHostPort(r["ip"], r["port"]) == s.replica && r["flags"] == "slave" && r["master-link-status"] == "ok" {
					return nil
				}
			}
			return fmt.Errorf("replicas known: %v", replicas)
		})
	}
}

// infoInt reads the integer field name from an INFO reply.
func infoInt(info, name string) (int64, error) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO has no %s", name)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
