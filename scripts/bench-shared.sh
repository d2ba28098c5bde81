#!/usr/bin/env bash
# Shared mode over PostgreSQL, measured (docs/benchmarks.md, "Shared mode"):
#
#   scripts/bench-shared.sh [--callers N] [--duration D] [--reps R] [--via V]
#
# It starts a PostgreSQL on a free loopback port (scripts/servers.sh), three
# abacusd nodes built from this tree, all with --postgres on it, and then, R
# times, interleaved:
#   - abacus: three `abacus bench --scenario add --via V` at once, one per
#     node, with N/3 callers each (the adds/s are summed);
#   - pg-events: `abacus bench compare --targets pg-events --scenario add`
#     with N callers, against the same PostgreSQL: one INSERT per add into an
#     events table, what an application would write without abacus.
# For each run it prints the adds/s, the CPU per add of the abacusd nodes
# together and of PostgreSQL (every postgres process, from /proc), so that
# it shows which of the two is the limit. Defaults: --callers 63,
# --duration 10s, --reps 2, --via client.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

log() { printf 'bench-shared.sh: %s\n' "$*" >&2; }

CALLERS=63 DURATION=10s REPS=2 VIA=client
while [ $# -gt 0 ]; do
  case "$1" in
  --callers) CALLERS=$2; shift 2 ;;
  --duration) DURATION=$2; shift 2 ;;
  --reps) REPS=$2; shift 2 ;;
  --via) VIA=$2; shift 2 ;;
  *) log "unknown flag $1"; exit 2 ;;
  esac
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/abacus-shared.XXXXXX")
ENVFILE=$TMP/servers.env
PIDS=()

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  bash scripts/servers.sh stop "$ENVFILE" >/dev/null 2>&1 || log "could not stop the servers of $ENVFILE"
  rm -rf -- "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v jq >/dev/null || { log "installing jq"; apt-get install -y -q jq >/dev/null; }
log "starting PostgreSQL (scripts/servers.sh)"
bash scripts/servers.sh start "$ENVFILE" >/dev/null
# shellcheck disable=SC1090 # written by servers.sh
. "$ENVFILE"
log "building abacusd and abacus"
go build -o "$TMP/bin/" ./cmd/abacusd ./cmd/abacus

cat >"$TMP/namespaces.yaml" <<'EOF'
namespaces:
  - name: bench_shared
    counter_type: EVENTUAL
    description: abacus bench, shared mode over PostgreSQL
EOF

GRPC=() HTTP=()
for i in 0 1 2; do
  setsid "$TMP/bin/abacusd" --data-dir "$TMP/node$i" --namespaces "$TMP/namespaces.yaml" \
    --postgres "$ABACUS_TEST_POSTGRES" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level info \
    </dev/null >"$TMP/node$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 600); do
    g=$(sed -n 's/.*abacusd serving.* grpc=\([0-9.:]*\).*/\1/p' "$TMP/node$i.log" | head -n 1)
    h=$(sed -n 's/.*abacusd serving.* http=\([0-9.:]*\).*/\1/p' "$TMP/node$i.log" | head -n 1)
    [ -z "$g" ] || break
    sleep 0.1
  done
  [ -n "$g" ] || { tail -n 20 "$TMP/node$i.log" >&2; log "node $i did not start"; exit 1; }
  GRPC+=("$g") HTTP+=("$h")
done
log "nodes: ${GRPC[*]} over $ABACUS_TEST_POSTGRES; $(nproc) CPUs"

# pgcpu prints the CPU seconds of every postgres process so far.
pgcpu() {
  local tck total=0 p
  tck=$(getconf CLK_TCK)
  for p in $(pgrep -x postgres || true); do
    if [ -r "/proc/$p/stat" ]; then
      total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    fi
  done
  # Exited backends (one per connection) are counted in their parent's
  # cutime/cstime, which the postmaster's line carries.
  local pm
  pm=$(pgrep -x -o postgres || true)
  [ -z "$pm" ] || total=$((total + $(awk '{print $16 + $17}' "/proc/$pm/stat")))
  awk -v t="$total" -v h="$tck" 'BEGIN {printf "%.2f", t / h}'
}
nodecpu() {
  local total=0 h v
  for h in "${HTTP[@]}"; do
    v=$(curl -s "http://$h/metrics" | awk '/^process_cpu_seconds_total/ {print $2}')
    total=$(awk -v a="$total" -v b="$v" 'BEGIN {print a + b}')
  done
  echo "$total"
}
report() { # name adds pg0 pg1 n0 n1
  awk -v secs="$SECS" -v name="$1" -v adds="$2" -v p0="$3" -v p1="$4" -v n0="$5" -v n1="$6" 'BEGIN {
    n = adds * secs
    if (n == 0) n = 1
    printf "%-10s %10.0f adds/s   postgres %6.1f µs/add", name, adds, (p1 - p0) * 1e6 / n
    if (name == "abacus") printf "   abacusd nodes %6.1f µs/add", (n1 - n0) * 1e6 / n
    printf "\n"
  }'
}
SECS=$(awk -v d="$DURATION" 'BEGIN {sub(/s$/, "", d); print d}')
PER=$((CALLERS / 3))

for r in $(seq "$REPS"); do
  p0=$(pgcpu); n0=$(nodecpu)
  BENCH=()
  for i in 0 1 2; do
    "$TMP/bin/abacus" --addr "${GRPC[$i]}" --metrics-url none bench --scenario add --via "$VIA" --namespace bench_shared \
      --callers "$PER" --duration "$DURATION" --warmup 0s --no-progress -o json >"$TMP/abacus$i.json" 2>"$TMP/abacus$i.err" &
    BENCH+=($!)
  done
  for i in 0 1 2; do
    wait "${BENCH[$i]}" || { cat "$TMP/abacus$i.err" >&2; log "abacus bench against node $i failed"; exit 1; }
  done
  p1=$(pgcpu); n1=$(nodecpu)
  adds=0
  for i in 0 1 2; do
    a=$(jq -r '.result.increments_per_sec' "$TMP/abacus$i.json")
    adds=$(awk -v x="$adds" -v y="${a:-0}" 'BEGIN {print x + y}')
  done
  report "abacus" "$adds" "$p0" "$p1" "$n0" "$n1"

  p0=$(pgcpu)
  "$TMP/bin/abacus" --addr "${GRPC[0]}" --metrics-url none bench compare --postgres "$ABACUS_TEST_POSTGRES" --targets pg-events \
    --scenario add --callers "$CALLERS" --duration "$DURATION" --warmup 0s --reps 1 --no-progress -o json >"$TMP/pg.json" 2>"$TMP/pg.err" ||
    { cat "$TMP/pg.err" >&2; log "the pg-events run failed"; exit 1; }
  p1=$(pgcpu)
  a=$(jq -r '.comparison.targets[0].throughput.median' "$TMP/pg.json")
  report "pg-events" "${a:-0}" "$p0" "$p1" 0 0
done
