import { badRequest } from "../http.js";

// How the third-party API reads a query's or a body's values: SMSGate's formats, 400 otherwise.

/** A date: RFC 3339; 400 otherwise. */
export function dateOf(value: unknown, field: string): Date | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw badRequest(`${field} must be a date (RFC 3339)`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) throw badRequest(`${field} must be a date (RFC 3339)`);
  return new Date(ms);
}

/** A whole number in a query string; 400 otherwise. */
export function wholeOf(value: unknown, field: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string" || !/^-?\d{1,9}$/.test(value)) throw badRequest(`${field} must be a whole number`);
  return Number(value);
}

/** A boolean in a query string (`true`/`false`, `1`/`0`); 400 otherwise. */
export function flagOf(value: unknown, field: string): boolean {
  if (value === undefined || value === "") return false;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw badRequest(`${field} must be true or false`);
}

/** An optional field of a body: undefined when absent or null, 400 when `check` refuses it. */
export function optional<T>(
  body: Record<string, unknown>,
  field: string,
  type: string,
  check: (value: unknown) => boolean,
): T | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!check(value)) throw badRequest(`${field} must be ${type}`);
  return value as T;
}

/** A page of a list: `limit` (from 1 to `max`, `byDefault` unless given) and `offset` (at least 0); 400 otherwise. */
export function pageOf(
  query: Record<string, unknown>,
  byDefault: number,
  max: number,
): { limit: number; offset: number } {
  const limit = wholeOf(query.limit, "limit") ?? byDefault;
  const offset = wholeOf(query.offset, "offset") ?? 0;
  if (limit < 1 || limit > max) throw badRequest(`limit must be from 1 to ${max}`);
  if (offset < 0) throw badRequest("offset must be at least 0");
  return { limit, offset };
}
