import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AccountService, AdminService } from "../../gen/smsgw/v1/admin_pb.js";
import { SmsService } from "../../gen/smsgw/v1/sms_pb.js";
import { WebhookService } from "../../gen/smsgw/v1/webhooks_pb.js";

/** Where the key is kept: for this tab only, never in a URL or a log. */
const storageKey = "smsgw.key";

export function storedKey(): string | null {
  return sessionStorage.getItem(storageKey);
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(storageKey);
  else sessionStorage.setItem(storageKey, key);
}

/** Told when the server refuses the key (wrong or revoked): the console goes back to sign-in. */
let onRefused: (reason: string) => void = () => undefined;
export function whenKeyRefused(listener: (reason: string) => void): void {
  onRefused = listener;
}

const authorize: Interceptor = (next) => async (req) => {
  const key = storedKey();
  if (key !== null) req.header.set("authorization", `Bearer ${key}`);
  try {
    return await next(req);
  } catch (error) {
    const failure = ConnectError.from(error);
    if (failure.code === Code.Unauthenticated) onRefused(failure.rawMessage);
    throw error;
  }
};

// Connect JSON over fetch, to the server that served the console.
const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [authorize] });

export const account = createClient(AccountService, transport);
export const admin = createClient(AdminService, transport);
export const sms = createClient(SmsService, transport);
export const webhooks = createClient(WebhookService, transport);

/** The message of a failed call, for people. */
export function describe(error: unknown): string {
  const failure = ConnectError.from(error);
  if (failure.code === Code.Unavailable) return `The server is unavailable: ${failure.rawMessage}`;
  return failure.rawMessage;
}

export function isAborted(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}

export const toDate = (value: Timestamp | undefined): Date | undefined =>
  value === undefined ? undefined : timestampDate(value);

export const fromInput = (value: string): Timestamp | undefined =>
  value === "" ? undefined : timestampFromDate(new Date(value));

/** A time for people: local date and time to the second. */
export function when(value: Timestamp | undefined): string {
  const date = toDate(value);
  return date === undefined ? "—" : date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** The time from `from` to `to`, for people. */
export function took(from: Timestamp | undefined, to: Timestamp | undefined): string {
  const start = toDate(from);
  const end = toDate(to);
  if (start === undefined || end === undefined) return "";
  const ms = end.getTime() - start.getTime();
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
