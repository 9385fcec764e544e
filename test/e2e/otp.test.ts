import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedGateway } from "../../src/simulator/simulated-gateway.js";
import { rfc3339 } from "../fixtures/documented.js";
import { clientKey, eventually, fastMessages, isolate, rest, simulatedGateway, startServer } from "../helpers.js";

let server: Awaited<ReturnType<typeof startServer>>;
let key: string;
let phone: SimulatedGateway;
let nextNumber = 100;

beforeAll(async () => {
  server = await startServer({ ...fastMessages, SECRET_KEY_BASE: "otp-test-secret" }, { worker: true });
  key = await clientKey(server);
  await isolate(server);
  phone = await simulatedGateway(server);
});
afterAll(async () => {
  await phone.disconnect();
  await server.stop();
});

/** A fresh number per test: the per-number limit is 3 an hour. */
const newNumber = () => `+1415555${String(nextNumber++).padStart(4, "0")}`;

async function sendOtp(body: Record<string, unknown>) {
  return (await rest(server, "POST", "/api/v1/otp/send", { key, body })) as {
    status: number;
    headers: Headers;
    body: Record<string, unknown>;
  };
}

async function verify(body: Record<string, unknown>) {
  return (await rest(server, "POST", "/api/v1/otp/verify", { key, body })) as {
    status: number;
    body: Record<string, unknown>;
  };
}

/** The code, read from the SMS the simulated phone was told to send. */
async function codeFrom(messageId: unknown): Promise<string> {
  const command = await eventually(
    async () => phone.commands.find((c) => c.messageId === messageId),
    20_000,
    "the OTP SMS",
  );
  const code = /\b(\d{4,10})\b/.exec(command.message)?.[1];
  if (code === undefined) throw new Error(`no code in "${command.message}"`);
  return code;
}

describe("POST /api/v1/otp/send and /verify", () => {
  it("sends a code the phone receives, which verifies exactly once", async () => {
    const number = newNumber();
    const sent = await sendOtp({ phone_number: number, purpose: "authentication", expiry_minutes: 5 });
    expect(sent.status).toBe(200);
    expect(Object.keys(sent.body)).toEqual(["success", "expires_at", "message_id"]);
    expect(sent.body).toEqual({
      success: true,
      expires_at: expect.stringMatching(rfc3339),
      message_id: expect.stringMatching(/^msg_/),
    });
    const expiresIn = Date.parse(String(sent.body.expires_at)) - Date.now();
    expect(expiresIn).toBeGreaterThan(4 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(5 * 60_000);
    const code = await codeFrom(sent.body.message_id);
    expect(code).toMatch(/^\d{6}$/);
    const command = phone.commands.find((c) => c.messageId === sent.body.message_id);
    expect(command?.message).toBe(`Your authentication code is ${code}. It expires in 5 minutes.`);
    expect(command?.recipient).toBe(number);

    const ok = await verify({ phone_number: number, code });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ success: true, verified: true, error: null, attempts_remaining: null });
    const again = await verify({ phone_number: number, code });
    expect(again).toEqual({
      status: 200,
      headers: expect.anything(),
      body: { success: false, verified: false, error: "Invalid or expired OTP", attempts_remaining: 0 },
    });
    const stored: { code_hash: string }[] = await server.deps.orm.em
      .getConnection()
      .execute("select code_hash from otp_codes where message_id = ?", [sent.body.message_id]);
    expect(stored[0]?.code_hash).not.toContain(code);
  });

  it("counts wrong codes down to 0, after which even the right code fails", async () => {
    const number = newNumber();
    const sent = await sendOtp({ phone_number: number, purpose: "login", code_length: 8 });
    const code = await codeFrom(sent.body.message_id);
    expect(code).toHaveLength(8);
    const wrong = code === "00000000" ? "11111111" : "00000000";
    const remaining: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await verify({ phone_number: number, code: wrong });
      expect(res.body).toMatchObject({ success: false, verified: false, error: "Invalid or expired OTP" });
      remaining.push(res.body.attempts_remaining);
    }
    expect(remaining).toEqual([2, 1, 0]);
    expect((await verify({ phone_number: number, code })).body).toMatchObject({
      verified: false,
      attempts_remaining: 0,
    });
  });

  it("keeps the attempt count exact under 20 concurrent wrong verifies", async () => {
    const number = newNumber();
    const sent = await sendOtp({ phone_number: number, purpose: "race" });
    const code = await codeFrom(sent.body.message_id);
    const wrong = code === "000000" ? "111111" : "000000";
    const results = await Promise.all(Array.from({ length: 20 }, () => verify({ phone_number: number, code: wrong })));
    expect(results.every((r) => r.status === 200 && r.body.verified === false)).toBe(true);
    expect(results.map((r) => r.body.attempts_remaining).sort()).toEqual([...Array(18).fill(0), 1, 2].sort());
    const stored: { attempts: number; status: string }[] = await server.deps.orm.em
      .getConnection()
      .execute("select attempts, status from otp_codes where message_id = ?", [sent.body.message_id]);
    expect(stored[0]).toEqual({ attempts: 3, status: "exhausted" });
  });

  it("answers a fourth send to one number within the hour with 429 and Retry-After", async () => {
    const number = newNumber();
    for (let i = 0; i < 3; i++) expect((await sendOtp({ phone_number: number, purpose: `p${i}` })).status).toBe(200);
    const fourth = await sendOtp({ phone_number: number, purpose: "p4" });
    expect(fourth.status).toBe(429);
    expect(fourth.body).toEqual({ error: "Too many OTP requests; try again later" });
    const retryAfter = Number(fourth.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
  });

  it("replaces an earlier code for the same number and purpose", async () => {
    const number = newNumber();
    const first = await sendOtp({ phone_number: number, purpose: "reset" });
    const firstCode = await codeFrom(first.body.message_id);
    const second = await sendOtp({ phone_number: number, purpose: "reset" });
    const secondCode = await codeFrom(second.body.message_id);
    if (firstCode !== secondCode) {
      expect((await verify({ phone_number: number, code: firstCode, purpose: "reset" })).body.verified).toBe(false);
    }
    expect((await verify({ phone_number: number, code: secondCode, purpose: "reset" })).body.verified).toBe(true);
  });

  it("fails an expired code, and the OTP workflow marks it expired when its timer runs out", async () => {
    const number = newNumber();
    const sent = await sendOtp({ phone_number: number, purpose: "expiry" });
    const code = await codeFrom(sent.body.message_id);
    await server.deps.orm.em
      .getConnection()
      .execute("update otp_codes set expires_at = now() - interval '1 second' where message_id = ?", [
        sent.body.message_id,
      ]);
    expect((await verify({ phone_number: number, code })).body).toEqual({
      success: false,
      verified: false,
      error: "Invalid or expired OTP",
      attempts_remaining: 0,
    });

    const other = await sendOtp({ phone_number: newNumber(), purpose: "timer" });
    const [row] = await server.deps.orm.em
      .getConnection()
      .execute<{ id: string }[]>("select id from otp_codes where message_id = ?", [other.body.message_id]);
    const result = await server.deps.temporal.workflow.execute("otpWorkflow", {
      taskQueue: server.deps.config.temporalTaskQueue,
      workflowId: `test-otp-${randomUUID()}`,
      args: [{ otpId: row?.id, messageId: other.body.message_id, expiresAtMs: Date.now() + 500 }],
    });
    expect(result).toEqual({ status: "expired" });
    const [status] = await server.deps.orm.em
      .getConnection()
      .execute<{ status: string }[]>("select status from otp_codes where id = ?", [row?.id]);
    expect(status?.status).toBe("expired");
  });

  it("refuses bad input with the documented errors", async () => {
    expect(await sendOtp({ phone_number: "nope", purpose: "x" })).toMatchObject({
      status: 422,
      body: { error: "phone_number is not a valid phone number" },
    });
    expect(await sendOtp({ phone_number: newNumber(), expiry_minutes: 0 })).toMatchObject({
      status: 422,
      body: { error: "expiry_minutes must be from 1 to 60" },
    });
    expect(await sendOtp({ phone_number: newNumber(), code_length: 12 })).toMatchObject({
      status: 422,
      body: { error: "code_length must be from 4 to 10" },
    });
    expect(await verify({ phone_number: newNumber(), code: "" })).toMatchObject({ status: 400 });
    expect(await verify({ phone_number: newNumber(), code: "123456" })).toMatchObject({
      status: 200,
      body: { verified: false, attempts_remaining: 0 },
    });
  });

  it("reports today's OTP figures in the admin stats", async () => {
    const admin = await clientKey(server, "admin");
    const stats = async () =>
      (
        (await rest(server, "GET", "/api/v1/admin/stats", { key: admin })).body as {
          otp: { sent_today: number; verified_today: number; verification_rate: number };
        }
      ).otp;
    const before = await stats();
    const number = newNumber();
    const sent = await sendOtp({ phone_number: number, purpose: "stats" });
    await verify({ phone_number: number, code: await codeFrom(sent.body.message_id) });
    await sendOtp({ phone_number: newNumber(), purpose: "stats" });
    const after = await stats();
    expect(after.sent_today - before.sent_today).toBe(2);
    expect(after.verified_today - before.verified_today).toBe(1);
    expect(after.verification_rate).toBe(Math.round((after.verified_today / after.sent_today) * 10_000) / 100);
  });

  it("limits codes per number prefix and per client key, to stop SMS pumping", async () => {
    const strict = await startServer({
      OTP_MAX_PER_PREFIX_PER_HOUR: "2",
      OTP_MAX_PER_KEY_PER_HOUR: "3",
      SECRET_KEY_BASE: "x",
    });
    try {
      const pumper = await clientKey(strict);
      const send = (phone_number: string) =>
        rest(strict, "POST", "/api/v1/otp/send", { key: pumper, body: { phone_number } });
      expect((await send("+4915112345601")).status).toBe(200);
      expect((await send("+4915112345602")).status).toBe(200);
      expect(await send("+4915112345603")).toMatchObject({
        status: 429,
        body: { error: "Too many OTP requests; try again later" },
      });
      expect((await send("+33612345678")).status).toBe(200);
      expect((await send("+447911123456")).status).toBe(429);
    } finally {
      await strict.stop();
    }
  });
});
