/**
 * The closed set of error codes the API can answer with. `src/rpc/errors.ts` maps each to a Connect
 * code and an HTTP status in one table; nothing else decides statuses.
 */
export type DomainErrorCode =
  | "bad_request"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "conflict"
  | "validation"
  | "rate_limited"
  | "unimplemented"
  | "unavailable"
  | "internal";

/** An error whose message is safe to show to the caller. */
export class DomainError extends Error {
  override name = "DomainError";

  constructor(
    readonly code: DomainErrorCode,
    message: string,
    /** For `rate_limited`: when the caller may try again. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** A required field is missing or empty (400, like Rails' `ParameterMissing`). */
export function missing(field: string): DomainError {
  return new DomainError("bad_request", `param is missing or the value is empty: ${field}`);
}

/** A value is present but not acceptable (422). */
export function invalid(message: string): DomainError {
  return new DomainError("validation", message);
}
