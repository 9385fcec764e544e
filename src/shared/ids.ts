import { randomBytes } from "node:crypto";

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

/** A random identifier of `length` lowercase letters and digits (about 5.2 bits each). */
export function randomToken(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = "";
  // Rejection sampling keeps every character equally likely: 252 is the largest multiple of 36 below 256.
  for (let i = 0; i < bytes.length && out.length < length; i++) {
    const byte = bytes[i] ?? 255;
    if (byte < 252) out += alphabet[byte % 36];
  }
  return out.length === length ? out : out + randomToken(length - out.length);
}

/** A new message id: `msg_` and 24 random characters. */
export function newMessageId(): string {
  return `msg_${randomToken(24)}`;
}
