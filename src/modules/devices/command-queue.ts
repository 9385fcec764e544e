import type { DeviceCommand } from "./device.types.js";

/** A bounded queue of commands for one device connection, read as an async iterable. */
export class CommandQueue implements AsyncIterable<DeviceCommand> {
  private readonly items: DeviceCommand[] = [];
  private waiting: ((result: IteratorResult<DeviceCommand>) => void) | undefined;
  private closed = false;

  constructor(private readonly capacity: number) {}

  /**
   * Adds a command; false when the queue is full or closed. A receipt (`urgent`) is taken even when
   * the queue is full: the device would otherwise send its frame again and again.
   */
  push(command: DeviceCommand, urgent = false): boolean {
    if (this.closed || (!urgent && this.items.length >= this.capacity)) return false;
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      waiting({ value: command, done: false });
    } else {
      this.items.push(command);
    }
    return true;
  }

  /** Ends iteration once the queued commands are read. */
  close(): void {
    this.closed = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<DeviceCommand> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
