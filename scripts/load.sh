#!/usr/bin/env bash
# Load test: GET /client-token on a warm cache (the whole BFF, in-process, on real Redis and
# Postgres, with its logs on at info level, buffered as shipped and written to a file) against
# two references with no logs: bare Echo returning a constant JSON body of the same size (the
# limit of any Echo handler here) and bare Echo doing one Redis GET. All run in one `go test`
# run, one after the other, alternating over rounds; it prints req/s, p50, p99, max and heap
# allocations per request (whole process, load client included) for each round and the median
# round, and the hot path's ratios to both references. Everything stays on loopback.
#
# The load generator is wrk (one thread, BFF_LOAD_CONNS connections) when it is installed
# (apt-get install wrk), else a Go client inside the test process; BFF_LOAD_CLIENT=wrk or go
# picks one. wrk costs the machine far less per request, so the servers get most of the CPU and
# the allocations counted are the servers' own; with the Go client both sides share the
# process, and its cost, the same for every target, pulls the ratios toward 1.
#
# Knobs (environment): BFF_LOAD_CONNS (32), BFF_LOAD_DURATION (10s), BFF_LOAD_ROUNDS (2),
# BFF_LOAD_VERSION (v2 or v3: which tenant's user is loaded), BFF_LOAD_MODE, BFF_LOAD_LOGS
# (file, the default; slowpipe: the BFF's logs go into an OS pipe read at about 400 KB/s, far
# slower than they are produced, and the lines dropped are printed; discard), and
# BFF_TEST_REDIS_URL / BFF_TEST_DATABASE_URL (127.0.0.1 only).
#
# BFF_LOAD_MODE=compare (the default) is the comparison above. BFF_LOAD_MODE=refresh loads
# one hot user instead, across refresh-ahead boundaries: Basiq tokens live 30s and take 200ms
# to mint, client_token.refresh_after is 10s (min_remaining 5s, l1_ttl 1s), and one run of
# BFF_LOAD_DURATION (default 25s here, at least 12s) crosses a refresh at token age 10s and
# again 10s later. It prints p50, p99 and max for the whole run, for the requests within 1s
# of each refresh and for the rest (steady state), the ratio of the refresh windows' p99 to
# the steady p99, and how many requests took 200ms or more (waited on Basiq; expected 0).
# BFF_LOAD_ROUNDS does not apply to it. Example: BFF_LOAD_MODE=refresh scripts/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export BFF_TEST_REDIS_URL="${BFF_TEST_REDIS_URL:-redis://127.0.0.1:6379/9}"
export BFF_TEST_DATABASE_URL="${BFF_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bff_test?sslmode=disable}"
export BFF_TEST_REQUIRE_SERVICES=1
export BFF_LOAD=1

redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "Postgres is not answering on 127.0.0.1:5432" >&2; exit 1; }
# The test database is our own; the test creates and drops its own schema inside it.
db=${BFF_TEST_DATABASE_URL%%\?*}
db=${db##*/}
case "$db" in *[!a-z0-9_]* | "") echo "unexpected database name in BFF_TEST_DATABASE_URL: $db" >&2; exit 1 ;; esac
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"

if [ "${BFF_LOAD_CLIENT:-}" != go ] && ! command -v wrk >/dev/null; then
  echo "wrk is not installed (apt-get install wrk): using the Go load client" >&2
fi

# Other work on the machine skews the numbers; say how busy it was.
echo "load mode: ${BFF_LOAD_MODE:-compare}"
echo "load before: $(uptime)"
go test -run '^TestLoad$' -count=1 -v -timeout 60m ./server/
echo "load after:  $(uptime)"
