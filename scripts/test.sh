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
