import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { type ResolvedTarget, resolveTarget, TargetRefused } from "./target-guard.js";

/** How one HTTP attempt ended. */
export interface AttemptResult {
  outcome: "succeeded" | "retry" | "give_up";
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  /** From a `Retry-After` header on 429 or 503. */
  retryAfterMs: number | null;
}

/** The headers SMSGate signs a webhook with: the hex HMAC-SHA256 of the body followed by the timestamp. */
export function smsGateSignatureHeaders(key: string, body: string, timestampSeconds: number): Record<string, string> {
  const timestamp = String(timestampSeconds);
  return {
    "x-signature": createHmac("sha256", key)
      .update(body + timestamp)
      .digest("hex"),
    "x-timestamp": timestamp,
  };
}

/** The headers that sign a body: the original's HMAC of the body, and one over timestamp and body. */
export function signatureHeaders(secret: string, body: string, timestampSeconds: number): Record<string, string> {
  const hmac = (data: string) => createHmac("sha256", secret).update(data).digest("hex");
  return {
    "x-webhook-signature": hmac(body),
    "x-webhook-timestamp": String(timestampSeconds),
    "x-webhook-signature-v2": hmac(`${timestampSeconds}.${body}`),
  };
}

function retryAfterMs(header: string | undefined): number | null {
  if (header === undefined) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function classify(statusCode: number): AttemptResult["outcome"] {
  if (statusCode >= 200 && statusCode < 300) return "succeeded";
  if (statusCode === 408 || statusCode === 429 || statusCode >= 500) return "retry";
  return "give_up";
}

/**
 * Kept-alive connections per endpoint, so that a busy endpoint is not paid a TCP (and TLS) handshake
 * per delivery: one agent per checked address, port and host name (a pooled socket only ever leads to
 * the address the guard checked), at most `maxPooledEndpoints` of them, the least recently used
 * dropped first. An idle socket is closed after `idleSocketMs`, before common servers close theirs
 * (Node's 5 s), so that a delivery seldom meets a socket the endpoint has just closed.
 */
const maxPooledEndpoints = 256;
const idleSocketMs = 4000;
const socketsPerEndpoint = 16;
const agents = new Map<string, http.Agent>();

function agentFor(target: ResolvedTarget): http.Agent {
  const key = `${target.url.protocol}//${target.address}:${target.url.port}/${target.url.hostname}`;
  const known = agents.get(key);
  if (known !== undefined) {
    // Most recently used last.
    agents.delete(key);
    agents.set(key, known);
    return known;
  }
  const options = { keepAlive: true, maxSockets: socketsPerEndpoint, maxFreeSockets: 4, timeout: idleSocketMs };
  const agent = target.url.protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
  agents.set(key, agent);
  if (agents.size > maxPooledEndpoints) {
    const [oldest] = agents.keys();
    if (oldest !== undefined) {
      agents.get(oldest)?.destroy();
      agents.delete(oldest);
    }
  }
  return agent;
}

function post(
  target: ResolvedTarget,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ statusCode: number; retryAfter: string | undefined }> {
  const client = target.url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      target.url,
      {
        method: "POST",
        agent: agentFor(target),
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        // Connect to the address that was checked, so DNS cannot point elsewhere in between.
        lookup: (_hostname, options, callback) => {
          if ((options as { all?: boolean }).all) callback(null, [{ address: target.address, family: target.family }]);
          else callback(null, target.address, target.family);
        },
        timeout: timeoutMs,
      },
      (response) => {
        response.resume();
        response.on("end", () =>
          resolve({ statusCode: response.statusCode ?? 0, retryAfter: response.headers["retry-after"] }),
        );
        response.on("error", reject);
      },
    );
    const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", reject);
    request.on("close", () => clearTimeout(deadline));
    request.end(body);
  });
}

/**
 * POSTs a JSON body to a webhook URL once: public addresses only unless `allowPrivate`, a timeout,
 * no redirects followed. Never throws: every failure is an outcome with its error.
 */
export async function sendWebhook(input: {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  allowPrivate: boolean;
}): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let target: ResolvedTarget;
  try {
    target = await resolveTarget(input.url, input.allowPrivate);
  } catch (error) {
    const message = error instanceof TargetRefused ? error.message : String(error);
    return { outcome: "give_up", statusCode: null, durationMs: elapsed(), error: message, retryAfterMs: null };
  }
  try {
    const { statusCode, retryAfter } = await post(
      target,
      input.body,
      { "content-type": "application/json", "user-agent": "smsgw-webhooks/1", ...input.headers },
      input.timeoutMs,
    );
    const outcome = classify(statusCode);
    return {
      outcome,
      statusCode,
      durationMs: elapsed(),
      error: outcome === "succeeded" ? null : `HTTP ${statusCode}`,
      retryAfterMs: statusCode === 429 || statusCode === 503 ? retryAfterMs(retryAfter) : null,
    };
  } catch (error) {
    return {
      outcome: "retry",
      statusCode: null,
      durationMs: elapsed(),
      error: error instanceof Error ? error.message : String(error),
      retryAfterMs: null,
    };
  }
}
