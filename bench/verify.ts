// Benchmark of OTP verification through the REST door of the real server: throughput and latency
// percentiles for a mix of right and wrong codes. Prints its figures and conditions. Not a test:
// run it with `npm run bench:verify` (options as environment variables).
import { benchServer, latencyLine, machine, rssSampler } from "./harness.js";

const codes = Number(process.env.BENCH_CODES ?? 500);
const verifies = Number(process.env.BENCH_VERIFIES ?? 5000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);

async function main(): Promise<void> {
  // The API alone: verification reads and writes the database only.
  const server = await benchServer(
    {
      SECRET_KEY_BASE: "bench",
      OTP_MAX_PER_KEY_PER_HOUR: "10000000",
      OTP_MAX_PER_PREFIX_PER_HOUR: "10000000",
      OTP_MAX_PER_PHONE_PER_HOUR: "1000",
      // Every verify below is a wrong code: the limit is raised so that each one is checked in full.
      OTP_MAX_ATTEMPTS: "100",
    },
    { api: true, worker: false, schedules: false },
  );
  const url = server.url;
  const { key, record } = await server.deps.keys.create({ scope: "client", name: "bench" });
  const caller = { keyId: record.id, admin: false };
  const purpose = `bench${Date.now()}`;
  const sent: { phone: string }[] = [];
  for (let i = 0; i < Math.min(codes, 10_000); i++) {
    const phone = `+1206555${String(i).padStart(4, "0")}`;
    await server.deps.otp.send(caller, { phoneNumber: phone, purpose });
    sent.push({ phone });
  }

  const memory = rssSampler();
  const latencies: number[] = [];
  let next = 0;
  let verified = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < verifies) {
        const i = next++;
        const target = sent[i % sent.length];
        const t0 = performance.now();
        const response = await fetch(`${url}/api/v1/otp/verify`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ phone_number: target?.phone, code: "000000", purpose }),
        });
        const body = (await response.json()) as { verified: boolean };
        latencies.push(performance.now() - t0);
        if (response.status !== 200) throw new Error(`verify answered ${response.status}`);
        if (body.verified) verified++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const peakMiB = memory.stop();
  const lines = [
    `bench:verify — ${new Date().toISOString()}`,
    `conditions: ${verifies} verifies of wrong codes spread over ${sent.length} pending codes (each a keyed-hash check and one conditional UPDATE), ${concurrency} concurrent REST clients in the same process as the server, PostgreSQL 15 and Redis 7 on localhost; ${machine()}`,
    `throughput: ${(verifies / seconds).toFixed(0)} verifies/s (${verifies} in ${seconds.toFixed(1)} s, ${verified} verified)`,
    latencyLine("verify (HTTP 200)", latencies),
    `peak RSS:   ${peakMiB} MiB`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  await server.stopAll();
  process.exit(0);
}

await main();
