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

/** What the messages module counts for the stats; "today" starts at midnight in the configured time zone. */
export interface MessageFigures {
  total_sent: number;
  sent_today: number;
  pending: number;
  failed_today: number;
}

/** The admin stats from the gateways' figures (their owner's) and the messages' (this module's). */
export function statsOf(
  g: { total: number; active: number; online: number; received_today: number; total_received: number },
  m: MessageFigures,
): SystemStats {
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
