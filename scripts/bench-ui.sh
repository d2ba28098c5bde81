#!/usr/bin/env bash
# Measures what the dashboard's in-memory history costs (issue 16): two
# fresh abacusd nodes built from this tree, one with the history on (the
# default) and one with --ui=false, driven in turn by the same generator
# with the same flags, REPS times, interleaved (on, off, on, off, ...):
#
#   scripts/bench-ui.sh [REPS] [DURATION] [VIA]    # default 5 10s unary
#
# VIA is the bench's --via: unary (one AddCount RPC per op: the most
# requests per second, so the most per-request tally work) or client
# (natural batching). Prints per run ops/s, p99 and the node's CPU per op
# (process CPU time from /proc over the run), then the medians of each side
# and their difference, and the history's own estimate of its memory
# (abacus_ui_history_bytes) and both nodes' RSS at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
reps=${1:-5}
dur=${2:-10s}
via=${3:-unary}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/abacus-bench-ui.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/bin/" ./cmd/abacusd ./cmd/abacus

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # name, extra flags...
  local name=$1; shift
  local g h
  g=$(free_port); h=$(free_port)
  "$tmp/bin/abacusd" --data-dir "$tmp/data-$name" --grpc-addr "127.0.0.1:$g" --http-addr "127.0.0.1:$h" "$@" \
    >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$! ${name}_port=$g ${name}_http=$h"
}
start on
start off --ui=false
sleep 2
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
results="$tmp/results"
for rep in $(seq "$reps"); do
  for which in on off; do
    port_var="${which}_port"; pid_var="${which}_pid"
    pid=${!pid_var}
    c0=$(cpu "$pid")
    out=$("$tmp/bin/abacus" --addr "127.0.0.1:${!port_var}" bench --scenario add --via "$via" --duration "$dur" \
      --callers 64 --no-progress -o json)
    c1=$(cpu "$pid")
    echo "$out" | python3 -c "
import json, sys
d = json.load(sys.stdin)['result']
cpu = ($c1 - $c0) * 1e4 / max(d['ops'], 1)
print('%-3s rep%s  ops/s %7.0f  p99 %6.2f ms  node CPU/op %5.1f us' % ('$which', '$rep', d['ops_per_sec'], d['latency']['p99_us'] / 1000, cpu))
with open('$results', 'a') as f:
    f.write('%s %f %f\n' % ('$which', d['ops_per_sec'], cpu))"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for side in ('on', 'off'):
    ops = [float(r[1]) for r in rows if r[0] == side]
    cpu = [float(r[2]) for r in rows if r[0] == side]
    med[side] = (statistics.median(ops), statistics.median(cpu))
    print('%-3s median ops/s %7.0f  node CPU/op %5.1f us  (ops/s min %.0f max %.0f)' % (side, med[side][0], med[side][1], min(ops), max(ops)))
print('history on vs off: throughput %+.2f %%, node CPU/op %+.2f %%' % (
    (med['on'][0] / med['off'][0] - 1) * 100, (med['on'][1] / med['off'][1] - 1) * 100))
PY
hist=$(curl -s "http://127.0.0.1:$on_http/metrics" | awk '/^abacus_ui_history_bytes/ {print $2}')
echo "history memory (abacus_ui_history_bytes): $hist bytes"
for which in on off; do
  pid_var="${which}_pid"
  echo "$which RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/${!pid_var}/status")"
done
