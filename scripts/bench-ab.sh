#!/usr/bin/env bash
# Two builds of abacusd side by side (docs/benchmarks.md, "The write path of
# issue 15"):
#
#   scripts/bench-ab.sh OLD_REV NEW_REV [REPS] [DURATION]
#
# builds abacusd at both git revisions (in temporary worktrees) and abacus
# (the load generator) from this tree, starts one node of each on free
# loopback ports with empty stores, and runs REPS rounds (default 3) of, for
# each node in turn (old first in odd rounds, new first in even ones):
#
#   abacus bench --scenario batch --via batch   (AddCounts of 100)
#   abacus bench --scenario add --via client    (the Go client, natural batching)
#   abacus bench --scenario add --via unary     (AddCount, EVENTUAL, with a token)
#   abacus bench --scenario get --via unary --namespace best --type BEST_EFFORT
#
# each for DURATION (default 8s) after a 1 s warmup, 64 callers, 1000
# counters. Each line gives the throughput, the node's CPU per op (from its
# /metrics) and the generator's. The nodes stay up between runs, as a
# production node would, so later runs see fuller stores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

OLD=${1:?usage: bench-ab.sh OLD_REV NEW_REV [REPS] [DURATION]}
NEW=${2:?usage: bench-ab.sh OLD_REV NEW_REV [REPS] [DURATION]}
REPS=${3:-3}
DUR=${4:-8s}
log() { printf 'bench-ab.sh: %s\n' "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/abacus-ab.XXXXXX")
PIDS=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for side in old new; do
    [ ! -d "$TMP/src-$side" ] || git worktree remove --force "$TMP/src-$side" >/dev/null 2>&1 || true
  done
  rm -rf -- "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

go build -o "$TMP/bin/abacus" ./cmd/abacus
declare -A GRPC HTTP
for side in old new; do
  rev=$OLD
  [ "$side" = new ] && rev=$NEW
  git worktree add -q --detach "$TMP/src-$side" "$rev"
  (cd "$TMP/src-$side" && go build -o "$TMP/bin/abacusd-$side" ./cmd/abacusd)
  log "$side: $(git rev-parse --short "$rev")"
  setsid "$TMP/bin/abacusd-$side" --data-dir "$TMP/data-$side" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    </dev/null >"$TMP/$side.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 600); do
    g=$(sed -n 's/.*abacusd serving.* grpc=\([0-9.:]*\).*/\1/p' "$TMP/$side.log" | head -n 1)
    h=$(sed -n 's/.*abacusd serving.* http=\([0-9.:]*\).*/\1/p' "$TMP/$side.log" | head -n 1)
    [ -z "$g" ] || break
    sleep 0.1
  done
  [ -n "$g" ] || { tail -n 20 "$TMP/$side.log" >&2; log "$side did not start"; exit 1; }
  GRPC[$side]=$g HTTP[$side]=$h
done
log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

run() { # side scenario...
  local side=$1
  shift
  local out
  out=$("$TMP/bin/abacus" --addr "${GRPC[$side]}" --metrics-url "http://${HTTP[$side]}/metrics" bench \
    --callers 64 --duration "$DUR" --no-progress "$@" 2>&1) || { echo "$out" >&2; return 1; }
  printf '%-4s %-40s %s | %s | %s\n' "$side" "$*" \
    "$(echo "$out" | sed -n 's/^throughput: *//p')" \
    "$(echo "$out" | sed -n 's/^server cpu: *\([^,]*\),.*/node \1/p')" \
    "$(echo "$out" | sed -n 's/^generator cpu: *\([^,]*\),.*/generator \1/p')"
}
for r in $(seq "$REPS"); do
  order="old new"
  [ $((r % 2)) = 0 ] && order="new old"
  for scenario in "--scenario batch --via batch" "--scenario add --via client" "--scenario add --via unary" \
    "--scenario get --via unary --namespace best --type BEST_EFFORT"; do
    for side in $order; do
      # shellcheck disable=SC2086 # the scenario's flags are split on purpose
      run "$side" $scenario
    done
  done
done
