#!/usr/bin/env bash
# The project's test command (see README): every unit, integration, fuzz-seed and
# process-level test, with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -race -timeout 20m -count=1 ./... "$@"
