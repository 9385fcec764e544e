import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { DomainError, type DomainErrorCode } from "../shared/errors.js";
import { outageMessage, outageOf } from "../shared/outage.js";

/** When a caller turned away by an outage may try again. */
const outageRetrySeconds = 5;

/** Each domain error code's Connect code and REST status: the one place that decides them. */
const table: Record<DomainErrorCode, { connect: Code; http: number }> = {
  bad_request: { connect: Code.InvalidArgument, http: 400 },
  unauthenticated: { connect: Code.Unauthenticated, http: 401 },
  permission_denied: { connect: Code.PermissionDenied, http: 403 },
  not_found: { connect: Code.NotFound, http: 404 },
  conflict: { connect: Code.AlreadyExists, http: 409 },
  validation: { connect: Code.InvalidArgument, http: 422 },
  rate_limited: { connect: Code.ResourceExhausted, http: 429 },
  unimplemented: { connect: Code.Unimplemented, http: 501 },
  unavailable: { connect: Code.Unavailable, http: 503 },
  internal: { connect: Code.Internal, http: 500 },
};

/** REST statuses for Connect errors that did not come from a domain error (the framework's own). */
const httpByConnectCode: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.ResourceExhausted]: 429,
  [Code.Unimplemented]: 501,
  [Code.Unavailable]: 503,
  [Code.DeadlineExceeded]: 504,
  [Code.Canceled]: 499,
};

/** The error metadata header that carries the domain code across the in-process router. */
const domainCodeHeader = "smsgw-error-code";

const genericMessage = "Internal server error";

/**
 * Turns anything a handler threw into the ConnectError the caller sees. Domain errors keep their
 * message; anything else is logged with the request id and reported as a generic internal error.
 */
export function toConnectError(error: unknown, logger: Logger, requestId: string | undefined): ConnectError {
  if (error instanceof DomainError) {
    const metadata = new Headers({ [domainCodeHeader]: error.code });
    if (error.retryAfterSeconds !== undefined) metadata.set("retry-after", String(error.retryAfterSeconds));
    return new ConnectError(error.message, table[error.code].connect, metadata);
  }
  if (error instanceof ConnectError && error.code !== Code.Internal && error.code !== Code.Unknown) {
    return error;
  }
  const outage = outageOf(error);
  if (outage !== undefined) {
    logger.warn({ err: error, requestId, dependency: outage }, "a dependency did not answer");
    return toConnectError(new DomainError("unavailable", outageMessage(outage), outageRetrySeconds), logger, requestId);
  }
  logger.error({ err: error, requestId }, "unexpected error");
  return new ConnectError(genericMessage, Code.Internal);
}

/** The HTTP status of a domain error. */
export function httpStatusOfDomain(error: DomainError): number {
  return table[error.code].http;
}

/** The REST status for an error that came back through the router. */
export function httpStatusOf(error: ConnectError): number {
  const domainCode = error.metadata.get(domainCodeHeader) as DomainErrorCode | null;
  if (domainCode !== null && domainCode in table) return table[domainCode].http;
  return httpByConnectCode[error.code] ?? 500;
}

/** The REST body for an error: `{"error": "..."}`, never internal detail. */
export function restErrorBody(error: ConnectError, status: number): { error: string } {
  return { error: status >= 500 && status !== 501 && status !== 503 ? genericMessage : error.rawMessage };
}
