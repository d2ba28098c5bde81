#!/usr/bin/env bash
# Refreshes the dashboard's third-party front-end files under
# ui/assets/vendor/ from the npm registry. They are committed as built,
# like the generated protobuf code, so that `go run ./cmd/abacusd` serves the
# dashboard with no build step; run this only to change their version:
#   scripts/ui-vendor.sh            # uPlot at the version below
#   UPLOT_VERSION=1.6.32 scripts/ui-vendor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=${UPLOT_VERSION:-1.6.32}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null && tar xzf uplot-*.tgz)
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" ui/assets/vendor/
cp "$tmp/package/LICENSE" ui/assets/vendor/uPlot.LICENSE
echo "uPlot $version copied to ui/assets/vendor/"
