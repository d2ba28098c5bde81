#!/usr/bin/env bash
# Starts and stops the servers the tests of the shared backends use, all on
# 127.0.0.1 on free ports, with their data in one temp dir:
#   PostgreSQL (initdb as the postgres user), one Redis server, a 3-node Redis
#   Cluster and memcached.
#
#   scripts/servers.sh start ENVFILE   # installs what is missing (apt-get, as
#                                      # root), starts, writes ENVFILE
#   . ENVFILE                          # export ABACUS_TEST_POSTGRES=... etc.
#   scripts/servers.sh stop ENVFILE    # stops what that start started and
#                                      # removes its temp dir; idempotent
#
# ENVFILE exports ABACUS_TEST_POSTGRES (a URL), ABACUS_TEST_PG_BIN (PostgreSQL's
# bin dir), ABACUS_TEST_REDIS (host:port), ABACUS_TEST_REDIS_CLUSTER
# (host:port,host:port,host:port), ABACUS_TEST_MEMCACHED (host:port),
# ABACUS_REQUIRE_SERVERS=1 and ABACUS_TEST_SERVERS_DIR (the temp dir: server
# logs, and the state that stop reads). Several starts may run at once: each
# has its own ports and dir, and stop only stops what its own start started.
#
# Environment: ABACUS_SERVERS_WAIT (seconds to wait for each server, default
# 30), TMPDIR (where the temp dir goes, default /tmp).
set -euo pipefail

WAIT_SECS=${ABACUS_SERVERS_WAIT:-30}
STATE_NAME=servers.state

log() { printf 'servers.sh: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

usage() {
  echo "usage: $0 start ENVFILE | stop ENVFILE" >&2
  exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Prints the last lines of each named log file that exists, to stderr.
tail_logs() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 25 "$f" >&2 || true
  done
}

# Prints PostgreSQL's bin dir (the newest version under /usr/lib/postgresql),
# or nothing.
pg_bin_dir() {
  local d
  # shellcheck disable=SC2012 # the names are version numbers
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_isready" ]; then
      echo "$d"
      return 0
    fi
  done
}

# Installs the Debian packages of the servers that are missing.
ensure_packages() {
  local missing=()
  [ -n "$(pg_bin_dir)" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v memcached >/dev/null || missing+=(memcached)
  [ ${#missing[@]} -gt 0 ] || return 0
  if ! is_root || ! command -v apt-get >/dev/null; then
    die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]}) or run this as root on Debian"
  fi
  log "installing ${missing[*]} with apt-get"
  local aptlog opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  aptlog=$(mktemp "${TMPDIR:-/tmp}/abacus-servers-apt.XXXXXX")
  export DEBIAN_FRONTEND=noninteractive
  # One install at a time among concurrent starts (dpkg would wait anyway; this
  # also keeps two 'apt-get update' apart).
  if ! (
    flock -w 900 9 || exit 1
    apt-get install "${opts[@]}" "${missing[@]}" >>"$aptlog" 2>&1 ||
      { apt-get update -q >>"$aptlog" 2>&1 && apt-get install "${opts[@]}" "${missing[@]}" >>"$aptlog" 2>&1; }
  ) 9>"${TMPDIR:-/tmp}/abacus-servers-apt.lock"; then
    tail_logs "$aptlog"
    rm -f "$aptlog"
    die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$aptlog"
  [ -n "$(pg_bin_dir)" ] || die "postgresql installed, but no /usr/lib/postgresql/*/bin/initdb"
}

# Prints N distinct free TCP ports on 127.0.0.1, one a line. They are taken
# below the kernel's ephemeral range, so that no outgoing connection takes one
# between this check and the server's bind; a port is free if it can be bound
# without SO_REUSEADDR (so not in TIME_WAIT either). A race with another
# process remains possible: the callers retry on 'address in use'.
free_ports() {
  local n=$1
  if command -v python3 >/dev/null; then
    python3 - "$n" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo = 32768
lo = max(lo, 12000)
held, tries = [], 0
while len(held) < n:
    tries += 1
    port = random.randrange(10000, lo) if tries < 2000 else 0
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)
for s in held:
    print(s.getsockname()[1])
    s.close()
EOF
    return
  fi
  # Without python3: random ports that nothing answers on.
  local got=() p
  while [ ${#got[@]} -lt "$n" ]; do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % 20000))
    case " ${got[*]} " in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then got+=("$p"); fi
  done
  printf '%s\n' "${got[@]}"
}

# Runs a command as the postgres user when root (initdb and pg_ctl refuse root).
as_pg() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Prints its argument single-quoted for the shell.
shq() {
  local q="'\\''"
  printf "'%s'" "${1//\'/$q}"
}

# Appends KEY=VALUE to the state file that stop reads.
record() {
  printf '%s=%s\n' "$1" "$(shq "$2")" >>"$BASE/$STATE_NAME"
}

# ---------------------------------------------------------------- PostgreSQL

start_postgres() {
  local bin=$1 dir=$BASE/postgres port attempt
  mkdir -p "$dir"
  if is_root; then chown postgres:postgres "$dir"; fi
  chmod 700 "$dir"
  if ! (cd "$dir" && as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale -N) >"$BASE/postgres-initdb.log" 2>&1; then
    tail_logs "$BASE/postgres-initdb.log"
    die "initdb failed"
  fi
  record PG_BIN "$bin"
  record PG_DATA "$dir/data"
  for attempt in 1 2 3 4 5; do
    port=$(free_ports 1)
    rm -f "$dir/postgres.log"
    if (cd "$dir" && as_pg setsid "$bin/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t "$WAIT_SECS" \
      -o "-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on") >"$BASE/pg_ctl.log" 2>&1; then
      break
    fi
    if [ "$attempt" -lt 5 ] && grep -qiE 'could not (bind|create any TCP)|address already in use' "$dir/postgres.log" 2>/dev/null; then
      log "PostgreSQL: port $port was taken; trying another"
      continue
    fi
    tail_logs "$BASE/pg_ctl.log" "$dir/postgres.log"
    die "PostgreSQL did not start within ${WAIT_SECS}s"
  done
  local deadline=$((SECONDS + WAIT_SECS))
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
    if [ $SECONDS -ge $deadline ]; then
      tail_logs "$dir/postgres.log"
      die "PostgreSQL on 127.0.0.1:$port is not ready after ${WAIT_SECS}s"
    fi
    sleep 0.1
  done
  PG_PORT=$port
}

stop_postgres() { # BIN DATA
  local bin=$1 data=$2
  [ -f "$data/postmaster.pid" ] || return 0
  if ! (cd / && as_pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 30) >/dev/null 2>&1; then
    (cd / && as_pg "$bin/pg_ctl" stop -D "$data" -m immediate -w -t 10) >/dev/null 2>&1 ||
      log "could not stop PostgreSQL of $data"
  fi
}

# --------------------------------------------------------------------- Redis

# Prints the 'dir' setting of the Redis server on PORT (its identity: each
# server here has its own dir), or fails.
redis_dir() {
  local out
  out=$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" --raw config get dir 2>/dev/null) || return 1
  [ "$(sed -n 1p <<<"$out")" = dir ] || return 1
  sed -n 2p <<<"$out"
}

# Starts one redis-server in DIR on PORT with the extra arguments; waits until
# it answers and is this one (its dir). Returns 2 if the port was taken.
start_redis() { # DIR PORT ARGS...
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  rm -f "$dir/redis.log" "$dir/redis.pid"
  record_redis "$dir" "$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' "$@" \
    </dev/null >>"$dir/redis-start.log" 2>&1 || true
  local deadline=$((SECONDS + WAIT_SECS)) pid
  while :; do
    if grep -qi 'address already in use' "$dir/redis.log" 2>/dev/null; then
      pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
      # It exits by itself; make sure before the port is tried again.
      if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      return 2
    fi
    # Once its pid file is there, it has bound its port (or failed).
    if [ -s "$dir/redis.pid" ] && [ "$(redis_dir "$port" || true)" = "$dir" ]; then
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail_logs "$dir/redis-start.log" "$dir/redis.log"
      log "Redis in $dir did not answer on 127.0.0.1:$port within ${WAIT_SECS}s"
      return 1
    fi
    sleep 0.05
  done
}

record_redis() { # DIR PORT
  # Several records of the same dir (retries): stop handles each.
  printf 'REDIS+=(%s)\n' "$(shq "$1:$2")" >>"$BASE/$STATE_NAME"
}

# Prints the pids of the redis-server processes whose working dir is DIR (a
# server chdirs to its dir before it forks: so this finds it however far its
# start went, and never another's).
redis_pids_in() { # DIR
  local p comm
  for p in /proc/[0-9]*; do
    comm=""
    { read -r comm <"$p/comm"; } 2>/dev/null || continue
    case $comm in redis-server | redis-check-*) ;; *) continue ;; esac
    [ "$(readlink "$p/cwd" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}

stop_redis() { # DIR:PORT
  local dir=${1%:*} port=${1##*:} pids i
  pids=$(redis_pids_in "$dir")
  [ -n "$pids" ] || return 0
  if [ "$(redis_dir "$port" || true)" = "$dir" ]; then
    timeout 10 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait_gone "$dir" 50 && return 0
  fi
  # shellcheck disable=SC2086 # a list of pids
  kill -TERM $pids 2>/dev/null || true
  wait_gone "$dir" 50 && return 0
  pids=$(redis_pids_in "$dir")
  # shellcheck disable=SC2086 # a list of pids
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

# Waits up to N tenths of a second until no redis-server runs in DIR.
wait_gone() { # DIR N
  local i
  for i in $(seq "$2"); do
    [ -n "$(redis_pids_in "$1")" ] || return 0
    sleep 0.1
  done
  return 1
}

start_redis_single() {
  local attempt port rc
  for attempt in 1 2 3 4 5; do
    port=$(free_ports 1)
    rc=0
    start_redis "$BASE/redis" "$port" --appendonly yes --appendfsync everysec || rc=$?
    case $rc in
      0)
        REDIS_PORT=$port
        return 0
        ;;
      2) log "Redis: port $port was taken; trying another" ;;
      *) die "Redis did not start" ;;
    esac
  done
  die "Redis: no free port after $attempt tries"
}

# Prints the value of FIELD in CLUSTER INFO of the node on PORT.
cluster_field() { # PORT FIELD
  timeout 5 redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

start_redis_cluster() {
  local attempt ports i rc dir
  for attempt in 1 2 3 4 5; do
    # Three client ports and three cluster bus ports.
    mapfile -t ports < <(free_ports 6)
    rc=0
    for i in 0 1 2; do
      dir=$BASE/cluster-$((i + 1))
      start_redis "$dir" "${ports[i]}" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-port "${ports[i + 3]}" --cluster-node-timeout 5000 --appendonly no || rc=$?
      [ $rc -eq 0 ] || break
    done
    if [ $rc -eq 2 ]; then
      log "Redis Cluster: a port was taken; trying others"
      for i in 0 1 2; do stop_redis "$BASE/cluster-$((i + 1)):${ports[i]}"; done
      rm -rf "$BASE"/cluster-*
      continue
    fi
    [ $rc -eq 0 ] || die "Redis Cluster node did not start"
    break
  done
  [ $rc -eq 0 ] || die "Redis Cluster: no free ports after $attempt tries"
  if ! timeout 120 redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
    --cluster-replicas 0 --cluster-yes </dev/null >"$BASE/cluster-create.log" 2>&1; then
    tail_logs "$BASE/cluster-create.log" "$BASE/cluster-1/redis.log"
    die "redis-cli --cluster create failed"
  fi
  local deadline=$((SECONDS + WAIT_SECS)) ok
  while :; do
    ok=1
    for i in 0 1 2; do
      if [ "$(cluster_field "${ports[i]}" cluster_state)" != ok ] ||
        [ "$(cluster_field "${ports[i]}" cluster_slots_ok)" != 16384 ] ||
        [ "$(cluster_field "${ports[i]}" cluster_known_nodes)" != 3 ]; then
        ok=0
        break
      fi
    done
    [ $ok -eq 0 ] || break
    if [ $SECONDS -ge $deadline ]; then
      tail_logs "$BASE/cluster-create.log" "$BASE"/cluster-*/redis.log
      die "Redis Cluster is not ok on every node after ${WAIT_SECS}s"
    fi
    sleep 0.1
  done
  CLUSTER_ADDRS="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
}

# ----------------------------------------------------------------- memcached

# Prints the pid that the memcached on PORT reports.
memcached_pid() { # PORT
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'stats\r\n' >&3
    while IFS= read -r -t 2 line <&3; do
      line=${line%$'\r'}
      case $line in
        "STAT pid "*) echo "${line#STAT pid }" ;;
        END | ERROR*) break ;;
      esac
    done
  ) 2>/dev/null
}

start_memcached() {
  local dir=$BASE/memcached attempt port pid args deadline
  mkdir -p "$dir"
  for attempt in 1 2 3 4 5; do
    port=$(free_ports 1)
    args=(-l 127.0.0.1 -p "$port" -U 0 -m 64 -c 4096)
    if is_root; then args+=(-u nobody); fi
    # setsid: its own session, out of reach of a Ctrl-C meant for the tests.
    # In a script (no job control) it execs, so $! is memcached's pid.
    setsid memcached "${args[@]}" </dev/null >"$dir/memcached.log" 2>&1 &
    pid=$!
    printf 'MEMCACHED+=(%s)\n' "$(shq "$pid:$port")" >>"$BASE/$STATE_NAME"
    deadline=$((SECONDS + WAIT_SECS))
    while :; do
      if [ "$(memcached_pid "$port")" = "$pid" ]; then
        MEMCACHED_PORT=$port
        return 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        if [ "$attempt" -lt 5 ] && grep -qi 'address already in use' "$dir/memcached.log"; then
          log "memcached: port $port was taken; trying another"
          continue 2
        fi
        tail_logs "$dir/memcached.log"
        die "memcached exited"
      fi
      if [ $SECONDS -ge $deadline ]; then
        tail_logs "$dir/memcached.log"
        die "memcached did not answer on 127.0.0.1:$port within ${WAIT_SECS}s"
      fi
      sleep 0.05
    done
  done
}

stop_memcached() { # PID:PORT
  local pid=${1%%:*} port=${1##*:} i
  is_our_memcached "$pid" "$port" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    is_our_memcached "$pid" "$port" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# True if PID is a live memcached started with -p PORT (pids are not reused
# while the dir that holds the state exists, short of a wrap-around: this
# guards against that too).
is_our_memcached() { # PID PORT
  [ -r "/proc/$1/cmdline" ] || return 1
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = memcached ] || return 1
  tr '\0' '\n' <"/proc/$1/cmdline" | grep -qx -- "$2"
}

# ------------------------------------------------------------------ commands

# Stops everything recorded in the state file of DIR, then removes DIR.
stop_dir() { # DIR
  local dir=$1 r m i seen
  case $dir in
    */abacus-servers.*) ;;
    *)
      log "not a servers dir: $dir"
      return 1
      ;;
  esac
  [ -d "$dir" ] || return 0
  if [ -f "$dir/$STATE_NAME" ]; then
    (
      PG_BIN="" PG_DATA="" MEMCACHED=() REDIS=()
      # shellcheck disable=SC1090 # written by start
      . "$dir/$STATE_NAME"
      for m in "${MEMCACHED[@]}"; do stop_memcached "$m"; done
      # A dir may be recorded with several ports (retries): its last is its own.
      seen=" "
      for ((i = ${#REDIS[@]} - 1; i >= 0; i--)); do
        r=${REDIS[i]}
        case $seen in *" ${r%:*} "*) continue ;; esac
        seen="$seen${r%:*} "
        stop_redis "$r"
      done
      if [ -n "$PG_DATA" ]; then stop_postgres "$PG_BIN" "$PG_DATA"; fi
    )
  fi
  rm -rf -- "$dir"
}

cmd_start() {
  local envfile=$1 t0=$SECONDS bin
  ensure_packages
  bin=$(pg_bin_dir)
  BASE=$(mktemp -d "${TMPDIR:-/tmp}/abacus-servers.XXXXXX")
  # The postgres user must reach $BASE/postgres.
  chmod 711 "$BASE"
  if is_root && ! runuser -u postgres -- test -x "$BASE"; then
    rmdir "$BASE"
    BASE=$(mktemp -d /tmp/abacus-servers.XXXXXX)
    chmod 711 "$BASE"
  fi
  : >"$BASE/$STATE_NAME"
  STARTED=1
  start_postgres "$bin"
  log "PostgreSQL ready on 127.0.0.1:$PG_PORT ($((SECONDS - t0))s)"
  start_redis_single
  start_redis_cluster
  log "Redis and Redis Cluster ready ($((SECONDS - t0))s)"
  start_memcached
  local tmp="$envfile.tmp.$$"
  {
    echo "# Written by scripts/servers.sh start; stop with: scripts/servers.sh stop $envfile"
    printf 'export ABACUS_TEST_POSTGRES=%s\n' "$(shq "postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable")"
    printf 'export ABACUS_TEST_PG_BIN=%s\n' "$(shq "$bin")"
    printf 'export ABACUS_TEST_REDIS=%s\n' "$(shq "127.0.0.1:$REDIS_PORT")"
    printf 'export ABACUS_TEST_REDIS_CLUSTER=%s\n' "$(shq "$CLUSTER_ADDRS")"
    printf 'export ABACUS_TEST_MEMCACHED=%s\n' "$(shq "127.0.0.1:$MEMCACHED_PORT")"
    printf 'export ABACUS_REQUIRE_SERVERS=1\n'
    printf 'export ABACUS_TEST_SERVERS_DIR=%s\n' "$(shq "$BASE")"
    echo "# What stop reads (also in \$ABACUS_TEST_SERVERS_DIR/$STATE_NAME):"
    sed 's/^/# /' "$BASE/$STATE_NAME"
  } >"$tmp"
  mv -f "$tmp" "$envfile"
  STARTED=0
  log "started in $((SECONDS - t0))s (dir $BASE): postgres 127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT, cluster $CLUSTER_ADDRS, memcached 127.0.0.1:$MEMCACHED_PORT"
}

# On a failed or interrupted start: stop what was started.
on_start_exit() {
  local rc=$?
  if [ "${STARTED:-0}" = 1 ] && [ -n "${BASE:-}" ]; then
    log "start failed; stopping what was started"
    stop_dir "$BASE" || true
    [ $rc -ne 0 ] || rc=1
  fi
  exit $rc
}

cmd_stop() {
  local envfile=$1 dir
  if [ ! -f "$envfile" ]; then
    log "no $envfile: nothing to stop"
    return 0
  fi
  dir=$(
    ABACUS_TEST_SERVERS_DIR=""
    # shellcheck disable=SC1090 # written by start
    . "$envfile" >/dev/null 2>&1 || true
    printf '%s' "$ABACUS_TEST_SERVERS_DIR"
  )
  if [ -z "$dir" ]; then
    log "$envfile names no ABACUS_TEST_SERVERS_DIR: nothing to stop"
    return 0
  fi
  local t0=$SECONDS
  stop_dir "$dir"
  log "stopped in $((SECONDS - t0))s (dir $dir)"
}

[ $# -eq 2 ] || usage
case $1 in
  start)
    trap on_start_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cmd_start "$2"
    ;;
  stop)
    # Finish stopping even when interrupted.
    trap '' INT
    cmd_stop "$2"
    ;;
  *) usage ;;
esac
