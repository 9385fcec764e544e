#!/bin/sh
# What `npm start` and the container run: the build in dist/ made when missing or older than its
# sources, then `smsgw serve` from that build (node alone: no TypeScript compiler or loader thread in
# the process, about 30 MiB less) in a Node process sized for one machine. The server starts what is
# not configured: an embedded PostgreSQL and Redis (src/embedded), the Temporal dev server with its
# CLI found, downloaded or built (src/temporal/dev-server.ts). NODE_ENV=development runs
# the TypeScript sources through tsx instead. V8 grows its heaps (the main one and the workflow thread's) lazily
# up to a quarter of the machine's memory; a cap makes it collect first: live data is well under it
# (about 60 MiB under a 2,000-message burst). glibc's per-thread malloc arenas (the native Temporal
# core runs many threads) are held to two. SMSGW_HEAP_MB, MALLOC_ARENA_MAX and SMSGW_NODE_FLAGS override.
set -eu
cd "$(dirname "$0")/.."
export NODE_ENV="${NODE_ENV:-production}"
if [ "$NODE_ENV" = production ]; then
  node scripts/build-server.mjs
  sources="--input-type=module -e" dir=./dist/src ext=js
else
  # The operator console (/console), built when missing or older than its sources.
  node scripts/build-console.mjs
  sources="--import tsx --input-type=module -e" dir=./src ext=ts
fi
# The heap cap's default is derived from the devices the instance may hold (DEVICE_MAX_CONNECTIONS)
# and two benchmarks' choices, which live in src/tuning.ts with their measurements (heapMbFor).
if [ -z "${SMSGW_HEAP_MB:-}" ]; then
  # shellcheck disable=SC2086 # $sources is a list of flags
  SMSGW_HEAP_MB=$(node $sources "const [{ loadConfig }, { heapMbFor }] = await Promise.all([import('$dir/config.$ext'), import('$dir/tuning.$ext')]); console.log(heapMbFor(loadConfig().devices.maxConnections))")
fi
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
# Each phone holds a connection: open files up to the hard limit (the soft one is often 1,024).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck disable=SC2086 # SMSGW_NODE_FLAGS is a list of flags
exec node --max-old-space-size="$SMSGW_HEAP_MB" --max-semi-space-size=4 ${SMSGW_NODE_FLAGS:-} \
  bin/smsgw.js serve "$@"
