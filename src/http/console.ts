import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

/** The built console (`npm run build:console` writes console/dist; the build copies it to dist/console/dist). */
const builtPath = fileURLToPath(new URL("../../console/dist/", import.meta.url));

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};

/** Only this server: no CDN, no other origin, no inline script. */
const policy =
  "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The console's files, read once: path under /console/ to its bytes and type. */
async function load(): Promise<Map<string, { body: Buffer; type: string }>> {
  const files = new Map<string, { body: Buffer; type: string }>();
  const walk = async (folder: string, prefix: string) => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path, `${prefix}${entry.name}/`);
      else
        files.set(`${prefix}${entry.name}`, {
          body: await readFile(path),
          type: types[extname(entry.name)] ?? "application/octet-stream",
        });
    }
  };
  await walk(builtPath, "");
  return files;
}

/**
 * The operator console at /console (and / sends browsers there): static files built from console/,
 * served from memory. Hashed assets are cached for good; the page itself is checked every time, so
 * that a new build is picked up at once.
 */
export async function registerConsole(app: FastifyInstance): Promise<void> {
  const files = existsSync(join(builtPath, "index.html")) ? await load() : undefined;
  app.get("/", async (_request, reply) => reply.redirect("/console/", 302));
  app.get("/console", async (_request, reply) => reply.redirect("/console/", 301));
  app.get("/console/*", async (request, reply) => {
    if (files === undefined) {
      return reply
        .code(503)
        .type("text/plain; charset=utf-8")
        .send("The console is not built: run `npm run build:console` and restart the server.\n");
    }
    const path = (request.params as { "*": string })["*"];
    const file = files.get(path) ?? (path.startsWith("assets/") ? undefined : files.get("index.html"));
    if (file === undefined) return reply.code(404).send({ error: "Not found" });
    const immutable = path.startsWith("assets/") && files.has(path);
    return reply
      .header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-cache")
      .header("content-security-policy", policy)
      .header("x-content-type-options", "nosniff")
      .header("referrer-policy", "no-referrer")
      .type(file.type)
      .send(file.body);
  });
}
