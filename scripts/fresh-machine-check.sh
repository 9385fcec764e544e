#!/usr/bin/env bash
# Proves the README's two commands on a "machine with Node only": a fresh clone of this repository,
# `npm ci`, then `npm start` and the README's first steps (seed, register a phone, send, delivered)
# inside a network namespace of its own, where nothing answers on the machine's PostgreSQL or Redis
# (its loopback is its own) and no network is reachable, with a HOME of its own (no Temporal CLI
# cache, no Go module cache but the one named below). Then Ctrl-C and a second start: the message,
# the key and the phone are still there. Prints the time to the first 200 on /up of each start.
#
# The namespace has no network, so the Temporal CLI is fetched into the fresh HOME beforehand, the way
# the first start fetches it (src/temporal/dev-server.ts: the SDK's download, else a build with Go);
# where Temporal's download site cannot be reached (as on these machines) that is the Go build, from
# this machine's Go module and build caches (FRESH_GO_CACHES=0: from the module proxy, a few minutes).
# Needs root (unshare -n), git, Node and, for the Go fallback, Go. Usage: scripts/fresh-machine-check.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/smsgw-fresh-XXXXXX")
chmod 755 "$work"
# This machine's Go caches, read before HOME changes (Go finds them under HOME).
if command -v go >/dev/null 2>&1 && [ "${FRESH_GO_CACHES:-1}" = 1 ]; then
  go_caches=("GOMODCACHE=$(go env GOMODCACHE)" "GOCACHE=$(go env GOCACHE)")
else
  go_caches=()
fi
export HOME="$work/home"
mkdir -p "$HOME"
port=3900
say() { printf '\n== %s\n' "$*"; }
seconds() { date +%s.%N; }
elapsed() { printf '%.1f' "$(echo "$(seconds) - $1" | bc)"; }

say "fresh clone of $(git -C "$repo" rev-parse --short HEAD) into $work/smsgw; HOME=$HOME"
git clone -q "$repo" "$work/smsgw"
cd "$work/smsgw"

say "npm ci"
t=$(seconds)
npm ci --no-audit --no-fund --loglevel=error >/dev/null
echo "npm ci: $(elapsed "$t") s"

say "the Temporal CLI, fetched into the fresh HOME as the first start does (the namespace below has no network)"
t=$(seconds)
env "${go_caches[@]}" node --import tsx --input-type=module -e "
  import { pino } from 'pino';
  import { loadConfig } from './src/config.ts';
  import { devServerSetup, obtainTemporalCli } from './src/temporal/dev-server.ts';
  const setup = devServerSetup(loadConfig());
  console.log(await obtainTemporalCli({ ...setup, logger: pino({ level: 'info' }) }));
"
echo "Temporal CLI: $(elapsed "$t") s"

say "inside a network namespace of its own: npm start, the first steps, Ctrl-C, npm start again"
export PORT=$port LOG_FORMAT=json
unshare -n bash -euo pipefail -c '
  ip link set lo up
  port='"$port"'
  seconds() { date +%s.%N; }
  elapsed() { printf "%.1f" "$(echo "$(seconds) - $1" | bc)"; }
  for service in 5432 6379; do
    if (echo > "/dev/tcp/127.0.0.1/$service") 2>/dev/null; then echo "something answers on $service here" >&2; exit 1; fi
  done
  echo "nothing answers on 127.0.0.1:5432 or :6379; no network but loopback"
  start() {
    local t; t=$(seconds)
    npm start > "$1" 2>&1 &
    server=$!
    until curl -sf -o /dev/null "localhost:$port/up"; do
      kill -0 "$server" 2>/dev/null || { echo "npm start exited:" >&2; tail -n 20 "$1" >&2; exit 1; }
      sleep 0.1
    done
    echo "$2: first 200 on /up after $(elapsed "$t") s: $(curl -s "localhost:$port/up")"
  }
  stop() {
    # A script'"'"'s background jobs ignore SIGINT, so the server gets SIGTERM, which it handles as it
    # handles Ctrl-C'"'"'s SIGINT (the same drain and stop, src/main.ts).
    for pid in $(pgrep -f "^node .*bin/smsgw.js serve"); do
      if [ "$(readlink "/proc/$pid/cwd")" = "$PWD" ]; then kill -TERM "$pid"; fi
    done
    wait "$server" || true
    if pgrep -f "postgres -D $PWD/.data/pg" >/dev/null; then echo "the embedded PostgreSQL outlived the server" >&2; exit 1; fi
    echo "Ctrl-C: the server and its PostgreSQL and Temporal stopped"
  }

  start ../start-1.log "first npm start"
  key=$(npx smsgw seed 2>/dev/null)
  echo "seed: ${key:0:12}…"
  registered=$(curl -s -X POST "localhost:$port/api/v1/gateway/register" -H "content-type: application/json" \
    -d "{\"device_id\": \"pixel-7\", \"name\": \"Office phone\"}")
  phone=$(echo "$registered" | sed -n "s/.*\"api_key\":\"\([^\"]*\)\".*/\1/p")
  echo "register: ${phone:0:12}…"
  npx smsgw simulate-gateway --url "http://127.0.0.1:$port" --key "$phone" --duration-seconds 60 --quiet > ../phone.log 2>&1 &
  simulator=$!
  sleep 3
  sent=$(curl -s -X POST "localhost:$port/api/v1/sms/send" -H "Authorization: Bearer $key" \
    -H "content-type: application/json" -d "{\"to\": \"+14155552671\", \"message\": \"Hello from a fresh machine\"}")
  id=$(echo "$sent" | sed -n "s/.*\"message_id\":\"\([^\"]*\)\".*/\1/p")
  echo "send: $sent"
  status=""
  for _ in $(seq 1 100); do
    status=$(curl -s "localhost:$port/api/v1/sms/status/$id" -H "Authorization: Bearer $key")
    case "$status" in *\"delivered\"*) break ;; esac
    sleep 0.1
  done
  echo "status: $status"
  case "$status" in *\"delivered\"*) ;; *) echo "the message was not delivered" >&2; exit 1 ;; esac
  kill "$simulator" 2>/dev/null || true
  stop

  start ../start-2.log "second npm start"
  again=$(curl -s "localhost:$port/api/v1/sms/status/$id" -H "Authorization: Bearer $key")
  gateways=$(curl -s "localhost:$port/api/v1/admin/gateways" -H "Authorization: Bearer $key")
  case "$again" in *\"delivered\"*) echo "after the restart: $id still delivered, the key still signs in" ;; *) echo "lost: $again" >&2; exit 1 ;; esac
  case "$gateways" in *pixel-7*) echo "after the restart: the phone pixel-7 is still registered" ;; *) echo "lost the phone: $gateways" >&2; exit 1 ;; esac
  stop
'
say "passed; logs in $work (start-1.log, start-2.log, phone.log)"
