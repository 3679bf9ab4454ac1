package kv

// PoolStats is a snapshot of the Redis client's connection pool (summed over the nodes of a
// cluster). Hits, Misses, Timeouts and StaleConns only grow.
type PoolStats struct {
	Hits, Misses, Timeouts, StaleConns uint64
	TotalConns, IdleConns              uint64
}

// PoolStats returns the pool's counters now, for metrics.
func (r *Redis) PoolStats() PoolStats {
	s := r.client.PoolStats()
	return PoolStats{Hits: uint64(s.Hits), Misses: uint64(s.Misses), Timeouts: uint64(s.Timeouts),
		StaleConns: uint64(s.StaleConns), TotalConns: uint64(s.TotalConns), IdleConns: uint64(s.IdleConns)}
}
