import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { DomainError } from "../../shared/errors.js";
import { badRequest, isObject } from "../http.js";
import { frameOfSnapshot, mobileMessage, type ProcessingState, processingStates } from "../states.js";
import type { MobileContext } from "./context.js";

// The phone's messages: `GET /message` (what it is to send, and what it is to cancel) and
// `PATCH /message` (full snapshots of their state), as the app's `PullMessagesWorker` and
// `SendStateWorker` call them.

/** Messages one fetch returns at most (as SMSGate's server). */
const maxFetched = 100;
/** Snapshots one report may carry. */
const maxSnapshots = 1000;

/** One snapshot of `PATCH /message`, checked. */
interface Snapshot {
  id: string;
  state: ProcessingState;
  error: string | null;
}

function snapshots(body: unknown): Snapshot[] {
  if (!Array.isArray(body)) throw badRequest("The body must be a JSON list of messages");
  if (body.length > maxSnapshots) throw badRequest(`At most ${maxSnapshots} messages at once`);
  return body.map((item, i) => {
    if (!isObject(item)) throw badRequest(`[${i}] must be an object`);
    const { id, state } = item;
    if (typeof id !== "string" || id === "" || id.length > 64) throw badRequest(`[${i}].id must be a message id`);
    if (typeof state !== "string" || !(processingStates as readonly string[]).includes(state)) {
      throw badRequest(`[${i}].state must be one of ${processingStates.join(", ")}`);
    }
    const recipients = item.recipients;
    if (recipients !== undefined && recipients !== null && !Array.isArray(recipients)) {
      throw badRequest(`[${i}].recipients must be a list`);
    }
    // The recipient's error says why it failed (the app's "Send result: …", "Delivery result from SC …").
    const failed = (Array.isArray(recipients) ? recipients : []).find(
      (recipient) => isObject(recipient) && typeof recipient.error === "string" && recipient.error !== "",
    ) as { error: string } | undefined;
    return { id, state: state as ProcessingState, error: failed?.error.slice(0, 1000) ?? null };
  });
}

/** The routes of the phone's messages. */
export function messageRoutes(mobile: FastifyInstance, context: MobileContext): void {
  const { deps } = context;

  const fetchMessages = async (request: FastifyRequest) => {
    const gateway = await context.device(request);
    const { order } = request.query as { order?: string };
    if (order !== undefined && order !== "lifo" && order !== "fifo") throw badRequest("order must be lifo or fifo");
    await context.present(gateway);
    // What it is to cancel first (a polling phone learns of a cancel here), then what it is to send.
    const cancelling = await deps.messages.cancelling(gateway.gatewayId, maxFetched);
    const commands =
      cancelling.length >= maxFetched
        ? []
        : await deps.messages.fetch(gateway.gatewayId, {
            newestFirst: order === "lifo",
            limit: maxFetched - cancelling.length,
          });
    return [
      ...cancelling.map((command) => mobileMessage(command, "Cancelling")),
      ...commands.map((command) => mobileMessage(command)),
    ];
  };
  mobile.get("/message", fetchMessages);
  mobile.get("/messages", fetchMessages);

  const reportMessages = async (request: FastifyRequest, reply: FastifyReply) => {
    const gateway = await context.device(request);
    const items = snapshots(request.body);
    await context.present(gateway);
    for (const item of items) {
      const frame = frameOfSnapshot(item);
      if (frame === undefined) continue;
      try {
        await context.report(gateway, frame);
      } catch (error) {
        // A stale or foreign snapshot changes nothing; the others go on. An outage fails the call,
        // and the app sends its snapshots again.
        if (!(error instanceof DomainError)) throw error;
        deps.logger.info(
          { deviceId: gateway.deviceId, messageId: item.id, state: item.state, err: error.message },
          "SMSGate snapshot changed nothing",
        );
      }
    }
    return reply.code(204).send();
  };
  mobile.patch("/message", reportMessages);
  mobile.patch("/messages", reportMessages);
}
