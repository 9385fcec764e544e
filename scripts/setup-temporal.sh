#!/bin/sh
# Makes sure the Temporal CLI (dev server + Web UI) is available, building it once with Go into a
# cache outside the repository. Nothing to do when TEMPORAL_ADDRESS points at a running server, or
# when `temporal` is already on PATH or in the cache.
set -eu
version=v1.5.1   # the newest tag without `replace` lines in go.mod, which `go install` refuses
cache="${XDG_CACHE_HOME:-$HOME/.cache}/smsgw/bin"

if [ -n "${TEMPORAL_ADDRESS:-}" ]; then exit 0; fi
if [ -n "${TEMPORAL_CLI:-}" ] && [ -x "$TEMPORAL_CLI" ]; then exit 0; fi
if command -v temporal >/dev/null 2>&1 || [ -x "$cache/temporal" ]; then exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "setup-temporal: the Temporal CLI is missing and Go is not installed to build it." >&2
  echo "Install the temporal CLI (https://docs.temporal.io/cli) or set TEMPORAL_ADDRESS." >&2
  exit 1
fi
echo "setup-temporal: building the Temporal CLI $version into $cache (once; a few minutes)" >&2
mkdir -p "$cache"
GOBIN="$cache" go install "github.com/temporalio/cli/cmd/temporal@$version"
