#!/usr/bin/env bash
# Benchmarks abacus side by side with the systems a user would pick instead,
# on this machine, in one run with interleaved repetitions (docs/benchmarks.md):
#
#   scripts/bench-peers.sh [COMPARE FLAGS...] [--then COMPARE FLAGS...]...
#
# It starts, on free loopback ports with their data in a temp dir:
#   - PostgreSQL, Redis (appendonly yes, appendfsync everysec) and memcached,
#     through scripts/servers.sh (which installs them with apt-get if missing;
#     it also starts a small Redis Cluster that the benchmark leaves idle);
#   - an abacusd built from this tree, with its embedded store in the temp dir
#     and the namespaces bench_eventual (EVENTUAL), bench_accurate (ACCURATE)
#     and bench_best (BEST_EFFORT);
# then runs `abacus bench compare` with every address, abacusd's /metrics URL
# (--metrics-url, for the node's CPU per op) and the pids of the peers'
# servers (--server-pid, for their CPU per op from /proc), and the flags
# given (after the defaults --namespace bench_eventual, which they may
# override),
# and stops everything, whatever happens. Each `--then` starts another
# comparison against the same servers, e.g.
#
#   scripts/bench-peers.sh --scenario add --then --scenario get
#
# Machine details go to stderr, results to stdout (so -o json stays clean).
# The exit status is 1 if any comparison failed.
#
# Environment: TMPDIR (where the temp dir goes, default /tmp),
# ABACUS_BENCH_KEEP=1 (keep the temp dir, with abacusd's log).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

log() { printf 'bench-peers.sh: %s\n' "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/abacus-bench.XXXXXX")
ENVFILE=$TMP/servers.env
ABACUSD_PID=""

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$ABACUSD_PID" ] && kill -0 "$ABACUSD_PID" 2>/dev/null; then
    kill -TERM "$ABACUSD_PID" 2>/dev/null || true
    for _ in $(seq 300); do
      kill -0 "$ABACUSD_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$ABACUSD_PID" 2>/dev/null || true
  fi
  bash scripts/servers.sh stop "$ENVFILE" >/dev/null 2>&1 || log "could not stop the servers of $ENVFILE"
  if [ "${ABACUS_BENCH_KEEP:-}" = 1 ]; then
    log "kept $TMP"
  else
    rm -rf -- "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

machine() {
  local cpu mem disk
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  disk=$(df -hT "$TMP" | awk 'NR == 2 {print $1 " (" $2 ", " $3 ")"}')
  log "machine: $(nproc) CPUs ($cpu), $mem memory, temp dir on $disk, $(go version | cut -d' ' -f3-)"
}

log "starting PostgreSQL, Redis and memcached (scripts/servers.sh)"
bash scripts/servers.sh start "$ENVFILE"
# shellcheck disable=SC1090 # written by servers.sh
. "$ENVFILE"

# The comparison is only fair to Redis as configured here: check it.
fsync=$(redis-cli -h "${ABACUS_TEST_REDIS%:*}" -p "${ABACUS_TEST_REDIS##*:}" --raw config get appendfsync | sed -n 2p)
aof=$(redis-cli -h "${ABACUS_TEST_REDIS%:*}" -p "${ABACUS_TEST_REDIS##*:}" --raw config get appendonly | sed -n 2p)
if [ "$aof" != yes ] || [ "$fsync" != everysec ]; then
  log "Redis has appendonly $aof, appendfsync $fsync; want yes, everysec"
  exit 1
fi

log "building abacusd and abacus"
go build -o "$TMP/bin/" ./cmd/abacusd ./cmd/abacus

cat >"$TMP/namespaces.yaml" <<'EOF'
namespaces:
  - name: bench_eventual
    counter_type: EVENTUAL
    description: abacus bench, durable events rolled up in the background
  - name: bench_accurate
    counter_type: ACCURATE
    description: abacus bench, reads add the live delta
  - name: bench_best
    counter_type: BEST_EFFORT
    description: abacus bench, in-memory cache only
EOF

# Port 0: the node picks free ports and logs them, so no port can be taken
# between a check and the bind.
setsid "$TMP/bin/abacusd" --data-dir "$TMP/abacus-data" --namespaces "$TMP/namespaces.yaml" \
  --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level info \
  </dev/null >"$TMP/abacusd.log" 2>&1 &
ABACUSD_PID=$!
GRPC=""
HTTP=""
for _ in $(seq 600); do
  GRPC=$(sed -n 's/.*abacusd serving.* grpc=\([0-9.:]*\).*/\1/p' "$TMP/abacusd.log" | head -n 1)
  HTTP=$(sed -n 's/.*abacusd serving.* http=\([0-9.:]*\).*/\1/p' "$TMP/abacusd.log" | head -n 1)
  [ -z "$GRPC" ] || break
  if ! kill -0 "$ABACUSD_PID" 2>/dev/null; then
    tail -n 25 "$TMP/abacusd.log" >&2
    log "abacusd exited"
    exit 1
  fi
  sleep 0.1
done
if [ -z "$GRPC" ]; then
  tail -n 25 "$TMP/abacusd.log" >&2
  log "abacusd did not report its address within 60s"
  exit 1
fi
log "abacusd serving on $GRPC, metrics on http://$HTTP/metrics (data in $TMP/abacus-data)"

# The peers' server pids, for their CPU per op; a peer whose pid is not
# found is compared without it.
PIDS=()
redis_pid=$(redis-cli -h "${ABACUS_TEST_REDIS%:*}" -p "${ABACUS_TEST_REDIS##*:}" --raw info server 2>/dev/null |
  sed -n 's/^process_id:\([0-9]*\).*/\1/p')
[ -z "$redis_pid" ] || PIDS+=("redis=$redis_pid")
memcached_pid=$(
  exec 3<>"/dev/tcp/${ABACUS_TEST_MEMCACHED%:*}/${ABACUS_TEST_MEMCACHED##*:}" || exit 0
  printf 'stats\r\n' >&3
  while IFS= read -r -t 2 line <&3; do
    line=${line%$'\r'}
    case $line in
      "STAT pid "*) echo "${line#STAT pid }" ;;
      END | ERROR*) break ;;
    esac
  done
) 2>/dev/null || true
[ -z "$memcached_pid" ] || PIDS+=("memcached=$memcached_pid")
# The postmaster's pid is the first line of postmaster.pid in its data dir;
# its backends are its children, which the CPU figure includes.
pg_dir=$("$ABACUS_TEST_PG_BIN/psql" "$ABACUS_TEST_POSTGRES" -Atc 'SHOW data_directory' 2>/dev/null || true)
pg_pid=$(head -n 1 "$pg_dir/postmaster.pid" 2>/dev/null || true)
[ -z "$pg_pid" ] || PIDS+=("postgres=$pg_pid")
log "server pids: ${PIDS[*]:-none found}"
SERVER_PIDS=$(IFS=,; echo "${PIDS[*]}")
log "postgres ${ABACUS_TEST_POSTGRES}, redis ${ABACUS_TEST_REDIS} (appendonly yes, appendfsync everysec), memcached ${ABACUS_TEST_MEMCACHED}"
machine

status=0
run_compare() {
  log "abacus bench compare $*"
  local pids=()
  [ -z "$SERVER_PIDS" ] || pids=(--server-pid "$SERVER_PIDS")
  "$TMP/bin/abacus" --addr "$GRPC" bench compare \
    --redis "$ABACUS_TEST_REDIS" --memcached "$ABACUS_TEST_MEMCACHED" --postgres "$ABACUS_TEST_POSTGRES" \
    --metrics-url "http://$HTTP/metrics" "${pids[@]}" \
    --namespace bench_eventual "$@" || status=1
}
# Each --then ends one comparison's flags.
cur=()
for a in "$@"; do
  if [ "$a" = --then ]; then
    run_compare "${cur[@]}"
    cur=()
  else
    cur+=("$a")
  fi
done
run_compare "${cur[@]}"
exit "$status"
