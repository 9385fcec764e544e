import {
  type ConnectionLike,
  InternalConnectionLikeSymbol,
  type Metadata,
  type OperatorService,
  type WorkflowService,
} from "@temporalio/client";
import { NativeConnection } from "@temporalio/worker";
import type { Logger } from "pino";

/** What a call answers while Temporal has not been reached yet: gRPC's UNAVAILABLE, as a refused call would. */
function notYet(address: string): Error {
  return Object.assign(
    new Error(`14 UNAVAILABLE: Temporal at ${address} has not answered since this process started`),
    {
      code: 14,
      details: `Temporal at ${address} has not answered since this process started`,
      metadata: {},
    },
  );
}

/** A gRPC service whose every call fails at once as UNAVAILABLE (rpc names are read off the real service). */
function unavailableService<T extends object>(address: string): T {
  return new Proxy({} as T, {
    get: (_target, name) => (name === "then" ? undefined : () => Promise.reject(notYet(address))),
  });
}

/**
 * The process's connection to Temporal, which may come after the process does. A server started
 * while Temporal does not answer comes up all the same (only PostgreSQL is required to start): until
 * the first connection succeeds, every call fails at once as UNAVAILABLE, which the API answers as an
 * outage of the workflow engine (and which sends ride out: messages are stored and their workflows
 * started when Temporal comes). Meanwhile the link keeps trying, every `retryMs`.
 *
 * Once connected it is the native connection itself, shared by the client and this process's workers
 * (eager starts need that), and Temporal's own reconnects take over: the native client retries its
 * calls across a restart of the server.
 */
export class TemporalLink implements ConnectionLike {
  readonly plugins: ConnectionLike["plugins"] = [];
  private native: NativeConnection | undefined;
  private readonly waiting = new Set<(connection: NativeConnection) => void>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly offlineWorkflow: WorkflowService;
  private readonly offlineOperator: OperatorService;

  /** Tries once now; on failure keeps trying in the background (see `ready`). */
  static async open(address: string, logger: Logger, retryMs = 1000): Promise<TemporalLink> {
    const link = new TemporalLink(address, logger, retryMs);
    await link.attempt(true);
    return link;
  }

  private constructor(
    readonly address: string,
    private readonly logger: Logger,
    private readonly retryMs: number,
  ) {
    this.offlineWorkflow = unavailableService(address);
    this.offlineOperator = unavailableService(address);
    // Eager starts are asked for from the start: while not connected the start fails as UNAVAILABLE.
    Object.defineProperty(this, InternalConnectionLikeSymbol, { value: { supportsEagerStart: true } });
  }

  /** Whether Temporal has answered since this process started. */
  get connected(): boolean {
    return this.native !== undefined;
  }

  /** The native connection, once Temporal has answered (at once if it has). */
  ready(): Promise<NativeConnection> {
    if (this.native !== undefined) return Promise.resolve(this.native);
    return new Promise((resolve) => this.waiting.add(resolve));
  }

  get workflowService(): WorkflowService {
    return this.native?.workflowService ?? this.offlineWorkflow;
  }

  get operatorService(): OperatorService {
    return this.native?.operatorService ?? this.offlineOperator;
  }

  async ensureConnected(): Promise<void> {
    if (this.native === undefined) throw notYet(this.address);
  }

  withDeadline<R>(deadline: number | Date, fn: () => Promise<R>): Promise<R> {
    return this.native === undefined ? fn() : this.native.withDeadline(deadline, fn);
  }

  withMetadata<R>(metadata: Metadata, fn: () => Promise<R>): Promise<R> {
    return this.native === undefined ? fn() : this.native.withMetadata(metadata, fn);
  }

  withAbortSignal<R>(abortSignal: AbortSignal, fn: () => Promise<R>): Promise<R> {
    return this.native === undefined ? fn() : this.native.withAbortSignal(abortSignal, fn);
  }

  /** Stops trying, and closes the connection (the workers using it must have stopped). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.native?.close();
  }

  private async attempt(first: boolean): Promise<void> {
    if (this.closed) return;
    try {
      const connection = await NativeConnection.connect({ address: this.address });
      if (this.closed) {
        await connection.close();
        return;
      }
      this.native = connection;
      if (!first) this.logger.info({ address: this.address }, "Temporal answers: connected");
      for (const resolve of this.waiting) resolve(connection);
      this.waiting.clear();
    } catch (error) {
      if (first)
        this.logger.warn(
          { err: error, address: this.address },
          "Temporal does not answer at start; serving without it until it does",
        );
      this.timer = setTimeout(() => void this.attempt(false), this.retryMs);
      this.timer.unref();
    }
  }
}
