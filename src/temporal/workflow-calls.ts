import {
  type Client,
  type SignalDefinition,
  type Workflow,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type WorkflowStartOptions,
} from "@temporalio/client";
import { tuning } from "../tuning.js";
import { isUnmappedSearchAttribute } from "./search-attributes.js";

/**
 * Starts a workflow whose id is a business id, at most once: a running one is kept
 * (`USE_EXISTING`), and a finished one is not started again (`REJECT_DUPLICATE`), since the business
 * object it moved has already moved. Resolves with whether this start handed the new workflow's
 * first task to this process's worker (an eager start).
 */
export async function startOnce<T extends Workflow>(
  client: Client,
  workflow: T,
  options: Omit<WorkflowStartOptions<T>, "workflowIdConflictPolicy" | "workflowIdReusePolicy">,
): Promise<boolean> {
  const deadline = Date.now() + unmappedRetryMs;
  for (;;) {
    try {
      const handle = await client.workflow.start(workflow, {
        ...options,
        workflowIdConflictPolicy: "USE_EXISTING",
        workflowIdReusePolicy: "REJECT_DUPLICATE",
      } as WorkflowStartOptions<T>);
      return handle.eagerlyStarted;
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return false;
      // A search attribute another instance added a moment ago, not yet taken in by this frontend.
      if (!isUnmappedSearchAttribute(error) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * How long a start refused for a search attribute the server has not taken in yet is tried again:
 * Temporal's frontends refresh their namespace cache every few seconds (2 s by default).
 */
const unmappedRetryMs = 10_000;

/** Signals a workflow; a workflow that finished (or never started) no longer cares, and is skipped. */
export async function signalIfRunning<Args extends unknown[]>(
  client: Client,
  workflowId: string,
  signal: SignalDefinition<Args>,
  ...args: Args
): Promise<void> {
  try {
    await client.workflow.getHandle(workflowId).signal(signal, ...args);
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError) && !String(error).includes("already completed")) throw error;
  }
}

/** Runs `work` over `items`, at most `concurrency` at a time. */
export async function eachLimited<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  });
  await Promise.all(lanes);
}

/**
 * Starts work in the background at a bounded pace: at most `concurrency` at a time, at most
 * `capacity` waiting. What does not fit is dropped (and `onOverflow` told): the caller has made sure
 * something else picks it up later (the message sweeper). While `busy()` says the process has more
 * urgent work (clients sending hard), lanes are parked, so accepting is not slowed by starting; once
 * the oldest id has waited `maxYieldMs`, up to `busyConcurrency` lanes go on all the same, so nothing
 * starves under sustained load (where the backlog limit turns senders away). Parked lanes cost one
 * shared timer, not one each.
 */
export class BoundedStarter {
  private readonly waiting: string[] = [];
  /** When each waiting id was queued; one asked for twice (by the accept path and the sweeper) starts once. */
  private readonly queued = new Map<string, number>();
  private running = 0;
  /** Lanes starting while the process is busy, because their id was overdue. */
  private overdue = 0;
  private readonly parked: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly concurrency: number,
    private readonly capacity: number,
    private readonly start: (id: string) => Promise<void>,
    private readonly onError: (error: unknown, id: string) => void,
    private readonly onOverflow: (dropped: number) => void,
    private readonly busy: () => boolean = () => false,
    private readonly maxYieldMs = tuning.starterMakeWayMs.value,
    private readonly busyConcurrency = 1,
    private readonly pollMs = 5,
  ) {}

  /** Queues ids to start (those already waiting are skipped); returns at once. */
  enqueue(ids: readonly string[]): void {
    const fresh = ids.filter((id) => !this.queued.has(id));
    const room = Math.max(0, this.capacity - this.waiting.length);
    for (const id of fresh.slice(0, room)) {
      this.waiting.push(id);
      this.queued.set(id, Date.now());
    }
    if (fresh.length > room) this.onOverflow(fresh.length - room);
    while (this.running < this.concurrency && this.waiting.length > 0) void this.lane();
  }

  private oldestWaitMs(): number {
    const oldest = this.waiting[0];
    return oldest === undefined ? 0 : Date.now() - (this.queued.get(oldest) ?? Date.now());
  }

  /** Whether a lane may start now while the process is busy. */
  private mayGoWhileBusy(): boolean {
    return this.oldestWaitMs() > this.maxYieldMs && this.overdue < this.busyConcurrency;
  }

  /** Wakes parked lanes as the process's load allows: every one when it is idle, else the overdue share. */
  private watch(): void {
    if (this.timer !== undefined || this.parked.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      let wake = 0;
      if (!this.busy()) wake = this.parked.length;
      else if (this.mayGoWhileBusy()) wake = this.busyConcurrency - this.overdue;
      for (const resume of this.parked.splice(0, wake)) resume();
      this.watch();
    }, this.pollMs);
    this.timer.unref();
  }

  private async lane(): Promise<void> {
    this.running++;
    try {
      while (this.waiting.length > 0) {
        let overdue = false;
        if (this.busy()) {
          if (!this.mayGoWhileBusy()) {
            await new Promise<void>((resume) => {
              this.parked.push(resume);
              this.watch();
            });
            continue;
          }
          overdue = true;
        }
        const id = this.waiting.shift();
        if (id === undefined) return;
        this.queued.delete(id);
        if (overdue) this.overdue++;
        try {
          await this.start(id).catch((error: unknown) => this.onError(error, id));
        } finally {
          if (overdue) this.overdue--;
        }
      }
    } finally {
      this.running--;
    }
  }
}

/**
 * In-process notices that a workflow this process started has taken its first step here. A starter
 * that waits for them paces itself by what its worker gets done, not by the start call (which
 * returns long before): workflows then run in the order they were started, and each start finds a
 * free slot for the eager first task instead of queueing in the engine behind later ones.
 */
export class FirstSteps {
  private readonly waiting = new Map<string, Set<() => void>>();
  constructor(
    /** Whether this process runs the worker that takes the first steps (else nobody would say so). */
    private readonly watching: boolean,
  ) {}

  /**
   * Runs `start` and, when it says that it handed the first task to this process's worker (an eager
   * start), resolves once `id`'s first step is done here, or after `timeoutMs` at most. A start that
   * found the workflow already running or finished (the sweeper asking again) does not wait.
   */
  async around(id: string, timeoutMs: number, start: () => Promise<boolean>): Promise<void> {
    if (!this.watching) {
      await start();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    let resume: () => void = () => undefined;
    // Registered before the start: an eager first step can end before the start call returns.
    const stepped = new Promise<void>((resolve) => {
      resume = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    const waiters = this.waiting.get(id) ?? new Set();
    waiters.add(resume);
    this.waiting.set(id, waiters);
    try {
      if (await start()) await stepped;
    } finally {
      clearTimeout(timer);
      waiters.delete(resume);
      if (waiters.size === 0 && this.waiting.get(id) === waiters) this.waiting.delete(id);
    }
  }

  /** Says that `id`'s first step is done. */
  done(id: string): void {
    for (const resume of this.waiting.get(id) ?? []) resume();
  }
}
