import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * Encrypts short secrets (webhook signing keys, the text of an OTP's SMS) at rest with AES-256-GCM,
 * under a key derived from the server's secret key base for one `purpose` (each purpose has its own
 * key). The stored form is `v1:` and base64url of nonce, tag and ciphertext.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(secretKeyBase: string, purpose = "webhook secrets v1") {
    this.key = Buffer.from(hkdfSync("sha256", secretKeyBase, "smsgw", purpose, 32));
  }

  seal(plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return `v1:${Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]).toString("base64url")}`;
  }

  open(sealed: string): string {
    if (!sealed.startsWith("v1:")) throw new Error("unknown secret format");
    const raw = Buffer.from(sealed.slice(3), "base64url");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  }
}
