import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { GatewayService } from "../../gen/smsgw/v1/gateway_pb.js";
import { randomToken } from "../shared/ids.js";
import { defaultBehaviour, SimulatedGateway } from "./simulated-gateway.js";

function fraction(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!(number >= 0 && number <= 1)) throw new Error(`${name} must be from 0 to 1`);
  return number;
}

function whole(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new Error(`${name} must be a whole number`);
  return number;
}

/**
 * `smsgw simulate-gateway`: registers N simulated phones and connects them over the real stream,
 * printing each command and outcome, and a summary when stopped (Ctrl-C or --duration-seconds).
 */
export async function simulateGateway(args: string[], defaultUrl: string): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: "string" },
      count: { type: "string" },
      key: { type: "string", multiple: true },
      "success-rate": { type: "string" },
      "latency-ms": { type: "string" },
      "drop-probability": { type: "string" },
      "duration-seconds": { type: "string" },
      quiet: { type: "boolean" },
    },
  });
  const url = values.url ?? defaultUrl;
  const behaviour = {
    ...defaultBehaviour,
    successRate: fraction(values["success-rate"], "--success-rate", 0.95),
    sendLatencyMs: whole(values["latency-ms"], "--latency-ms", 500),
    dropProbability: fraction(values["drop-probability"], "--drop-probability", 0),
  };
  const log = values.quiet
    ? () => undefined
    : (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const transport = createGrpcTransport({ baseUrl: url });
  const gateways = createClient(GatewayService, transport);

  const phones: SimulatedGateway[] = [];
  for (const key of values.key ?? [])
    phones.push(new SimulatedGateway(transport, key, `key…${key.slice(-4)}`, behaviour, log));
  const count = whole(values.count, "--count", values.key ? 0 : 1);
  const run = randomToken(6);
  for (let i = 1; i <= count; i++) {
    const deviceId = `sim-${run}-${i}`;
    const registered = await gateways.register({ deviceId, name: `Simulated phone ${i}` });
    phones.push(new SimulatedGateway(transport, registered.apiKey, deviceId, behaviour, log));
  }
  await Promise.all(phones.map((phone) => phone.connect()));
  log(
    `${phones.length} simulated gateway(s) connected to ${url} (success rate ${behaviour.successRate}, latency ${behaviour.sendLatencyMs} ms, drop probability ${behaviour.dropProbability})`,
  );

  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
    const duration = whole(values["duration-seconds"], "--duration-seconds", 0);
    if (duration > 0) setTimeout(resolve, duration * 1000).unref();
  });
  await Promise.all(phones.map((phone) => phone.disconnect()));
  const total = phones.reduce(
    (sum, phone) => ({
      commands: sum.commands + phone.tally.commands,
      delivered: sum.delivered + phone.tally.delivered,
      failed: sum.failed + phone.tally.failed,
      drops: sum.drops + phone.tally.drops,
      duplicates: sum.duplicates + phone.tally.duplicates,
    }),
    { commands: 0, delivered: 0, failed: 0, drops: 0, duplicates: 0 },
  );
  process.stdout.write(
    `summary: ${phones.length} gateways, ${total.commands} commands, ${total.delivered} delivered, ${total.failed} failed, ` +
      `${total.drops} connection drops, ${total.duplicates} repeated commands\n`,
  );
}
