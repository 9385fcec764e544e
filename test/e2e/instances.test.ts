import { type ChildProcess, spawn } from "node:child_process";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { defaultBehaviour, SimulatedGateway } from "../../src/simulator/simulated-gateway.js";
import { defaultSmsGateBehaviour, SmsGatePhone } from "../../src/simulator/smsgate-phone.js";
import {
  childEnv,
  clientKey,
  eventually,
  fastMessages,
  freePort,
  isolate,
  registeredGateway,
  rest,
  simulatedGateway,
  startServer,
  unique,
  untilUp,
} from "../helpers.js";

/** Two instances on one task queue, with no gateway left from an earlier test; both stopped after `work`. */
async function twoInstances(work: (a: Running, b: Running) => Promise<void>): Promise<void> {
  const queue = unique("shared-queue");
  const a = await startServer({ ...fastMessages, TEMPORAL_TASK_QUEUE: queue }, { worker: true });
  const b = await startServer({ ...fastMessages, TEMPORAL_TASK_QUEUE: queue }, { worker: true });
  try {
    await isolate(a);
    await work(a, b);
  } finally {
    await b.stop();
    await a.stop();
  }
}

type Running = Awaited<ReturnType<typeof startServer>>;

describe("several server instances", () => {
  it("delivers a message sent through one instance to a phone connected to another", async () => {
    await twoInstances(async (a, b) => {
      const phone = await simulatedGateway(a);
      const key = await clientKey(b);
      const sent = await rest(b, "POST", "/api/v1/sms/send", { key, body: { to: "+14155552671", message: "across" } });
      const messageId = (sent.body as { message_id: string }).message_id;
      await eventually(
        async () => {
          const status = await rest(b, "GET", `/api/v1/sms/status/${messageId}`, { key });
          return (status.body as { status: string }).status === "delivered" ? true : undefined;
        },
        20_000,
        "delivery across instances",
      );
      expect(phone.commands.map((command) => command.messageId)).toEqual([messageId]);
      await phone.disconnect();
    });
  });

  it("sends a message through the phone its own instance holds, when another instance holds an equal one", async () => {
    await twoInstances(async (a, b) => {
      const onA = await simulatedGateway(a);
      const onB = await simulatedGateway(b);
      const key = await clientKey(a);
      // One at a time, so that the two phones stay equals (no message in flight on either).
      const sendThrough = async (server: typeof a, message: string) => {
        const sent = await rest(server, "POST", "/api/v1/sms/send", { key, body: { to: "+14155552671", message } });
        const messageId = (sent.body as { message_id: string }).message_id;
        await eventually(async () => {
          const status = await rest(server, "GET", `/api/v1/sms/status/${messageId}`, { key });
          return (status.body as { status: string }).status === "delivered" ? true : undefined;
        });
        return messageId;
      };
      const viaA = [];
      const viaB = [];
      for (let i = 0; i < 4; i++) viaA.push(await sendThrough(a, `through a ${i}`));
      for (let i = 0; i < 4; i++) viaB.push(await sendThrough(b, `through b ${i}`));
      // Each went out through the instance that accepted it: no push crossed to the other.
      expect(onA.commands.map((command) => command.messageId)).toEqual(viaA);
      expect(onB.commands.map((command) => command.messageId)).toEqual(viaB);
      await onA.disconnect();
      await onB.disconnect();
    });
  });

  it("tells a phone running the SMSGate app on one instance of a message sent, and cancelled, through another", async () => {
    const queue = unique("shared-queue");
    const a = await startServer({ ...fastMessages, TEMPORAL_TASK_QUEUE: queue }, { worker: true });
    const b = await startServer({ ...fastMessages, TEMPORAL_TASK_QUEUE: queue }, { worker: true });
    try {
      await isolate(a);
      const token = (await a.deps.keys.create({ scope: "registration", name: unique("phones") })).key;
      const phone = new SmsGatePhone(`${a.url}/api/mobile/v1`, token, { ...defaultSmsGateBehaviour });
      await phone.start();
      const key = await clientKey(b);
      const send = async (message: string) => {
        const sent = await rest(b, "POST", "/api/v1/sms/send", { key, body: { to: "+14155552671", message } });
        return (sent.body as { message_id: string }).message_id;
      };
      const delivered = await send("across");
      await eventually(
        async () => {
          const status = await rest(b, "GET", `/api/v1/sms/status/${delivered}`, { key });
          return (status.body as { status: string }).status === "delivered" ? true : undefined;
        },
        20_000,
        "delivery across instances",
      );
      expect([...phone.messages.keys()]).toEqual([delivered]);
      // Its events stream is on A; the cancel comes through B.
      phone.behaviour.autoReport = false;
      const cancelled = await send("never mind");
      await eventually(async () => (phone.messages.has(cancelled) ? true : undefined), 10_000, "the fetch");
      expect((await rest(b, "POST", `/api/v1/sms/${cancelled}/cancel`, { key })).status).toBe(200);
      await eventually(
        async () => (phone.events.some((event) => event.name === "MessageCancelled") ? true : undefined),
        5_000,
        "MessageCancelled",
      );
      phone.stop();
    } finally {
      await b.stop();
      await a.stop();
    }
  });
});

function startProcess(port: number, queue: string): ChildProcess {
  return spawn("node", ["bin/smsgw.js", "serve"], {
    env: childEnv({
      ...fastMessages,
      MESSAGE_DISPATCH_TIMEOUT_MS: "60000",
      PORT: String(port),
      HOST: "127.0.0.1",
      TEMPORAL_TASK_QUEUE: queue,
    }),
    stdio: "ignore",
  });
}

describe("a server killed mid-flight", () => {
  it("completes the message after a restart, with exactly one delivery", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const queue = unique("restart-queue");
    let child = startProcess(port, queue);
    const server = await startServer();
    try {
      await untilUp(url);
      await isolate(server);
      const gateway = await registeredGateway(server);
      // The phone takes the command but neither acknowledges nor reports it before the server dies.
      const phone = new SimulatedGateway(createGrpcTransport({ baseUrl: url }), gateway.key, gateway.deviceId, {
        ...defaultBehaviour,
        autoReport: false,
        ack: false,
      });
      await phone.connect();
      const key = await clientKey(server);
      const sent = await rest({ url }, "POST", "/api/v1/sms/send", {
        key,
        body: { to: "+14155552671", message: "survive" },
      });
      const messageId = (sent.body as { message_id: string }).message_id;
      await eventually(
        async () => (phone.commands.length > 0 ? true : undefined),
        20_000,
        "the phone to get the command",
      );

      const killed = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await killed;
      child = startProcess(port, queue);
      await untilUp(url);
      await eventually(async () => (phone.tally.connects >= 2 ? true : undefined), 20_000, "the phone to reconnect");
      // The command it never acknowledged is sent again on the new connection.
      await eventually(
        async () => (phone.commands.filter((c) => c.messageId === messageId).length >= 2 ? true : undefined),
        10_000,
        "the command again",
      );
      phone.report(messageId, "sent");
      phone.report(messageId, "delivered");

      await eventually(
        async () => {
          const status = await rest({ url }, "GET", `/api/v1/sms/status/${messageId}`, { key });
          return (status.body as { status: string }).status === "delivered" ? true : undefined;
        },
        30_000,
        "delivery after the restart",
      );
      const events = (await server.deps.events.journalOf(messageId)).map((entry) => entry.payload);
      expect(events.map((event) => event.event)).toEqual(["sms_sent", "sms_delivered"]);
      const row = (await server.deps.gateways.list()).find((g) => g.id === gateway.id);
      expect(row?.totalMessagesSent).toBe(1);
      await phone.disconnect();
    } finally {
      child.kill("SIGTERM");
      await server.stop();
    }
  }, 90_000);
});

describe("smsgw simulate-gateway", () => {
  it("connects simulated phones that deliver what the server sends, and prints a summary", async () => {
    const server = await startServer(fastMessages, { worker: true });
    try {
      await isolate(server);
      const child = spawn(
        "node",
        [
          "bin/smsgw.js",
          "simulate-gateway",
          "--url",
          server.url,
          "--count",
          "2",
          "--latency-ms",
          "10",
          "--success-rate",
          "1",
          "--duration-seconds",
          "6",
        ],
        {
          env: childEnv(),
        },
      );
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString("utf8");
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      await eventually(
        async () => (output.includes("2 simulated gateway(s) connected") ? true : undefined),
        20_000,
        "the phones to connect",
      );
      const key = await clientKey(server);
      const sent = await rest(server, "POST", "/api/v1/sms/send", {
        key,
        body: { to: "+14155552671", message: "simulated" },
      });
      const messageId = (sent.body as { message_id: string }).message_id;
      await eventually(
        async () => (output.includes(`${messageId} to +14155552671: delivered`) ? true : undefined),
        20_000,
        "the delivery line",
      );
      expect(await exited).toBe(0);
      expect(output).toMatch(
        /summary: 2 gateways, 1 commands, 1 delivered, 0 failed, 0 connection drops, 0 repeated commands/,
      );
    } finally {
      await server.stop();
    }
  }, 60_000);
});
