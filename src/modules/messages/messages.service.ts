import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { Tx } from "../../db/sql.js";
import { DomainError, invalid, missing } from "../../shared/errors.js";
import { newMessageId, randomToken } from "../../shared/ids.js";
import type { Metrics } from "../../shared/metrics.js";
import { normalizePhoneNumber } from "../../shared/phone.js";
import type { SecretBox } from "../../shared/secret-box.js";
import { currentTraceparent } from "../../tracing.js";
import type { Backlog } from "./backlog.js";
import {
  type GroupFilters,
  type GroupRecipientRow,
  type ListedMessageRow,
  type MessageListFilters,
  type MessageRepository,
  type NewMessage,
  toView,
} from "./message.repository.js";
import {
  type AttemptView,
  type DeviceReport,
  type ListedMessageView,
  type MessageView,
  type MessageWorkflows,
  messageStatuses,
  type OutboundStatus,
  type SendInput,
} from "./message.types.js";
import type { MessageLifecycle, UnacknowledgedCommand } from "./message-lifecycle.js";
import type { MessageFigures } from "./message-stats.js";

const maxBodyLength = 1600;
const maxBatchSize = 1000;
/** The contract's limit (sms.proto): an idempotency key is at most 255 characters. */
export const maxIdempotencyKeyLength = 255;
const maxMetadataBytes = 4096;
const defaultPageSize = 50;
const maxPageSize = 100;

/** What a caller filters its list of messages by (all optional; empty strings count as unset). */
export interface ListInput {
  status?: string | undefined;
  gatewayDeviceId?: string | undefined;
  to?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  limit?: number | undefined;
  pageToken?: string | undefined;
}

const listedView = (row: ListedMessageRow): ListedMessageView => ({
  ...toView(row),
  priority: row.priority,
  gatewayDeviceId: row.device_id,
});

/** The token of the page after `row`: where the next page starts, opaque to callers. */
const tokenAfter = (row: ListedMessageRow) =>
  Buffer.from(JSON.stringify([row.cursor_at, row.id])).toString("base64url");

function readToken(token: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown[];
    if (typeof createdAt === "string" && typeof id === "string" && !Number.isNaN(Date.parse(createdAt)))
      return { createdAt, id };
  } catch {
    // Not a token of ours: refused below.
  }
  throw invalid("page_token is not a token this server gave");
}

/** Who is asking: a client key, and whether it may see every application's messages. */
export interface Caller {
  keyId: number;
  admin: boolean;
}

/** SMSGate's limits on one logical message (its `phoneNumbers`, its priority, its id). */
export const groupLimits = {
  maxRecipients: 100,
  minPriority: -128,
  maxPriority: 127,
  maxIdLength: 36,
  /** Encrypted content is opaque: only its size is bounded (SMSGate's own bound). */
  maxEncryptedLength: 65_535,
  /** The longest text SMSGate takes (client-go's `TextMessage.Text`, `max=65535`): the phone splits it. */
  maxTextLength: 65_535,
  /** The most a data SMS carries (one SMS's user data). */
  maxDataBytes: 140,
} as const;

/** One logical message of several recipients, as SMSGate's API takes it (already parsed). */
export interface GroupSendInput {
  /** The client's own id; one is drawn when unset. */
  id?: string | undefined;
  recipients: string[];
  content: { text: string } | { data: string; port: number };
  encrypted: boolean;
  simNumber?: number | undefined;
  deliveryReport: boolean;
  priority: number;
  sendAt?: Date | undefined;
  /** When it expires: from `ttl` or `validUntil`; the server's default validity when unset. */
  expiresAt?: Date | undefined;
  /** The device id of the phone to try first. */
  deviceId?: string | undefined;
  /** Numbers taken as given (trimmed) instead of normalised to E.164. */
  skipPhoneValidation: boolean;
}

/**
 * A message's content, checked: text (at most `maxBodyLength` characters; encrypted, at most
 * `groupLimits.maxEncryptedLength`), or a data SMS (base64 of at most `groupLimits.maxDataBytes`
 * bytes, to a port from 0 to 65535). `names` says how the caller's fields are called.
 */
function checkedContent(
  body: string,
  options: { dataPort: number | null; encrypted: boolean; simNumber: number | null; maxTextLength?: number },
  names: { text: string; data: string; port: string; sim: string },
): void {
  const { dataPort, encrypted, simNumber } = options;
  if (simNumber !== null && (!Number.isInteger(simNumber) || simNumber < 1 || simNumber > 3))
    throw invalid(`${names.sim} must be from 1 to 3`);
  if (dataPort === null) {
    if (body.trim() === "") throw invalid(`${names.text} is empty`);
    const max = encrypted ? groupLimits.maxEncryptedLength : (options.maxTextLength ?? maxBodyLength);
    if (body.length > max) throw invalid(`${names.text} is too long (at most ${max} characters)`);
    return;
  }
  if (!Number.isInteger(dataPort) || dataPort < 0 || dataPort > 65_535)
    throw invalid(`${names.port} must be from 0 to 65535`);
  if (encrypted) {
    if (body === "" || body.length > groupLimits.maxEncryptedLength)
      throw invalid(`${names.data} must be 1 to ${groupLimits.maxEncryptedLength} characters`);
    return;
  }
  const bytes = /^[A-Za-z0-9+/]*={0,2}$/.test(body) && body.length % 4 === 0 ? Buffer.from(body, "base64") : null;
  if (bytes === null || bytes.length === 0) throw invalid(`${names.data} must be base64`);
  if (bytes.length > groupLimits.maxDataBytes)
    throw invalid(`${names.data} is too long (at most ${groupLimits.maxDataBytes} bytes)`);
}

/** The names of smsgw's own fields, for its errors. */
const ownNames = { text: "message", data: "message", port: "data_port", sim: "sim_number" };

/** A client's id of a logical message: 1 to 36 characters, not one of smsgw's own ids. */
function checkGroupId(id: string, field: string): void {
  if (id.length === 0 || id.length > groupLimits.maxIdLength)
    throw invalid(`${field} must be 1 to ${groupLimits.maxIdLength} characters`);
  if (id.startsWith("msg_")) throw invalid(`${field} must not begin with msg_ (the prefix of smsgw's own ids)`);
}

/** A send request checked and normalised, ready to store (its id and key are added then). */
type CheckedSend = Omit<NewMessage, "id" | "clientKeyId">;

/** Accepts outbound messages, answers for their status, and takes devices' reports on them. */
export class MessagesService {
  private readonly cancelListeners: ((gatewayId: number, messageId: string) => void)[] = [];

  constructor(
    /** Which gateway a device id names (the gateways module owns them). */
    private readonly gateways: { idOf(deviceId: string): Promise<number | null> },
    private readonly repository: MessageRepository,
    private readonly workflows: MessageWorkflows,
    private readonly options: { defaultCountryCode: string; defaultValiditySeconds: number },
    private readonly logger: Logger,
    /** Encrypts the text of messages that hold a secret; only the phone ever gets it in clear. */
    private readonly box: SecretBox,
    private readonly lifecycle: MessageLifecycle,
    private readonly backlog: Backlog,
    private readonly metrics: Metrics,
  ) {}

  private async check(
    input: SendInput & { groupId?: string | undefined },
    recipient: string,
    idempotencyKey: string | null,
  ): Promise<CheckedSend> {
    if (input.message.trim() === "") throw missing("message");
    const options = {
      dataPort: input.dataPort ?? null,
      encrypted: input.encrypted ?? false,
      simNumber: input.simNumber ?? null,
    };
    checkedContent(input.message, options, ownNames);
    const priority = input.priority ?? 0;
    if (!Number.isInteger(priority) || priority < -10 || priority > 10)
      throw invalid("priority must be from -10 to 10");
    const validity = input.validitySeconds ?? this.options.defaultValiditySeconds;
    if (validity < 1 || validity > 30 * 86_400) throw invalid("validity_seconds must be from 1 to 2592000");
    if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > maxIdempotencyKeyLength)) {
      throw invalid(`idempotency_key must be 1 to ${maxIdempotencyKeyLength} characters`);
    }
    const metadata = JSON.stringify(input.metadata ?? {});
    if (Buffer.byteLength(metadata) > maxMetadataBytes)
      throw invalid(`metadata is too large (at most ${maxMetadataBytes} bytes)`);
    const now = Date.now();
    const sendAt = input.sendAt !== undefined && input.sendAt.getTime() > now ? input.sendAt : null;
    const expiresAt = new Date((sendAt?.getTime() ?? now) + validity * 1000);
    let preferredGatewayId: number | null = null;
    if (input.gatewayDeviceId !== undefined && input.gatewayDeviceId !== "") {
      preferredGatewayId = await this.gateways.idOf(input.gatewayDeviceId);
      if (preferredGatewayId === null) throw invalid("gateway_id is not a registered gateway");
    }
    const digest = createHash("sha256")
      .update(
        JSON.stringify([
          recipient,
          input.message,
          priority,
          input.sendAt?.toISOString() ?? null,
          input.validitySeconds ?? null,
          input.gatewayDeviceId ?? null,
          metadata,
          options,
          input.deliveryReport ?? true,
          input.groupId ?? null,
        ]),
      )
      .digest("hex");
    return {
      recipient,
      body: input.message,
      priority,
      sendAt,
      expiresAt,
      preferredGatewayId,
      metadata,
      idempotencyKey,
      digest,
      sealedBody: null,
      simNumber: options.simNumber,
      deliveryReport: input.deliveryReport ?? true,
      encrypted: options.encrypted,
      dataPort: options.dataPort,
    };
  }

  /** A recipient as stored: an encrypted one as given, any other normalised to E.164. */
  private recipientOf(to: string, encrypted: boolean | undefined, field: string): string {
    if (encrypted !== true) return normalizePhoneNumber(to, this.options.defaultCountryCode, field);
    if (to === "" || to.length > 255) throw invalid(`${field} must be 1 to 255 characters`);
    return to;
  }

  /** Inserts checked messages in one transaction; an idempotency key seen before yields the earlier message. */
  private async store(
    caller: Caller,
    checked: CheckedSend[],
    outer?: Tx,
  ): Promise<{ view: MessageView; created: boolean }[]> {
    // Refused before anything is written when too many messages already wait for a gateway.
    this.backlog.admit(caller.keyId, checked.length);

    const work = async (em?: Tx) => {
      const out: { view: MessageView; created: boolean }[] = [];
      for (const item of checked) {
        const row = await this.repository.insert(
          { id: newMessageId(), clientKeyId: caller.keyId, ...item, traceContext: currentTraceparent() ?? null },
          em,
        );
        if (row !== undefined) {
          out.push({ view: toView(row), created: true });
          // Stored for good (one statement, outside any transaction): its first dispatch needs not read it back.
          if (em === undefined) this.lifecycle.stored(row.id, item);
          continue;
        }
        const earlier = await this.repository.findByIdempotencyKey(caller.keyId, item.idempotencyKey, em);
        if (earlier === undefined) throw new Error("idempotency conflict without a stored message");
        if (earlier.request_digest !== item.digest) {
          throw invalid("idempotency_key was already used for a different request");
        }
        out.push({ view: toView(earlier), created: false });
      }
      return out;
    };
    // One message is one statement (plus a read for a repeated idempotency key): no transaction needed.
    const stored = await (outer !== undefined
      ? work(outer)
      : checked.length === 1
        ? work()
        : this.repository.transaction(work));
    this.metrics.messagesAccepted(stored.filter((result) => result.created).length);
    return stored;
  }

  /** The messages' figures of the admin stats; "today" starts at midnight in `timeZone`. */
  async figures(timeZone: string): Promise<MessageFigures> {
    return (await this.repository.figures(timeZone)) ?? { total_sent: 0, sent_today: 0, pending: 0, failed_today: 0 };
  }

  /** The operator's overview: the last hour minute by minute, and today's ended messages. */
  overview(timeZone: string) {
    return this.repository.overview(timeZone);
  }

  /** The messages waiting for a gateway, those given to one, and of those the unacknowledged. */
  inFlight() {
    return this.repository.inFlight();
  }

  /**
   * Starts the workflows of newly stored messages (each records that it runs when it loads its
   * message); what fails here the sweeper starts later.
   */
  async startWorkflows(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.workflows.start(ids);
    } catch (error) {
      this.logger.warn({ err: error, count: ids.length }, "starting message workflows failed; the sweeper will retry");
    }
  }

  /**
   * Stores a message and starts its workflow. The answer is given once the message is durable; the
   * workflow is started right after, or by the message sweeper if that fails.
   */
  async send(caller: Caller, input: SendInput): Promise<{ view: MessageView; created: boolean }> {
    if (input.to.trim() === "") throw missing("to");
    const recipient = this.recipientOf(input.to, input.encrypted, "to");
    const checked = await this.check(input, recipient, input.idempotencyKey ?? null);
    const [result] = await this.store(caller, [checked]);
    if (result === undefined) throw new Error("no message stored");
    // The message is durable: answer now. Its workflow starts in the background, and whatever does
    // not start here (Temporal down, process killed) the sweeper starts.
    if (result.created) this.workflows.enqueue([result.view.id]);
    return result;
  }

  /**
   * Stores a message inside the caller's transaction `em`, without starting its workflow: the caller
   * starts it (with `startWorkflows`) once its transaction has committed. With `secretMessage`, the
   * text the phone sends is that one, kept only encrypted; `message` (a masked copy) is what is
   * stored, listed and put in events.
   */
  async storeWithin(
    em: Tx,
    caller: Caller,
    input: SendInput & { to: string; secretMessage?: string },
  ): Promise<MessageView> {
    const recipient = normalizePhoneNumber(input.to, this.options.defaultCountryCode, "to");
    const checked = await this.check(input, recipient, input.idempotencyKey ?? null);
    if (input.secretMessage !== undefined) checked.sealedBody = this.box.seal(input.secretMessage);
    const [result] = await this.store(caller, [checked], em);
    if (result === undefined) throw new Error("no message stored");
    return result.view;
  }

  /**
   * Stores one message per distinct recipient, all or none, and starts their workflows. With
   * `groupId`, the recipients are one logical message under the client's id (refused with 409 when
   * this key used the id before, unless the request repeats under the same idempotency key).
   */
  async sendBatch(
    caller: Caller,
    recipients: string[],
    input: Omit<SendInput, "to"> & { groupId?: string | undefined },
  ): Promise<MessageView[]> {
    if (recipients.length === 0) throw missing("to");
    if (recipients.length > maxBatchSize) throw invalid(`to has too many recipients (at most ${maxBatchSize})`);
    const { groupId } = input;
    if (groupId !== undefined) checkGroupId(groupId, "group_id");
    const normalised = recipients.map((to, i) => this.recipientOf(to, input.encrypted, `to[${i}]`));
    const distinct = [...new Set(normalised)];
    const checked: CheckedSend[] = [];
    for (const [position, recipient] of distinct.entries()) {
      const key = input.idempotencyKey === undefined ? null : `${input.idempotencyKey}:${recipient}`;
      const item = await this.check({ ...input, to: recipient }, recipient, key);
      checked.push(groupId === undefined ? item : { ...item, extId: groupId, extPosition: position });
    }
    const results =
      groupId === undefined
        ? await this.store(caller, checked)
        : await this.repository.transaction(async (em) => {
            if ((await this.repository.extIdTaken(caller.keyId, groupId, em)) && input.idempotencyKey === undefined)
              throw new DomainError("conflict", "A message with this group_id already exists");
            return this.store(caller, checked, em);
          });
    const created = results.filter((result) => result.created).map((result) => result.view.id);
    // A thousand starts take a while: answer now; anything not started here the sweeper starts.
    this.workflows.enqueue(created);
    return results.map((result) => result.view);
  }

  /**
   * Stores one logical message of SMSGate's API: one row (and one lifecycle) per recipient under the
   * client's id, all or none; a second send with an id this key used is refused (409). Each recipient
   * has its own state, and one that fails is retried on another phone without the others going again.
   */
  async sendGroup(caller: Caller, input: GroupSendInput): Promise<GroupRecipientRow[]> {
    const id = input.id ?? randomToken(21);
    checkGroupId(id, "id");
    if (input.recipients.length === 0) throw invalid("phoneNumbers must name at least one recipient");
    if (input.recipients.length > groupLimits.maxRecipients)
      throw invalid(`phoneNumbers has too many recipients (at most ${groupLimits.maxRecipients})`);
    const { priority } = input;
    if (!Number.isInteger(priority) || priority < groupLimits.minPriority || priority > groupLimits.maxPriority)
      throw invalid(`priority must be from ${groupLimits.minPriority} to ${groupLimits.maxPriority}`);
    const recipients = input.recipients.map((number, i) => {
      // Encrypted numbers are opaque; numbers the client vouches for are taken as given.
      if (input.encrypted || input.skipPhoneValidation) {
        const given = input.encrypted ? number : number.trim();
        if (given === "" || given.length > 255) throw invalid(`phoneNumbers[${i}] must be 1 to 255 characters`);
        return given;
      }
      return normalizePhoneNumber(number, this.options.defaultCountryCode, `phoneNumbers[${i}]`);
    });
    if (new Set(recipients).size !== recipients.length) throw invalid("phoneNumbers must not repeat a number");
    const body = "text" in input.content ? input.content.text : input.content.data;
    const dataPort = "text" in input.content ? null : input.content.port;
    checkedContent(
      body,
      {
        dataPort,
        encrypted: input.encrypted,
        simNumber: input.simNumber ?? null,
        maxTextLength: groupLimits.maxTextLength,
      },
      { text: "the message's text", data: "dataMessage.data", port: "dataMessage.port", sim: "simNumber" },
    );
    const now = Date.now();
    const sendAt = input.sendAt !== undefined && input.sendAt.getTime() > now ? input.sendAt : null;
    const expiresAt =
      input.expiresAt ?? new Date((sendAt?.getTime() ?? now) + this.options.defaultValiditySeconds * 1000);
    if (expiresAt.getTime() <= (sendAt?.getTime() ?? now)) throw invalid("the message would expire before it is sent");
    let preferredGatewayId: number | null = null;
    if (input.deviceId !== undefined && input.deviceId !== "") {
      preferredGatewayId = await this.gateways.idOf(input.deviceId);
      if (preferredGatewayId === null) throw invalid("deviceId is not a registered device");
    }
    const digest = createHash("sha256")
      .update(JSON.stringify([id, recipients, body, dataPort]))
      .digest("hex");
    const checked: CheckedSend[] = recipients.map((recipient, position) => ({
      recipient,
      body,
      priority,
      sendAt,
      expiresAt,
      preferredGatewayId,
      metadata: "{}",
      idempotencyKey: null,
      digest,
      sealedBody: null,
      extId: id,
      simNumber: input.simNumber ?? null,
      deliveryReport: input.deliveryReport,
      encrypted: input.encrypted,
      dataPort,
      extPosition: position,
    }));
    this.backlog.admit(caller.keyId, checked.length);
    const ids = await this.repository.transaction(async (em) => {
      if (await this.repository.extIdTaken(caller.keyId, id, em))
        throw new DomainError("conflict", "A message with this id already exists");
      const stored: string[] = [];
      for (const item of checked) {
        const row = await this.repository.insert({ id: newMessageId(), clientKeyId: caller.keyId, ...item }, em);
        if (row === undefined) throw new Error("a message of a new id was not stored");
        stored.push(row.id);
      }
      return stored;
    });
    this.metrics.messagesAccepted(ids.length);
    this.workflows.enqueue(ids);
    return this.group(caller, id);
  }

  /** The recipients of a logical message the caller may see (by its client id, or a message id). */
  async group(caller: Caller, groupId: string): Promise<GroupRecipientRow[]> {
    const rows = await this.repository.group(caller.admin ? null : caller.keyId, groupId);
    const first = rows[0];
    if (first === undefined) throw new DomainError("not_found", "Message not found");
    // An admin sees every key's: two applications may have chosen the same id; the first one's is shown.
    return rows.filter((row) => row.client_key_id === first.client_key_id);
  }

  /** One page of the caller's logical messages and how many match in all. */
  groups(
    caller: Caller,
    filters: Omit<GroupFilters, "clientKeyId">,
  ): Promise<{ total: number; rows: GroupRecipientRow[] }> {
    return this.repository.groups({ ...filters, clientKeyId: caller.admin ? null : caller.keyId });
  }

  /**
   * Cancels the recipients of a logical message that no phone has sent yet. Refused (409) when none
   * can be cancelled any more; cancelling a cancelled message changes nothing.
   */
  async cancelGroup(caller: Caller, groupId: string): Promise<GroupRecipientRow[]> {
    const rows = await this.group(caller, groupId);
    const open = rows.filter((row) => row.state === "Pending" || row.state === "Processed");
    if (open.length === 0) {
      if (rows.every((row) => row.state === "Cancelled")) return rows;
      throw new DomainError("conflict", "The message is not pending: it was sent or has ended");
    }
    let cancelled = 0;
    for (const row of open) {
      try {
        await this.cancel(caller, row.id);
        cancelled += 1;
      } catch (error) {
        // Sent meanwhile: that recipient keeps its state.
        if (!(error instanceof DomainError && error.code === "validation")) throw error;
      }
    }
    if (cancelled === 0) throw new DomainError("conflict", "The message is not pending: it was sent or has ended");
    return this.group(caller, groupId);
  }

  /** A message the caller may see; another application's message is as unknown as a missing one. */
  async get(caller: Caller, messageId: string): Promise<MessageView> {
    const row = await this.repository.find(messageId);
    if (row === undefined || (!caller.admin && row.client_key_id !== caller.keyId)) {
      throw new DomainError("not_found", "Message not found");
    }
    return toView(row);
  }

  /** One page of the messages the caller may see, newest first, and the token of the next page. */
  async list(caller: Caller, input: ListInput): Promise<{ messages: ListedMessageView[]; nextPageToken: string }> {
    const limit = input.limit ?? defaultPageSize;
    if (!Number.isInteger(limit) || limit < 1 || limit > maxPageSize)
      throw invalid(`limit must be from 1 to ${maxPageSize}`);
    const filters: MessageListFilters = { clientKeyId: caller.admin ? null : caller.keyId, limit: limit + 1 };
    if (input.status) {
      if (!(messageStatuses as readonly string[]).includes(input.status))
        throw invalid(`status must be one of ${messageStatuses.join(", ")}`);
      filters.status = input.status as OutboundStatus;
    }
    if (input.gatewayDeviceId) filters.gatewayDeviceId = input.gatewayDeviceId;
    if (input.to) filters.recipient = normalizePhoneNumber(input.to, this.options.defaultCountryCode, "to");
    if (input.since) filters.since = input.since;
    if (input.until) filters.until = input.until;
    if (input.pageToken) filters.after = readToken(input.pageToken);
    const rows = await this.repository.list(filters);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      messages: page.map(listedView),
      nextPageToken: rows.length > limit && last !== undefined ? tokenAfter(last) : "",
    };
  }

  /** A message the caller may see, as listed. */
  async listed(caller: Caller, messageId: string): Promise<ListedMessageView> {
    const [row] = await this.repository.list({
      clientKeyId: caller.admin ? null : caller.keyId,
      id: messageId,
      limit: 1,
    });
    if (row === undefined) throw new DomainError("not_found", "Message not found");
    return listedView(row);
  }

  /** Every attempt at a message the caller may see, oldest first. */
  async attempts(caller: Caller, messageId: string): Promise<AttemptView[]> {
    await this.get(caller, messageId);
    const rows = await this.repository.attempts(messageId);
    return rows.map((row) => ({
      attempt: row.attempt,
      gatewayDeviceId: row.device_id,
      dispatchedAt: new Date(row.dispatched_at),
      acknowledgedAt: row.acked_at === null ? null : new Date(row.acked_at),
      endedAt: row.ended_at === null ? null : new Date(row.ended_at),
      outcome: row.outcome,
      error: row.error,
    }));
  }

  /** Cancels a message no gateway has sent yet. */
  async cancel(caller: Caller, messageId: string): Promise<MessageView> {
    const view = await this.get(caller, messageId);
    if (view.status === "cancelled") return view;
    const row = await this.repository.cancel(messageId);
    if (row === undefined) throw invalid(`message is already ${view.status} and cannot be cancelled`);
    this.metrics.messageOutcome("cancelled", null);
    await this.lifecycle
      .cancelled(row)
      .catch((error: unknown) => this.logger.warn({ err: error, messageId }, "recording sms_cancelled failed"));
    // A phone that holds it is told not to send it.
    if (row.gateway_id !== null) for (const listener of this.cancelListeners) listener(row.gateway_id, messageId);
    await this.workflows
      .cancel(messageId)
      .catch((error: unknown) => this.logger.warn({ err: error, messageId }, "cancel signal failed"));
    return toView(row);
  }

  /** Hears of every message cancelled by its sender while a gateway held it. */
  onCancelled(listener: (gatewayId: number, messageId: string) => void): void {
    this.cancelListeners.push(listener);
  }

  /**
   * A phone cancelled a message it was given and did not send (the SMSGate app reports `Cancelled`):
   * it ends cancelled, as when its sender cancels it. Refused when the message is not this gateway's
   * or has moved past that.
   */
  async cancelledOnGateway(gatewayId: number, messageId: string): Promise<void> {
    const row = await this.repository.cancelOn(messageId, gatewayId);
    // Its sender cancelled it first: the phone confirms it knows (a polling phone is no longer told).
    if (row === undefined && (await this.repository.confirmCancel(messageId, gatewayId))) return;
    if (row === undefined) {
      throw new DomainError("permission_denied", "This message is not held by this gateway, or was sent or ended");
    }
    this.metrics.messageOutcome("cancelled", null);
    await this.lifecycle
      .cancelled(row)
      .catch((error: unknown) => this.logger.warn({ err: error, messageId }, "recording sms_cancelled failed"));
    await this.workflows
      .cancel(messageId)
      .catch((error: unknown) => this.logger.warn({ err: error, messageId }, "cancel signal failed"));
  }

  /**
   * Takes a gateway's report on a message: recorded in the database first (counted and emitted
   * once), then, when it ends the attempt, handed to the message's workflow. Repeated and late
   * reports are accepted and change nothing; a report on a message this gateway was never given is
   * refused.
   */
  async report(gatewayId: number, messageId: string, status: string, error: string | null): Promise<void> {
    if (messageId.trim() === "") throw missing("message_id");
    if (status !== "sent" && status !== "delivered" && status !== "failed") {
      throw invalid("status must be sent, delivered or failed");
    }
    const signal = await this.lifecycle.report(gatewayId, messageId, status, error);
    if (signal !== undefined) this.tell(messageId, signal);
  }

  /** Signals a recorded report to the message's workflow, without waiting; a failure is logged. */
  private tell(messageId: string, report: DeviceReport): void {
    this.workflows.report(messageId, report).catch((error: unknown) => {
      this.logger.warn({ err: error, messageId }, "signalling a recorded report failed; the workflow reads it later");
    });
  }

  /**
   * Records that a gateway has taken a command; acknowledged commands are not sent again, and the
   * message is not given to another gateway unless this one reports a failure. Refused when the
   * message is not (or no longer) this gateway's to send: the device must not send it.
   */
  async acknowledge(gatewayId: number, messageId: string): Promise<void> {
    if (messageId.trim() === "") throw missing("message_id");
    await this.lifecycle.acknowledge(gatewayId, messageId);
  }

  /**
   * What a phone that fetches its messages gets (the SMSGate app): its unacknowledged commands,
   * marked fetched (then held for it while it is connected, or within the dispatch timeout).
   */
  fetch(gatewayId: number, options: { newestFirst: boolean; limit: number }): Promise<UnacknowledgedCommand[]> {
    return this.lifecycle.fetch(gatewayId, options);
  }

  /** Messages its sender cancelled after this gateway fetched them, not yet confirmed by it (`Cancelling`). */
  cancelling(gatewayId: number, limit: number): Promise<UnacknowledgedCommand[]> {
    return this.lifecycle.cancelling(gatewayId, limit);
  }

  /** How many messages are assigned to this gateway and not yet reported sent. */
  pendingFor(gatewayId: number): Promise<number> {
    return this.repository.countDispatched(gatewayId);
  }

  /**
   * Commands dispatched to this gateway that it has not acknowledged: sent again when it reconnects,
   * or handed to a phone that fetches them (oldest first unless `newestFirst`, at most `limit`).
   */
  unacknowledged(
    gatewayId: number,
    options: { newestFirst?: boolean; limit?: number } = {},
  ): Promise<UnacknowledgedCommand[]> {
    return this.lifecycle.unacknowledged(gatewayId, options);
  }

  /** Tells the workflows of messages in flight on this gateway that it went away. */
  async gatewayLost(gatewayId: number): Promise<void> {
    const ids = await this.repository.dispatchedOn(gatewayId);
    if (ids.length > 0) await this.workflows.gatewayLost(ids, gatewayId);
  }

  /**
   * Wakes the workflows of messages waiting for a gateway, highest priority first. Asked again while
   * it runs (thousands of phones coming back at once each ask), it runs once more when done, for
   * all who asked meanwhile, instead of once for each.
   */
  wakeQueued(limit = 1000): Promise<void> {
    if (this.waking !== undefined) {
      this.wakeAgain ??= this.waking
        .catch(() => undefined)
        .then(() => {
          this.wakeAgain = undefined;
          return this.wakeQueued(limit);
        });
      return this.wakeAgain;
    }
    this.waking = (async () => {
      const ids = await this.repository.queuedWithWorkflow(limit);
      if (ids.length > 0) await this.workflows.wake(ids);
    })().finally(() => {
      this.waking = undefined;
    });
    return this.waking;
  }

  private waking: Promise<void> | undefined;
  private wakeAgain: Promise<void> | undefined;

  /** Starts workflows for stored messages that have none (Temporal was down when they were accepted). */
  async startMissingWorkflows(olderThanSeconds: number, limit = 500): Promise<number> {
    const ids = await this.repository.withoutWorkflow(olderThanSeconds, limit);
    // Through the same paced starter as accepted sends: one it already holds is not queued twice, and
    // a start that fails leaves the message unmarked for the next sweep (the workflow marks it when
    // it first runs).
    this.workflows.enqueue(ids);
    return ids.length;
  }
}
