import type { EntityManager } from "@mikro-orm/postgresql";
import type { MessageRepository } from "./message.repository.js";

/** The `gateways` and `messages` figures of the admin stats. */
export interface SystemStats {
  gateways: { total: number; active: number; online: number; offline: number };
  messages: {
    totalSent: number;
    totalReceived: number;
    sentToday: number;
    receivedToday: number;
    totalToday: number;
    pending: number;
    failedToday: number;
  };
}

/** Counts gateways and messages; "today" starts at midnight in `timeZone`. */
export async function systemStats(
  em: EntityManager,
  messages: MessageRepository,
  timeZone: string,
): Promise<SystemStats> {
  const connection = em.getConnection();
  const [gateways] = await connection.execute<
    { total: number; active: number; online: number; received_today: number; total_received: number }[]
  >(
    `select count(*)::int as total, count(*) filter (where active)::int as active,
            count(*) filter (where status = 'online')::int as online,
            coalesce(sum(messages_received_today), 0)::int as received_today,
            coalesce(sum(total_messages_received), 0)::int as total_received
       from gateways`,
  );
  const figures = await messages.figures(timeZone);
  const g = gateways ?? { total: 0, active: 0, online: 0, received_today: 0, total_received: 0 };
  const m = figures ?? { total_sent: 0, sent_today: 0, pending: 0, failed_today: 0 };
  return {
    gateways: { total: g.total, active: g.active, online: g.online, offline: g.total - g.online },
    messages: {
      totalSent: m.total_sent,
      totalReceived: g.total_received,
      sentToday: m.sent_today,
      receivedToday: g.received_today,
      totalToday: m.sent_today + g.received_today,
      pending: m.pending,
      failedToday: m.failed_today,
    },
  };
}

/** Resets every gateway's daily counters (at midnight in the configured time zone). */
export async function resetDailyCounters(em: EntityManager): Promise<number> {
  const rows: { id: number }[] = await em
    .getConnection()
    .execute(
      "update gateways set messages_sent_today = 0, messages_received_today = 0, updated_at = now() returning id",
    );
  return rows.length;
}
