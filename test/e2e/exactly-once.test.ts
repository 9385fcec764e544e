import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ConnectRequest,
  ConnectRequestSchema,
  type ConnectResponse,
  GatewayService,
} from "../../gen/smsgw/v1/gateway_pb.js";
import {
  clientKey,
  eventually,
  fastMessages,
  isolate,
  phoneRack,
  registeredGateway,
  rest,
  startServer,
} from "../helpers.js";

/**
 * Exactly once between the server and its phones: receipts for what a device reports, deduplicated
 * on its report id; an acknowledged message stays with its phone; a step run again does not pick a
 * second gateway. (Crashes and outages with real processes: `npm run chaos`, and test/chaos.test.ts.)
 */
let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
const phones = phoneRack(() => server);

beforeAll(async () => {
  server = await startServer(
    // A phone that acknowledged and then stays silent keeps its message 1.5 s, then it goes elsewhere.
    { ...fastMessages, MESSAGE_DISPATCH_TIMEOUT_MS: "1000", MESSAGE_RESEND_UNREPORTED_AFTER_MS: "1500" },
    { worker: true },
  );
  key = await clientKey(server);
});
afterEach(async () => {
  await phones.disconnectAll();
  await isolate(server);
});
afterAll(async () => server.stop());

const sql = <T>(query: string, params: unknown[] = []): Promise<T[]> =>
  server.deps.orm.em.getConnection().execute(query, params);

async function send(body: Record<string, unknown>): Promise<string> {
  const res = await rest(server, "POST", "/api/v1/sms/send", { key, body });
  expect(res.status).toBe(202);
  return (res.body as { message_id: string }).message_id;
}

async function statusOf(messageId: string): Promise<string> {
  return ((await rest(server, "GET", `/api/v1/sms/status/${messageId}`, { key })).body as { status: string }).status;
}

/** A raw device stream: frames written by the test, every server frame collected. */
function rawStream(gatewayKey: string) {
  const frames: ConnectRequest[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  const requests: AsyncIterable<ConnectRequest> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = frames.shift();
        if (next !== undefined) yield next;
        else if (closed) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
  const received: ConnectResponse[] = [];
  const abort = new AbortController();
  const client = createClient(GatewayService, createGrpcTransport({ baseUrl: server.url }));
  const reading = (async () => {
    try {
      for await (const response of client.connect(requests, {
        headers: { authorization: `Bearer ${gatewayKey}` },
        signal: abort.signal,
      })) {
        received.push(response);
      }
    } catch {
      // Closed by the test.
    }
  })();
  return {
    received,
    write(frame: MessageInitShape<typeof ConnectRequestSchema>["frame"]) {
      frames.push(create(ConnectRequestSchema, { frame }));
      wake?.();
    },
    receipts: () => received.flatMap((r) => (r.frame.case === "receipt" ? [r.frame.value] : [])),
    async close() {
      closed = true;
      wake?.();
      abort.abort();
      await reading;
    },
  };
}

describe("receipts on the device stream", () => {
  it("answers each report id once it is recorded, and stores a received SMS once however often it comes", async () => {
    const gateway = await registeredGateway(server);
    const stream = rawStream(gateway.key);
    const sms = { sender: "+14155550123", message: "twice over a flaky link", reportId: "inbox-1" };
    stream.write({ case: "messageReceived", value: sms });
    stream.write({ case: "messageReceived", value: sms });
    await eventually(async () => (stream.receipts().length === 2 ? true : undefined), 10_000, "two receipts");
    expect(stream.receipts().map((r) => ({ reportId: r.reportId, error: r.error }))).toEqual([
      { reportId: "inbox-1", error: undefined },
      { reportId: "inbox-1", error: undefined },
    ]);
    const stored = await sql<{ count: number }>(
      "select count(*)::int as count from inbound_messages where gateway_id = ?",
      [gateway.id],
    );
    expect(stored[0]?.count).toBe(1);
    await stream.close();
  });

  it("refuses for good, with the reason, what sending again cannot fix, and keeps the stream", async () => {
    const gateway = await registeredGateway(server);
    const stream = rawStream(gateway.key);
    stream.write({
      case: "deliveryReport",
      value: { messageId: "msg_nosuchmessage", status: "delivered", reportId: "r-unknown" },
    });
    stream.write({ case: "ack", value: { messageId: "msg_nosuchmessage", reportId: "a-unknown" } });
    await eventually(async () => (stream.receipts().length === 2 ? true : undefined), 10_000, "the receipts");
    expect(stream.receipts()).toEqual([
      expect.objectContaining({ reportId: "r-unknown", error: "Message not found" }),
      expect.objectContaining({ reportId: "a-unknown", error: "Message not found" }),
    ]);
    await stream.close();
  });

  it("tells a phone whose acknowledgement comes after its message went elsewhere not to send it", async () => {
    const slow = await phones.connect({ ack: false, autoReport: false });
    const messageId = await send({ to: "+14155552671", message: "too slow", gateway_id: slow.deviceId });
    await eventually(async () => (slow.commands.length > 0 ? true : undefined), 10_000, "the command");
    // No acknowledgement within the dispatch timeout: it goes to another phone.
    const other = await phones.connect();
    await eventually(async () => ((await statusOf(messageId)) === "delivered" ? true : undefined), 20_000, "delivery");
    const late = rawStream(slow.apiKey);
    late.write({ case: "ack", value: { messageId, reportId: "late-ack" } });
    await eventually(async () => (late.receipts().length > 0 ? true : undefined), 10_000, "the receipt");
    expect(late.receipts()[0]?.error).toBe("This message is delivered: do not send it");
    expect(other.tally.sent).toBe(1);
    await late.close();
  });
});

describe("a message its phone acknowledged", () => {
  it("goes to another phone only after the opted-in resend timeout when its phone stays silent", async () => {
    const silent = await phones.connect({ autoReport: false });
    const messageId = await send({ to: "+14155552671", message: "silent", gateway_id: silent.deviceId });
    await eventually(async () => (silent.tally.sent === 1 ? true : undefined), 10_000, "the receipt");
    await phones.connect();
    await eventually(async () => ((await statusOf(messageId)) === "delivered" ? true : undefined), 20_000, "delivery");
    const attempts = await sql<{ gateway_id: number; outcome: string; error: string | null }>(
      "select gateway_id, outcome, error from message_attempts where message_id = ? order by attempt",
      [messageId],
    );
    expect(attempts[0]).toEqual({
      gateway_id: silent.id,
      outcome: "unreported",
      error: "the gateway acknowledged the message but did not report on it",
    });
    expect(attempts[1]?.outcome).toBe("sent");
  });

  it("is carried on, not given to a second gateway, when the step that dispatched it runs again", async () => {
    const first = await phones.connect({ autoReport: false });
    const messageId = await send({ to: "+14155552671", message: "run twice", gateway_id: first.deviceId });
    await eventually(async () => (first.tally.sent === 1 ? true : undefined), 10_000, "the receipt");
    await phones.connect();
    // What a worker that crashed after the dispatch would do when its step is run again.
    const again = await server.deps.lifecycle.startAttempt(
      {
        messageId,
        attempt: 1,
        preferredGatewayId: null,
        triedGatewayIds: [],
        recipient: "+14155552671",
        body: "run twice",
        sealed: false,
      },
      async () => true,
    );
    expect(again).toMatchObject({ kind: "dispatched", attempt: 1, gatewayId: first.id, deviceId: first.deviceId });
    const attempts = await sql<{ gateway_id: number }>("select gateway_id from message_attempts where message_id = ?", [
      messageId,
    ]);
    expect(attempts.map((row) => row.gateway_id)).toEqual([first.id]);
    first.report(messageId, "delivered");
    await eventually(async () => ((await statusOf(messageId)) === "delivered" ? true : undefined), 20_000, "delivery");
  });

  it("is not put back in the queue while its phone holds it, and is once that phone reports a failure", async () => {
    const phone = await phones.connect({ autoReport: false });
    const messageId = await send({ to: "+14155552671", message: "held", gateway_id: phone.deviceId });
    await eventually(async () => (phone.tally.sent === 1 ? true : undefined), 10_000, "the receipt");
    const end = { messageId, gatewayId: phone.id, attempt: 1, outcome: "timeout", error: "no report" };
    const notFetched = { connected: true, holdMs: 60_000 };
    expect(await server.deps.messageRepository.requeue(end, false, notFetched)).toEqual({
      requeued: false,
      status: "dispatched",
      acked: true,
    });
    await server.deps.messageRepository.recordFailureReport(messageId, phone.id, "SIM blocked");
    expect(await server.deps.messageRepository.requeue(end, false, notFetched)).toMatchObject({ requeued: true });
    // Its phone's acknowledgement no longer makes it its own.
    expect(await server.deps.messageRepository.acknowledge(messageId, phone.id)).toEqual({
      held: false,
      status: "queued",
    });
  });
});
