import { tuning } from "../tuning.js";

/**
 * Client requests (not device streams) this process is serving, and whether clients are sending
 * hard: `threshold` or more in flight at some moment of the last `holdMs`. Sends stored by one insert
 * are answered together, so the count dips to nothing between waves of a burst; a lull must last
 * `holdMs` before the process counts as quiet.
 */
export class ClientLoad {
  inFlight = 0;
  private hardUntil = 0;

  constructor(
    private readonly threshold = tuning.clientsBusyThreshold.value,
    private readonly holdMs = tuning.clientsBusyHoldMs.value,
    private readonly now: () => number = Date.now,
  ) {}

  began(): void {
    this.inFlight += 1;
    if (this.inFlight >= this.threshold) this.hardUntil = this.now() + this.holdMs;
  }

  ended(): void {
    this.inFlight -= 1;
  }

  get busy(): boolean {
    return this.inFlight >= this.threshold || this.now() < this.hardUntil;
  }
}
