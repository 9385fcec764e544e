import type { Logger } from "pino";
import { DomainError } from "../../shared/errors.js";
import type { MessageRepository } from "./message.repository.js";

/** How many accepted messages may wait for a gateway before sends are refused. */
export interface BacklogLimits {
  perKey: number;
  total: number;
  /** What a refused sender is told to wait before trying again. */
  retryAfterSeconds: number;
}

/**
 * The backlog of accepted messages that no gateway has been given yet (due now, `queued`), per
 * client key and in total, across every instance: counted in the database every `refreshMs` in the
 * background, and kept up to date in between with what this instance accepts. Admission never waits
 * on the count: the accept path stays one insert.
 */
export class Backlog {
  private perKey = new Map<number, number>();
  private total = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When a send was last refused (ms since the epoch). */
  private refusedAt = 0;

  constructor(
    private readonly repository: MessageRepository,
    private readonly limits: BacklogLimits,
    private readonly logger: Logger,
    private readonly refreshMs = 500,
  ) {}

  /** Refuses `count` more messages from `keyId` with 503 and Retry-After when the backlog is full. */
  admit(keyId: number, count: number): void {
    this.timer ??= this.startRefreshing();
    const mine = this.perKey.get(keyId) ?? 0;
    if (this.total + count > this.limits.total || mine + count > this.limits.perKey) {
      this.refusedAt = Date.now();
      throw new DomainError(
        "unavailable",
        "Too many messages are waiting to be sent; try again shortly",
        this.limits.retryAfterSeconds,
      );
    }
    this.total += count;
    this.perKey.set(keyId, mine + count);
  }

  /**
   * Whether sends were refused in the last second: the backlog is at its limit, so draining it is
   * what lets senders in again (the starter then does not make way for accepting).
   */
  refusing(): boolean {
    return Date.now() - this.refusedAt < 1000;
  }

  private startRefreshing(): NodeJS.Timeout {
    const timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.logger.warn({ err: error }, "counting the backlog failed"));
    }, this.refreshMs);
    timer.unref();
    return timer;
  }

  private async refresh(): Promise<void> {
    const rows = await this.repository.backlog();
    this.perKey = new Map(rows.flatMap((row) => (row.client_key_id === null ? [] : [[row.client_key_id, row.count]])));
    this.total = rows.reduce((sum, row) => sum + row.count, 0);
  }

  /** Stops counting. */
  stop(): void {
    clearInterval(this.timer);
  }
}
