import { UniqueConstraintViolationException } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Tx } from "../../db/sql.js";
import { Batcher } from "../../shared/batcher.js";
import { DomainError, invalid, missing } from "../../shared/errors.js";
import type { EventsService } from "../events/index.js";
import type { KeysService } from "../keys/index.js";
import type { GatewayMetadata, GatewayRecord } from "./gateway.entity.js";
import { type GatewayCounts, type GatewayRepository, livenessBatches } from "./gateway.repository.js";
import { checkedSettings, type StoredSmsGateSettings } from "./smsgate-settings.js";

/** What a device reports in a heartbeat; fields left out keep their last value. */
export interface HeartbeatInput {
  status?: string | undefined;
  messagesInQueue?: number | undefined;
  batteryLevel?: number | undefined;
  signalStrength?: number | undefined;
}

/** The part of a gateway a toggle changes. */
export interface GatewayToggle {
  id: number;
  deviceId: string;
  active: boolean;
}

const maxTextLength = 255;

function requiredText(value: string, field: string): string {
  const trimmed = value.trim();
  if (trimmed === "") throw missing(field);
  if (trimmed.length > maxTextLength) throw invalid(`${field} is too long (at most ${maxTextLength} characters)`);
  return trimmed;
}

function inRange(value: number | undefined, field: string, min: number, max: number): number | undefined {
  if (value !== undefined && (value < min || value > max)) {
    throw invalid(`${field} must be from ${min} to ${max}`);
  }
  return value;
}

/** Registers gateways, records their health and lets operators list and disable them. */
export class GatewayRegistry {
  private readonly toggleListeners: ((gatewayId: number, active: boolean) => void)[] = [];
  private readonly settingsListeners: ((gatewayIds: number[]) => void)[] = [];

  constructor(
    private readonly repository: GatewayRepository,
    private readonly keys: Pick<KeysService, "create" | "importGatewayKey">,
    private readonly events?: Pick<EventsService, "emitMany">,
  ) {}

  /**
   * Emits `gateway_online` or `gateway_offline` for a gateway whose status just changed. Changes that
   * come together (thousands of phones reconnecting after a restart) are read and recorded in one
   * statement each.
   */
  private statusChanged(gatewayId: number): Promise<void> {
    return this.statusEvents.add(gatewayId);
  }

  private readonly statusEvents = new Batcher<number, void>(async (ids) => {
    if (this.events === undefined) return ids.map(() => undefined);
    const rows = await this.repository.statusRows([...new Set(ids)]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    const at = new Date().toISOString();
    await this.events.emitMany(
      ids.flatMap((id) => {
        const row = byId.get(id);
        if (row === undefined) return [];
        return [
          {
            event: row.status === "online" ? "gateway_online" : "gateway_offline",
            gateway_id: row.device_id,
            name: row.name,
            status: row.status,
            last_heartbeat_at: row.last_heartbeat_at === null ? null : new Date(row.last_heartbeat_at).toISOString(),
            timestamp: at,
          } as const,
        ];
      }),
    );
    return ids.map(() => undefined);
  }, livenessBatches);

  /**
   * Brings along a phone of the original system by the SHA-256 digest of its gateway key: the gateway
   * is registered when missing (in one transaction with its key), and the key is added to it.
   * Returns whether the key is new (false: that digest was imported before).
   */
  async importPhone(input: { deviceId: string; sha256: string; name?: string }): Promise<boolean> {
    const deviceId = requiredText(input.deviceId, "device_id");
    const name = input.name === undefined || input.name.trim() === "" ? deviceId : requiredText(input.name, "name");
    return this.repository.transaction(async (em) => {
      const gateway =
        (await this.repository.findByDeviceId(deviceId)) ?? (await this.repository.insert(deviceId, name, {}, em));
      const key = await this.keys.importGatewayKey({ gatewayId: gateway.id, name, sha256: input.sha256 }, em);
      return key !== undefined;
    });
  }

  /**
   * Registers a device and issues its key, in one transaction (with `also`, when given: what else
   * the registration makes): there is never a gateway without a key or a key without a gateway. A
   * device id that is already registered is refused.
   */
  async register<T = undefined>(
    input: { deviceId: string; name: string; metadata?: GatewayMetadata; accountKeyId?: number },
    also?: (em: EntityManager, gateway: GatewayRecord) => Promise<T>,
  ): Promise<{ gateway: GatewayRecord; apiKey: string; also: T }> {
    const deviceId = requiredText(input.deviceId, "device_id");
    const name = input.name.trim() === "" ? deviceId : requiredText(input.name, "name");
    try {
      return await this.repository.transaction(async (em) => {
        const gateway = await this.repository.insert(deviceId, name, input.metadata ?? {}, em, input.accountKeyId);
        const { key } = await this.keys.create({ scope: "gateway", name, gatewayId: gateway.id }, em);
        return { gateway, apiKey: key, also: (also === undefined ? undefined : await also(em, gateway)) as T };
      });
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        throw invalid("device_id has already been taken");
      }
      throw error;
    }
  }

  /** Hears of phones running the SMSGate app whose settings changed (each must be told). */
  onSmsGateSettingsChanged(listener: (gatewayIds: number[]) => void): void {
    this.settingsListeners.push(listener);
  }

  /** What each phone running the SMSGate app (or the one named: none when it is not one) is told to do. */
  async smsGateSettings(deviceId?: string): Promise<{ deviceId: string; settings: StoredSmsGateSettings }[]> {
    const rows = await this.repository.smsGatePhones(deviceId);
    return rows.map((row) => ({ deviceId: row.device_id, settings: row.settings }));
  }

  /**
   * Changes what one phone running the SMSGate app (or every one) is told to do: the fields left out
   * keep their values, or (`replace`) take the app's own again. The phones are told
   * (`onSmsGateSettingsChanged`).
   */
  async updateSmsGateSettings(
    patch: StoredSmsGateSettings,
    deviceId?: string,
    options: { replace?: boolean } = {},
  ): Promise<{ deviceId: string; settings: StoredSmsGateSettings }[]> {
    const replace = options.replace === true;
    // Checked against each phone's current settings (the interval's bounds), then changed in one statement.
    const current = await this.smsGateSettings(deviceId);
    if (deviceId !== undefined && current.length === 0) {
      throw invalid("gateway_id is not a phone running the SMSGate app");
    }
    if (!replace) for (const phone of current) checkedSettings(patch, phone.settings);
    const checked = checkedSettings(patch);
    const rows = await this.repository.setSmsGateSettings(checked, deviceId, replace);
    for (const listener of this.settingsListeners) listener(rows.map((row) => row.id));
    return rows.map((row) => ({ deviceId: row.device_id, settings: row.settings }));
  }

  /** Merges what a device said of itself into its metadata (a key set to null is removed). */
  updateMetadata(gatewayId: number, patch: GatewayMetadata): Promise<void> {
    return this.repository.mergeMetadata(gatewayId, patch);
  }

  /**
   * Records a heartbeat: the gateway is online (unless it says it is going offline), its health
   * figures are kept in `metadata`, and its last heartbeat time is now.
   */
  async heartbeat(gatewayId: number, input: HeartbeatInput): Promise<void> {
    const status = input.status === undefined || input.status === "" ? "online" : input.status;
    if (status !== "online" && status !== "offline") throw invalid("status must be online or offline");
    const reported: GatewayMetadata = { reported_at: new Date().toISOString() };
    const battery = inRange(input.batteryLevel, "battery_level", 0, 100);
    // Bars (0 to 4), or dBm as the original system's Android integration guide has devices report it.
    const signal =
      input.signalStrength !== undefined && input.signalStrength < 0
        ? inRange(input.signalStrength, "signal_strength in dBm", -150, -1)
        : inRange(input.signalStrength, "signal_strength", 0, 4);
    const queue = inRange(input.messagesInQueue, "messages_in_queue", 0, 1_000_000);
    if (battery !== undefined) reported.battery_level = battery;
    if (signal !== undefined) reported.signal_strength = signal;
    if (queue !== undefined) reported.messages_in_queue = queue;
    const changed = await this.repository.heartbeat(gatewayId, status, reported);
    if (changed === null) throw new DomainError("not_found", "Gateway not found");
    if (changed) await this.statusChanged(gatewayId);
  }

  /**
   * Records that the gateway is connected and alive: online, last heard from now. Returns whether it
   * was offline before, so callers can wake messages waiting for a gateway, and whether it is active.
   */
  async touch(gatewayId: number): Promise<{ wasOffline: boolean; active: boolean }> {
    const row = await this.repository.touch(gatewayId);
    const wasOffline = row?.was_offline ?? false;
    if (wasOffline) await this.statusChanged(gatewayId);
    return { wasOffline, active: row?.active ?? false };
  }

  /** Records that the gateway's live connection ended. */
  async markDisconnected(gatewayId: number): Promise<void> {
    if (await this.repository.markDisconnected(gatewayId)) await this.statusChanged(gatewayId);
  }

  /** Every gateway, by priority (highest first) then id. */
  async list(): Promise<GatewayRecord[]> {
    return this.repository.list();
  }

  /** The active gateways of an SMSGate account (its phones). */
  listOfAccount(accountKeyId: number): Promise<GatewayRecord[]> {
    return this.repository.listOfAccount(accountKeyId);
  }

  /** The gateway with this id, if it exists. */
  find(id: number): Promise<GatewayRecord | null> {
    return this.repository.find(id);
  }

  /** The gateway with this device id. */
  async findByDeviceId(deviceId: string): Promise<GatewayRecord> {
    const gateway = await this.repository.findByDeviceId(deviceId);
    if (gateway === null) throw new DomainError("not_found", `No gateway with device id ${deviceId}`);
    return gateway;
  }

  /** The id of the gateway with this device id, or null when none has it. */
  async idOf(deviceId: string): Promise<number | null> {
    return (await this.repository.findByDeviceId(deviceId))?.id ?? null;
  }

  /** Flips whether a gateway may be sent messages, atomically. */
  async toggle(id: number): Promise<GatewayToggle> {
    const row = await this.repository.toggle(id);
    if (row === undefined) throw new DomainError("not_found", "Gateway not found");
    for (const listener of this.toggleListeners) listener(row.id, row.active);
    return { id: row.id, deviceId: row.device_id, active: row.active };
  }

  /**
   * Changes a gateway's priority and whether it may be sent messages (what is unset stays); a change
   * of `active` is told like a toggle.
   */
  async update(
    id: number,
    change: { priority?: number | undefined; active?: boolean | undefined },
  ): Promise<GatewayRecord> {
    const { priority, active } = change;
    if (priority !== undefined && (!Number.isInteger(priority) || priority < -100 || priority > 100)) {
      throw invalid("priority must be from -100 to 100");
    }
    const row = await this.repository.update(id, priority ?? null, active ?? null);
    if (row === undefined) throw new DomainError("not_found", "Gateway not found");
    if (row.active !== row.was_active) for (const listener of this.toggleListeners) listener(id, row.active);
    const gateway = await this.repository.find(id);
    if (gateway === null) throw new DomainError("not_found", "Gateway not found");
    return gateway;
  }

  /** Hears of every toggle once it is recorded (every instance must stop or resume pushes at once). */
  onToggled(listener: (gatewayId: number, active: boolean) => void): void {
    this.toggleListeners.push(listener);
  }

  /**
   * Marks offline every online gateway whose last heartbeat is older than `timeoutSeconds`, and
   * returns them.
   */
  async markStaleOffline(timeoutSeconds: number): Promise<{ id: number; deviceId: string }[]> {
    const rows = await this.repository.markStaleOffline(timeoutSeconds);
    for (const row of rows) await this.statusChanged(row.id);
    return rows.map((row) => ({ id: row.id, deviceId: row.device_id }));
  }

  /** Counts one SMS the gateway received, in the caller's transaction; returns its device id. */
  countReceived(gatewayId: number, tx: Tx): Promise<string | null> {
    return this.repository.count(gatewayId, "received", tx);
  }

  /** Resets every gateway's daily counters (at midnight); returns how many gateways. */
  resetDailyCounters(): Promise<number> {
    return this.repository.resetDailyCounters();
  }

  /** The gateways' figures of the admin stats. */
  figures(): Promise<GatewayCounts> {
    return this.repository.figures();
  }
}
