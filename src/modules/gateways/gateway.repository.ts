import type { EntityManager } from "@mikro-orm/postgresql";
import { Sql, type Tx } from "../../db/sql.js";
import { Batcher, type BatcherOptions } from "../../shared/batcher.js";
import { tuning } from "../../tuning.js";
import { GatewayEntity, type GatewayMetadata, type GatewayRecord } from "./gateway.entity.js";
import type { StoredSmsGateSettings } from "./smsgate-settings.js";

/**
 * The gateways' part of a statement that another module writes, so that a report and its count are
 * one statement (one round trip, nothing half-done): the body of a CTE that counts one SMS, today and
 * in all, on the gateway of each row of `source` (a from-item with a `gateway_id` column). Returns
 * the counted gateways' `id` and `device_id`.
 */
export function counting(direction: "sent" | "received", source: string): string {
  return `update gateways set messages_${direction}_today = messages_${direction}_today + 1,
              total_messages_${direction} = total_messages_${direction} + 1, updated_at = now()
        where id in (select gateway_id from ${source}) returning id, device_id`;
}

/**
 * How the liveness of many phones (heartbeats, touches, disconnects, their status events) is
 * batched: a batch fails as a whole (the database did not answer), never for one of its rows.
 */
export const livenessBatches: BatcherOptions = {
  maxBatch: tuning.livenessBatchSize.value,
  concurrency: tuning.livenessBatchesInFlight.value,
  retryAlone: false,
};

/** For each of `ids`, whether it is that id's first place in the list (a gateway given twice in a batch). */
function firsts(ids: readonly number[]): boolean[] {
  const seen = new Set<number>();
  return ids.map((id) => {
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The statements that count one SMS on the gateway given as a parameter. */
const countSql = {
  sent: counting("sent", "(values (?::int)) as one(gateway_id)"),
  received: counting("received", "(values (?::int)) as one(gateway_id)"),
};

/** A phone running the SMSGate app, with what it is told to do. */
export interface SmsGatePhoneRow {
  id: number;
  device_id: string;
  settings: StoredSmsGateSettings;
}

/** A gateway's row as an event about it needs it. */
export interface GatewayStatusRow {
  device_id: string;
  name: string;
  status: "online" | "offline";
  last_heartbeat_at: string | null;
}

/** The gateways' figures of the admin stats. */
export interface GatewayCounts {
  total: number;
  active: number;
  online: number;
  received_today: number;
  total_received: number;
}

/**
 * Every statement on `gateways`: the only code that writes it. Heartbeats, connections and reports
 * pass through these statements all the time, so most are written by hand.
 */
export class GatewayRepository {
  private readonly sql: Sql;

  constructor(private readonly em: EntityManager) {
    this.sql = new Sql(em);
  }

  /** Runs `work` in one transaction of the ORM's (the registration of a gateway and its key). */
  transaction<T>(work: (em: EntityManager) => Promise<T>): Promise<T> {
    return this.em.fork().transactional(work);
  }

  /** Stores a new gateway in `em`'s transaction. */
  async insert(
    deviceId: string,
    name: string,
    metadata: GatewayMetadata,
    em: EntityManager,
    accountKeyId: number | null = null,
  ): Promise<GatewayRecord> {
    const gateway = em.create(GatewayEntity, { deviceId, name, metadata, accountKeyId });
    await em.flush();
    return gateway;
  }

  /** Merges `patch` into the gateway's metadata (a key set to null is removed). */
  async mergeMetadata(gatewayId: number, patch: GatewayMetadata): Promise<void> {
    await this.sql.all(
      `update gateways set metadata = jsonb_strip_nulls(metadata || ?::jsonb), updated_at = now() where id = ?`,
      [JSON.stringify(patch), gatewayId],
    );
  }

  /** Phones running the SMSGate app (one, by device id, when given), with their settings. */
  smsGatePhones(deviceId?: string): Promise<SmsGatePhoneRow[]> {
    return this.sql.all(
      `select id, device_id, coalesce(metadata->'smsgate_settings', '{}') as settings from gateways
        where metadata->>'app' = 'SMSGate' and (?::varchar is null or device_id = ?) order by id`,
      [deviceId ?? null, deviceId ?? null],
    );
  }

  /**
   * Merges `patch` into the settings of the phones running the SMSGate app (one, when given), or
   * (`replace`) makes it their settings.
   */
  setSmsGateSettings(
    patch: StoredSmsGateSettings,
    deviceId: string | undefined,
    replace: boolean,
  ): Promise<SmsGatePhoneRow[]> {
    return this.sql.all(
      `update gateways set metadata = jsonb_set(metadata, '{smsgate_settings}',
                case when ? then '{}'::jsonb else coalesce(metadata->'smsgate_settings', '{}') end || ?::jsonb),
                updated_at = now()
        where metadata->>'app' = 'SMSGate' and (?::varchar is null or device_id = ?)
        returning id, device_id, metadata->'smsgate_settings' as settings`,
      [replace, JSON.stringify(patch), deviceId ?? null, deviceId ?? null],
    );
  }

  /** The status rows of these gateways (those that exist), in no particular order. */
  statusRows(gatewayIds: number[]): Promise<(GatewayStatusRow & { id: number })[]> {
    return this.sql.all(
      "select id, device_id, name, status, last_heartbeat_at from gateways where id = any(?::int[])",
      [gatewayIds],
    );
  }

  /** Every gateway, by priority (highest first) then id. */
  list(): Promise<GatewayRecord[]> {
    return this.em.fork().find(GatewayEntity, {}, { orderBy: { priority: "desc", id: "asc" } });
  }

  /** The active gateways of an account, as `list` orders them. */
  listOfAccount(accountKeyId: number): Promise<GatewayRecord[]> {
    return this.em
      .fork()
      .find(GatewayEntity, { accountKeyId, active: true }, { orderBy: { priority: "desc", id: "asc" } });
  }

  find(id: number): Promise<GatewayRecord | null> {
    return this.em.fork().findOne(GatewayEntity, { id });
  }

  findByDeviceId(deviceId: string): Promise<GatewayRecord | null> {
    return this.em.fork().findOne(GatewayEntity, { deviceId });
  }

  /**
   * Records a heartbeat: status, now as the last heartbeat, the reported figures merged into
   * `metadata`. Returns whether its status changed; null when the gateway does not exist. Heartbeats
   * that arrive together (thousands of phones each beat every half minute) share one statement.
   */
  heartbeat(gatewayId: number, status: "online" | "offline", reported: GatewayMetadata): Promise<boolean | null> {
    return this.heartbeats.add({ gatewayId, status, reported });
  }

  private readonly heartbeats = new Batcher<
    { gatewayId: number; status: "online" | "offline"; reported: GatewayMetadata },
    boolean | null
  >(async (items) => {
    // One row per gateway in a statement: the last heartbeat of a gateway given twice stands.
    const last = new Map(items.map((item) => [item.gatewayId, item]));
    const rows = await this.sql.all<{ id: number; changed: boolean }>(
      `update gateways g set status = v.status, last_heartbeat_at = now(), updated_at = now(),
                metadata = g.metadata || v.reported
           from unnest(?::int[], ?::varchar[], ?::jsonb[]) as v(id, status, reported), gateways old
          where g.id = v.id and old.id = v.id
          returning g.id, old.status <> g.status as changed`,
      [
        [...last.keys()],
        [...last.values()].map((item) => item.status),
        [...last.values()].map((item) => JSON.stringify(item.reported)),
      ],
    );
    const changed = new Map(rows.map((row) => [row.id, row.changed]));
    // Only the first of a gateway's heartbeats in the batch can have changed its status.
    const first = firsts(items.map((item) => item.gatewayId));
    return items.map((item, i) => {
      const value = changed.get(item.gatewayId);
      return value === undefined ? null : first[i] === true && value;
    });
  }, livenessBatches);

  /**
   * Online, last heard from now; whether it was offline before, and whether it is active (undefined
   * when it does not exist). Touches that arrive together (phones connecting at once, and each
   * connection's refresh) share one statement.
   */
  touch(gatewayId: number): Promise<{ was_offline: boolean; active: boolean } | undefined> {
    return this.touches.add(gatewayId);
  }

  private readonly touches = new Batcher<number, { was_offline: boolean; active: boolean } | undefined>(async (ids) => {
    const rows = await this.sql.all<{ id: number; was_offline: boolean; active: boolean }>(
      `update gateways g set status = 'online', last_heartbeat_at = now(), updated_at = now()
           from gateways old where old.id = g.id and g.id = any(?::int[])
          returning g.id, old.status = 'offline' as was_offline, g.active`,
      [[...new Set(ids)]],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    // A gateway touched twice in one batch was offline for the first only.
    const first = firsts(ids);
    return ids.map((id, i) => {
      const row = byId.get(id);
      return row === undefined ? undefined : { was_offline: first[i] === true && row.was_offline, active: row.active };
    });
  }, livenessBatches);

  /**
   * Offline after its live connection ended; whether it was online. Phones that go together (an
   * instance shutting down lets go of all of its own) share one statement.
   */
  markDisconnected(gatewayId: number): Promise<boolean> {
    return this.disconnects.add(gatewayId);
  }

  private readonly disconnects = new Batcher<number, boolean>(async (ids) => {
    const rows = await this.sql.all<{ id: number }>(
      "update gateways set status = 'offline', updated_at = now() where id = any(?::int[]) and status = 'online' returning id",
      [[...new Set(ids)]],
    );
    const wentOffline = new Set(rows.map((row) => row.id));
    // A gateway given twice in one batch went offline for the first only.
    const first = firsts(ids);
    return ids.map((id, i) => first[i] === true && wentOffline.has(id));
  }, livenessBatches);

  toggle(id: number): Promise<{ id: number; device_id: string; active: boolean } | undefined> {
    return this.sql.one(
      "update gateways set active = not active, updated_at = now() where id = ? returning id, device_id, active",
      [id],
    );
  }

  /** Sets what is given (the rest stays); the new and the former `active`. */
  update(
    id: number,
    priority: number | null,
    active: boolean | null,
  ): Promise<{ active: boolean; was_active: boolean } | undefined> {
    return this.sql.one(
      `update gateways g set priority = coalesce(?, g.priority), active = coalesce(?, g.active), updated_at = now()
         from gateways old where g.id = ? and old.id = g.id returning g.active, old.active as was_active`,
      [priority, active, id],
    );
  }

  /** Marks offline every online gateway silent for longer than `timeoutSeconds`; returns them. */
  markStaleOffline(timeoutSeconds: number): Promise<{ id: number; device_id: string }[]> {
    return this.sql.all(
      `update gateways set status = 'offline', updated_at = now()
        where status = 'online'
          and (last_heartbeat_at is null or last_heartbeat_at < now() - make_interval(secs => ?))
        returning id, device_id`,
      [timeoutSeconds],
    );
  }

  /** Counts one SMS sent (or received) on the gateway, in `tx`; returns its device id. */
  async count(gatewayId: number, direction: "sent" | "received", tx: Tx): Promise<string | null> {
    const row = await this.sql.one<{ device_id: string }>(countSql[direction], [gatewayId], tx);
    return row?.device_id ?? null;
  }

  /** Resets every gateway's daily counters; returns how many gateways. */
  async resetDailyCounters(): Promise<number> {
    const rows = await this.sql.all(
      "update gateways set messages_sent_today = 0, messages_received_today = 0, updated_at = now() returning id",
    );
    return rows.length;
  }

  async figures(): Promise<GatewayCounts> {
    const row = await this.sql.one<GatewayCounts>(
      `select count(*)::int as total, count(*) filter (where active)::int as active,
              count(*) filter (where status = 'online')::int as online,
              coalesce(sum(messages_received_today), 0)::int as received_today,
              coalesce(sum(total_messages_received), 0)::int as total_received
         from gateways`,
    );
    return row ?? { total: 0, active: 0, online: 0, received_today: 0, total_received: 0 };
  }
}
