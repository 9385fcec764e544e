import { createServer } from "node:net";

/** Whether a TCP port can be bound on 127.0.0.1 right now. */
export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on 127.0.0.1 right now, below the kernel's ephemeral range (32768 and up): a
 * service stopped for a while gets its port back, and no outgoing connection takes it meanwhile.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await bindable(port)) return port;
  }
}
