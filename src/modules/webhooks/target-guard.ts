import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/** Addresses a webhook may not reach unless private targets are allowed: nothing but the public internet. */
const blocked = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  blocked.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  blocked.addSubnet(network, prefix, "ipv6");
}

/** Whether an address is loopback, private, link-local (cloud metadata), reserved or multicast. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return blocked.check(mapped, "ipv4");
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? "ipv4" : "ipv6");
}

/** A URL a webhook may be sent to, with the address to connect to (checked after DNS resolution). */
export interface ResolvedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** Why a target was refused; the message is safe to show. */
export class TargetRefused extends Error {}

/** Parses a webhook URL: http or https, with a host. */
export function parseTargetUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetRefused("url is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TargetRefused("url must be http or https");
  if (url.username !== "" || url.password !== "") throw new TargetRefused("url must not carry credentials");
  return url;
}

/**
 * Resolves a webhook URL and refuses it when any address it resolves to is not public (unless
 * `allowPrivate`). The caller connects to the returned address, so DNS cannot change it in between.
 */
export async function resolveTarget(raw: string, allowPrivate: boolean): Promise<ResolvedTarget> {
  const url = parseTargetUrl(raw);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: { address: string; family: number }[];
  try {
    addresses =
      isIP(host) === 0 ? await lookup(host, { all: true, verbatim: true }) : [{ address: host, family: isIP(host) }];
  } catch {
    throw new TargetRefused(`url host ${host} does not resolve`);
  }
  if (!allowPrivate && addresses.some((entry) => isPrivateAddress(entry.address))) {
    throw new TargetRefused("url points to a private, loopback or link-local address");
  }
  const first = addresses[0];
  if (first === undefined) throw new TargetRefused(`url host ${host} does not resolve`);
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}
