#!/bin/sh
# npm run test:cluster: the core end-to-end tests (send → phone → delivered, failover between phones,
# OTP, webhooks, the maintenance schedules' workflows, several instances, exactly-once) against
# Temporal's own server as `npm run cluster` runs it (started when it is not running), instead of
# the dev server. Not part of `npm test`: building Temporal's server takes minutes once.
set -eu
cd "$(dirname "$0")/.."
npm run -s cluster
export TEMPORAL_ADDRESS="127.0.0.1:${CLUSTER_TEMPORAL_PORT:-7333}"
exec npx vitest run \
  test/e2e/outbound.test.ts \
  test/e2e/otp.test.ts \
  test/e2e/webhooks.test.ts \
  test/e2e/maintenance.test.ts \
  test/e2e/instances.test.ts \
  test/e2e/exactly-once.test.ts \
  test/e2e/action-cable.test.ts \
  test/workflows/gateway-health.test.ts \
  "$@"
