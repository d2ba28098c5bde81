#!/usr/bin/env bash
# Measures what TLS and access-token checks cost per request: two fresh
# abacusd nodes built from this tree, one plain and one with TLS and
# --auth-tokens, driven in turn by the same generator with the same flags
# (unary AddCount on an EVENTUAL namespace), REPS times, interleaved:
#
#   scripts/bench-security.sh [REPS] [DURATION]     # default 3 8s
#
# Prints, per run: ops/s, p50 and p99 latency, and the node's CPU per op
# (process CPU time from /proc over the run, its 1 s warmup included). The
# certificates (openssl) and tokens (abacus token new) are made in a temp
# dir, removed at the end with the nodes' data.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
reps=${1:-3}
dur=${2:-8s}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/abacus-bench-security.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/bin/" ./cmd/abacusd ./cmd/abacus
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$tmp/server-key.pem" -out "$tmp/server.csr" 2>/dev/null
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -CAcreateserial -days 1 \
  -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1') -out "$tmp/server.pem" 2>/dev/null
"$tmp/bin/abacus" token new --name bench --grant '*:read,write,admin' >"$tmp/token" 2>"$tmp/entry"
{ echo 'tokens:'; cat "$tmp/entry"; } >"$tmp/tokens.yaml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # name, extra flags...
  local name=$1; shift
  local g h
  g=$(free_port); h=$(free_port)
  "$tmp/bin/abacusd" --data-dir "$tmp/data-$name" --grpc-addr "127.0.0.1:$g" --http-addr "127.0.0.1:$h" "$@" \
    >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$! ${name}_port=$g"
}
start plain
start secure --tls-cert "$tmp/server.pem" --tls-key "$tmp/server-key.pem" --auth-tokens "$tmp/tokens.yaml"
sleep 2
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
for rep in $(seq "$reps"); do
  for which in plain secure; do
    if [ "$which" = plain ]; then
      args=(--addr "127.0.0.1:$plain_port"); pid=$plain_pid
    else
      args=(--addr "localhost:$secure_port" --tls-ca "$tmp/ca.pem" --token "$(cat "$tmp/token")"); pid=$secure_pid
    fi
    c0=$(cpu "$pid")
    out=$("$tmp/bin/abacus" "${args[@]}" bench --scenario add --via unary --duration "$dur" --callers 64 --no-progress -o json)
    c1=$(cpu "$pid")
    echo "$out" | python3 -c "
import json, sys
d = json.load(sys.stdin)['result']
print('%-6s rep%s  ops/s %7.0f  p50 %5.2f ms  p99 %6.2f ms  node CPU/op %5.1f us' % (
    '$which', '$rep', d['ops_per_sec'], d['latency']['p50_us'] / 1000, d['latency']['p99_us'] / 1000,
    ($c1 - $c0) * 1e4 / max(d['ops'], 1)))"
  done
done
