#!/bin/sh
# Builds the test driver of SMSGate's own Go client library (test/clients/smsgate-go, on
# github.com/android-sms-gateway/client-go from the Go module proxy) into the same cache as the
# Temporal CLI, twice: against client-go v1.14.4 (`smsgate-go-client`) and v1.6.0
# (`smsgate-go-client-v1.6`). `go build` reuses its own cache: after the first build this takes a moment.
set -eu
cache="${XDG_CACHE_HOME:-$HOME/.cache}/smsgw/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "setup-smsgate-go-client: Go is not installed; the test of SMSGate's Go client cannot run." >&2
  exit 1
fi
mkdir -p "$cache"
cd "$(dirname "$0")/../test/clients/smsgate-go"
go build -o "$cache/smsgate-go-client" .
go build -modfile=go.v1.6.mod -tags legacy -o "$cache/smsgate-go-client-v1.6" .
