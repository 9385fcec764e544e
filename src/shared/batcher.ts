/** How a `Batcher` groups the items it is given. */
export interface BatcherOptions {
  /** The most items one batch takes. */
  readonly maxBatch: number;
  /** The most batches running at once; further items wait for one to end and go in the next. */
  readonly concurrency: number;
  /**
   * Whether a batch of several that fails is run again one item at a time (the default), for when
   * one item can fail a batch (a bad row); false fails every item with the batch's error, for when
   * failures are the whole call's (a server that does not answer).
   */
  readonly retryAlone?: boolean;
}

interface Pending<I, O> {
  readonly item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Runs items given in the same turn of the event loop as one batch (group commit): the batch runs
 * once the loop has read what arrived with it (`setImmediate`), so a lone item waits for nothing
 * but that, while items that arrive together (or while `concurrency` batches are running) share one
 * round trip. `run` answers each item, in order. A batch of several that fails is run again one item
 * at a time, so that one bad item fails alone (unless `retryAlone` is false).
 */
export class Batcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions,
  ) {}

  /** Items waiting for a batch, and batches running (an idle batcher has neither). */
  get load(): { waiting: number; running: number } {
    return { waiting: this.queue.length, running: this.running };
  }

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.options.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.running < this.options.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.running += 1;
      // settle() answers every item, whatever happens: it never rejects.
      void this.settle(batch).finally(() => {
        this.running -= 1;
        this.schedule();
      });
    }
  }

  private async settle(batch: Pending<I, O>[]): Promise<void> {
    try {
      const results = await this.run(batch.map((pending) => pending.item));
      if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} got ${results.length} results`);
      for (const [i, pending] of batch.entries()) pending.resolve(results[i] as O);
    } catch (error) {
      if (batch.length === 1 || this.options.retryAlone === false) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // One bad item must not fail the others: each runs alone.
      await Promise.all(
        batch.map((pending) =>
          Promise.resolve([pending.item])
            .then((alone) => this.run(alone))
            .then(
              ([result]) => pending.resolve(result as O),
              (alone: unknown) => pending.reject(alone),
            ),
        ),
      );
    }
  }
}
