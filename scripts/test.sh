#!/usr/bin/env bash
# The project's test command (see README): every unit, integration, fuzz-seed and
# process-level test, with the race detector.
#
# It first starts the servers the shared-backend tests use (PostgreSQL, Redis,
# a 3-node Redis Cluster, memcached: scripts/servers.sh, which installs them
# with apt-get when missing), exports their addresses (ABACUS_TEST_*), and stops
# them when the tests end, pass, fail or are interrupted. Arguments are passed
# to go test (e.g. ./scripts/test.sh -run TestX).
#
# With ABACUS_TEST_SERVERS_RUNNING=1 it starts nothing and uses the ABACUS_TEST_*
# already exported, e.g.:
#   scripts/servers.sh start /tmp/abacus.env && . /tmp/abacus.env
#   ABACUS_TEST_SERVERS_RUNNING=1 ./scripts/test.sh
#   scripts/servers.sh stop /tmp/abacus.env
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's browser tests (e2e/ui_test.go) drive Debian's chromium,
# and the test of `abacus top` runs it in tmux: install them when missing,
# as scripts/servers.sh installs the servers (as root, with apt-get).
# Elsewhere those tests skip, except on CI (CI set), where they fail
# without them.
ensure_browser() {
  local missing=()
  # fonts-liberation (recommended by chromium, so not pulled in with
  # --no-install-recommends) gives the screenshots readable text.
  command -v chromium >/dev/null || missing+=(chromium fonts-liberation)
  command -v tmux >/dev/null || missing+=(tmux)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "== missing ${missing[*]} (Debian: apt-get install ${missing[*]}); the dashboard's browser and tmux tests skip"
    return 0
  fi
  echo "== installing ${missing[*]} with apt-get (the dashboard's browser and tmux tests)"
  local aptlog opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  aptlog=$(mktemp "${TMPDIR:-/tmp}/abacus-browser-apt.XXXXXX")
  if ! (
    export DEBIAN_FRONTEND=noninteractive
    flock -w 900 9 || exit 1
    apt-get install "${opts[@]}" "${missing[@]}" >>"$aptlog" 2>&1 ||
      { apt-get update -q >>"$aptlog" 2>&1 && apt-get install "${opts[@]}" "${missing[@]}" >>"$aptlog" 2>&1; }
  ) 9>"${TMPDIR:-/tmp}/abacus-servers-apt.lock"; then
    tail -n 25 "$aptlog" >&2
    rm -f "$aptlog"
    echo "apt-get install ${missing[*]} failed" >&2
    exit 1
  fi
  rm -f "$aptlog"
}
ensure_browser

if [ "${ABACUS_TEST_SERVERS_RUNNING:-}" != 1 ]; then
  envfile=$(mktemp "${TMPDIR:-/tmp}/abacus-test-env.XXXXXX")
  # shellcheck disable=SC2317 # called by the EXIT trap
  stop_servers() {
    bash scripts/servers.sh stop "$envfile" || true
    rm -f "$envfile"
  }
  trap stop_servers EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  echo "== starting test servers (scripts/servers.sh)"
  bash scripts/servers.sh start "$envfile"
  # shellcheck disable=SC1090 # written by servers.sh
  . "$envfile"
fi

status=0
go test -race -timeout 20m -count=1 ./... "$@" || status=$?
exit "$status"
