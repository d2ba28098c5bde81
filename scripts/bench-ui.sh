#!/usr/bin/env bash
# Measures what the dashboard's in-memory history costs (issue 16): two
# fresh abacusd nodes built from this tree, one with the history on (the
# default) and one with --ui=false, driven by the same generator with the
# same flags, REPS times:
#
#   scripts/bench-ui.sh [REPS] [DURATION] [VIA] [MODE]   # default 5 10s unary together
#
# MODE together (the default) loads both nodes at once, each with its own
# generator, so that whatever else runs on the machine slows both alike;
# MODE turns loads them in turn (on, off, on, off, ...), each with the whole
# machine, which suits a quiet machine.
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
mode=${4:-together}
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
bench() { # which, output file
  local port_var="${1}_port"
  "$tmp/bin/abacus" --addr "127.0.0.1:${!port_var}" bench --scenario add --via "$via" --duration "$dur" \
    --callers 64 --no-progress -o json >"$2"
}
report() { # which, rep, cpu before, cpu after, bench output
  python3 -c "
import json, sys
d = json.load(open('$5'))['result']
cpu = ($4 - $3) * 1e4 / max(d['ops'], 1)
print('%-3s rep%s  ops/s %7.0f  p99 %6.2f ms  node CPU/op %5.1f us' % ('$1', '$2', d['ops_per_sec'], d['latency']['p99_us'] / 1000, cpu))
with open('$results', 'a') as f:
    f.write('%s %f %f\\n' % ('$1', d['ops_per_sec'], cpu))"
}
for rep in $(seq "$reps"); do
  if [ "$mode" = together ]; then
    a0=$(cpu "$on_pid"); b0=$(cpu "$off_pid")
    bench on "$tmp/on.json" & p1=$!
    bench off "$tmp/off.json" & p2=$!
    wait "$p1" "$p2"
    a1=$(cpu "$on_pid"); b1=$(cpu "$off_pid")
    report on "$rep" "$a0" "$a1" "$tmp/on.json"
    report off "$rep" "$b0" "$b1" "$tmp/off.json"
  else
    for which in on off; do
      pid_var="${which}_pid"
      c0=$(cpu "${!pid_var}")
      bench "$which" "$tmp/$which.json"
      c1=$(cpu "${!pid_var}")
      report "$which" "$rep" "$c0" "$c1" "$tmp/$which.json"
    done
  fi
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
side = {w: [(float(r[1]), float(r[2])) for r in rows if r[0] == w] for w in ('on', 'off')}
for w in ('on', 'off'):
    ops = [o for o, _ in side[w]]
    print('%-3s median ops/s %7.0f  node CPU/op %5.1f us  (ops/s min %.0f max %.0f, total %.0f)' % (
        w, statistics.median(ops), statistics.median(c for _, c in side[w]), min(ops), max(ops), sum(ops)))
# Each rep's two runs met the same machine: their ratio is the paired
# comparison; the median of the ratios keeps one disturbed rep from
# swaying the summary, and the ratio of the totals weighs every op alike.
pairs = list(zip(side['on'], side['off']))
med = lambda xs: (statistics.median(xs) - 1) * 100
print('history on vs off, %d pairs: throughput median %+.2f %% (totals %+.2f %%), node CPU/op median %+.2f %%; on ahead in %d' % (
    len(pairs), med([a[0] / b[0] for a, b in pairs]), (sum(a[0] for a, _ in pairs) / sum(b[0] for _, b in pairs) - 1) * 100,
    med([a[1] / b[1] for a, b in pairs]), sum(a[0] > b[0] for a, b in pairs)))
PY
hist=$(curl -s "http://127.0.0.1:$on_http/metrics" | awk '/^abacus_ui_history_bytes/ {print $2}')
echo "history memory (abacus_ui_history_bytes): $hist bytes"
for which in on off; do
  pid_var="${which}_pid"
  echo "$which RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/${!pid_var}/status")"
done
