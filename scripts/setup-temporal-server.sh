#!/bin/sh
# Makes sure Temporal's own server and its SQL schema tool are available for `npm run cluster`,
# building them once with Go into the same cache as the Temporal CLI (about 7 minutes on two cores).
# The version is the one docker-compose.yml runs (temporalio/auto-setup).
set -eu
version=v1.29.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/smsgw/bin"

if [ -x "$cache/temporal-server-$version" ] && [ -x "$cache/temporal-sql-tool-$version" ]; then exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup-temporal-server: Go is needed to build Temporal's server $version (https://go.dev/dl)." >&2
  exit 1
fi
echo "setup-temporal-server: building Temporal's server $version into $cache (once; about 7 minutes)" >&2
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
GOBIN="$build" go install "go.temporal.io/server/cmd/server@$version" "go.temporal.io/server/cmd/tools/sql@$version"
mkdir -p "$cache"
mv "$build/server" "$cache/temporal-server-$version"
mv "$build/sql" "$cache/temporal-sql-tool-$version"
