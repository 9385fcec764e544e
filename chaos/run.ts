// npm run chaos [-- SCENARIO ...]: runs the chaos scenarios (all of them by default) one after the
// other, each against its own PostgreSQL, Redis and Temporal, and prints one table. Exits 1 when any
// scenario broke a promise (a message given to two phones, a report lost, one left stuck, a 500).
import {
  clusterOnly,
  phoneLatencyMs,
  runScenario,
  type ScenarioName,
  type ScenarioResult,
  scenarioNames,
  violations,
} from "./scenario.js";

const columns: [string, (result: ScenarioResult) => string | number][] = [
  ["scenario", (r) => r.name],
  ["sends", (r) => r.sends],
  ["requests", (r) => r.requests],
  ["accepted", (r) => r.accepted],
  ["in flight at failure", (r) => r.inFlight],
  ["delivered", (r) => r.delivered],
  ["failed", (r) => r.failed],
  ["mixed up", (r) => r.mixedUp],
  ["stuck", (r) => r.stuck],
  ["sent twice", (r) => r.sentTwice],
  ["to another after ack", (r) => r.givenToAnother],
  ["again after ack", (r) => r.repeatedAfterAck],
  ["report lost", (r) => r.reportedNotRecorded],
  ["miscounted", (r) => r.miscounted],
  ["5xx (not 503)", (r) => r.serverErrors],
  ["503", (r) => r.unavailable],
  ["no answer", (r) => r.noAnswer],
  ["first 202 after", (r) => (r.firstAcceptMs === null ? "-" : `${(r.firstAcceptMs / 1000).toFixed(1)} s`)],
  ["all ended after", (r) => (r.recoveryMs === null ? "never" : `${(r.recoveryMs / 1000).toFixed(1)} s`)],
];

/** The results as a Markdown table. */
export function table(results: ScenarioResult[]): string {
  const head = `| ${columns.map(([name]) => name).join(" | ")} |`;
  const rule = `| ${columns.map(() => "---").join(" | ")} |`;
  const rows = results.map((result) => `| ${columns.map(([, cell]) => String(cell(result))).join(" | ")} |`);
  return [head, rule, ...rows].join("\n");
}

async function main(): Promise<void> {
  const cluster = process.argv.includes("--cluster");
  const asked = process.argv.slice(2).filter((arg) => arg !== "--cluster");
  const unknown = asked.filter((name) => !(scenarioNames as readonly string[]).includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(", ")}; known: ${scenarioNames.join(", ")}\n`);
    process.exit(2);
  }
  const chosen = (
    asked.length > 0 ? asked : scenarioNames.filter((name) => cluster || !clusterOnly.includes(name))
  ) as ScenarioName[];
  if (!cluster && chosen.some((name) => clusterOnly.includes(name))) {
    process.stderr.write(`${clusterOnly.join(" and ")} need --cluster (Temporal's own server)\n`);
    process.exit(2);
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const results: ScenarioResult[] = [];
  for (const name of chosen) {
    const result = await runScenario(name, {
      log,
      legacyPhones: process.env.CHAOS_PHONES === "legacy",
      smsGatePhones: Number(process.env.CHAOS_SMSGATE_PHONES ?? 1),
      cluster,
    });
    results.push(result);
    const broken = violations(result);
    log(
      `${name}: ${result.failure}; ${result.seconds} s; ${broken.length === 0 ? "held" : `BROKEN: ${broken.join(", ")} (logs in ${result.logs})`}`,
    );
  }
  process.stdout.write(
    `\n500 REST sends at 50/s, each with its own idempotency key, sent again after no answer or a 503; 3 simulated phones on the gRPC stream (acknowledge, send on the receipt, report ` +
      `${phoneLatencyMs} ms later, keep unanswered frames and send them again) and ${process.env.CHAOS_SMSGATE_PHONES ?? 1} speaking the SMSGate app's protocol (send what they fetch, report Processed, Sent, Delivered ${phoneLatencyMs} ms later, again until answered), failure injected 4 s into the burst; Temporal: ${cluster ? "its own server 1.29.1 (four services as four processes, 4 history shards, on a PostgreSQL of its own with SQL visibility)" : "the dev server (file-backed SQLite)"}\n\n`,
  );
  for (const result of results) process.stdout.write(`- ${result.name}: ${result.failure}\n`);
  process.stdout.write(`\n${table(results)}\n`);
  const failed = results.filter((result) => violations(result).length > 0);
  process.stdout.write(
    failed.length === 0 ? "\nevery promise held\n" : `\nbroken in: ${failed.map((r) => r.name).join(", ")}\n`,
  );
  process.exit(failed.length === 0 ? 0 : 1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
