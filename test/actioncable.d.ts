// The parts of the official Action Cable client the tests use (the package ships no types).
declare module "@rails/actioncable" {
  export interface Subscription {
    identifier: string;
    perform(action: string, data?: Record<string, unknown>): boolean;
    unsubscribe(): void;
  }
  export interface Consumer {
    subscriptions: {
      create(
        channel: string | Record<string, unknown>,
        mixin: {
          connected?(): void;
          disconnected?(details?: { willAttemptReconnect: boolean }): void;
          rejected?(): void;
          received?(data: unknown): void;
        },
      ): Subscription;
    };
    connect(): void;
    disconnect(): void;
  }
  export function createConsumer(url: string): Consumer;
  export const adapters: { WebSocket: unknown; logger: unknown };
}
