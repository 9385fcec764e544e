import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { GatewayMetadata } from "../../modules/gateways/index.js";
import { randomToken } from "../../shared/ids.js";
import {
  badRequest,
  credentials,
  isObject,
  jsonBody,
  optionalString,
  peerOf,
  SmsGateError,
  unauthorized,
} from "../http.js";
import type { MobileContext } from "./context.js";

// The phone itself (`POST/PATCH/GET /device`) and its account (`/user/code`, `/user/password`):
// SMSGate's `handlers/mobile.go`, as the app calls it (`GatewayApi.kt`).

/** The app's SIM cards, kept as they came (the app shows only the last digits of a number). */
export function simCards(body: Record<string, unknown>): unknown[] | undefined {
  const value = body.simCards;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.length > 8 || !value.every(isObject)) {
    throw badRequest("simCards must be a list of at most 8 objects");
  }
  return value.map((card) => ({
    slotIndex: typeof card.slotIndex === "number" ? card.slotIndex : null,
    simNumber: typeof card.simNumber === "number" ? card.simNumber : null,
    phoneNumber: typeof card.phoneNumber === "string" ? card.phoneNumber.slice(0, 32) : null,
    carrierName: typeof card.carrierName === "string" ? card.carrierName.slice(0, 64) : null,
    iccid: typeof card.iccid === "string" ? card.iccid.slice(0, 32) : null,
  }));
}

/**
 * A phone joins: with the registration token it signs up into an account of its own (its login and
 * password are answered once); with `Basic` or a sign-in `Code` it joins that account. Either way
 * it is that account's phone: that account's messages go to its phones only.
 */
async function registerDevice(context: MobileContext, request: FastifyRequest, reply: FastifyReply) {
  const { deps } = context;
  if (deps.authFailures.blockedFor(peerOf(request)) !== undefined) throw unauthorized();
  const given = credentials(request);
  let account: { login: string; keyId: number } | undefined;
  if (given?.scheme === "bearer") {
    if ((await deps.keys.registration(given.value)) === undefined) return context.refuse(request);
  } else if (given?.scheme === "basic") {
    account = await context.basicAccount(given.value);
    if (account === undefined) return context.refuse(request);
  } else if (given?.scheme === "code") {
    account = await context.codes.redeem(given.value);
    if (account === undefined) return context.refuse(request);
  } else {
    return context.refuse(request);
  }
  const body = jsonBody(request);
  const name = optionalString(body, "name") ?? "";
  const deviceId = randomToken(21);
  const metadata: GatewayMetadata = {
    app: "SMSGate",
    user_agent: String(request.headers["user-agent"] ?? "").slice(0, 128),
  };
  const cards = simCards(body);
  if (cards !== undefined) metadata.sim_cards = cards;
  const pushToken = optionalString(body, "pushToken", 4096);
  if (pushToken !== undefined) metadata.push_token = pushToken;
  if (account !== undefined) metadata.account = account.login;
  const opened = await deps.gateways.register(
    {
      deviceId,
      name: name.trim() === "" ? `SMSGate ${deviceId.slice(0, 6)}` : name,
      metadata,
      ...(account === undefined ? {} : { accountKeyId: account.keyId }),
    },
    // A phone signed up with the registration token opens an account of its own, in the same transaction.
    account !== undefined
      ? undefined
      : async (em, gateway) => {
          const opening = await deps.keys.createAccount(`SMSGate phone ${deviceId}`, em);
          gateway.metadata = { ...gateway.metadata, account: opening.login };
          gateway.accountKeyId = opening.record.id;
          return opening;
        },
  );
  deps.logger.info({ deviceId, account: account?.login ?? opened.also?.login }, "SMSGate phone registered");
  return reply.code(201).send({
    id: deviceId,
    token: opened.apiKey,
    login: account?.login ?? opened.also?.login,
    ...(opened.also === undefined ? {} : { password: opened.also.password }),
  });
}

/** The routes of the phone and its account. */
export function deviceRoutes(mobile: FastifyInstance, context: MobileContext): void {
  const { deps } = context;

  mobile.post("/device", (request, reply) => registerDevice(context, request, reply));

  mobile.get("/device", async (request) => ({ externalIp: request.ip }));

  mobile.patch("/device", async (request, reply) => {
    const gateway = await context.device(request);
    const body = jsonBody(request);
    const id = optionalString(body, "id");
    if (id !== undefined && id !== gateway.deviceId) throw new SmsGateError(403, "Forbidden");
    await context.present(gateway);
    const cards = simCards(body);
    // No push token means no push: such a phone is told of messages on its events stream.
    await deps.gateways.updateMetadata(gateway.gatewayId, {
      push_token: optionalString(body, "pushToken", 4096) ?? null,
      ...(cards === undefined ? {} : { sim_cards: cards }),
    });
    return reply.code(204).send();
  });

  // The app's "change password" (Settings → Cloud Server): the account's, for every phone of it.
  mobile.patch("/user/password", async (request, reply) => {
    const gateway = await context.device(request);
    const body = jsonBody(request);
    const current = optionalString(body, "currentPassword", 128) ?? "";
    const next = optionalString(body, "newPassword", 128);
    if (next === undefined) throw badRequest("newPassword is required");
    if (next.length < 14) throw badRequest("newPassword must have at least 14 characters");
    await context.present(gateway);
    const login = (await deps.gateways.find(gateway.gatewayId))?.metadata.account;
    const changed = typeof login === "string" && (await deps.keys.changePassword(login, current, next));
    if (!changed) throw new SmsGateError(401, "failed to change password");
    return reply.code(204).send();
  });

  mobile.get("/user/code", async (request) => {
    if (deps.authFailures.blockedFor(peerOf(request)) !== undefined) throw unauthorized();
    const given = credentials(request);
    const account = given?.scheme === "basic" ? await context.basicAccount(given.value) : undefined;
    if (account === undefined) return context.refuse(request);
    const { code, validUntil } = await context.codes.issue(account);
    return { code, validUntil: validUntil.toISOString() };
  });
}
