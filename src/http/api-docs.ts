import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

/** The OpenAPI document `npm run generate` writes from the contract (gen/openapi.json; dist/gen in the build). */
const documentPath = fileURLToPath(new URL("../../gen/openapi.json", import.meta.url));

/** The files of Swagger UI (the swagger-ui-dist package) that /docs serves, and their types. */
const assets: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>smsgw REST API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="docs"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/assets/start.js"></script>
</body>
</html>
`;

const start = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#docs",
  deepLinking: true,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
});
`;

/**
 * `/openapi.json`, the REST door's OpenAPI 3.1 document, and `/docs`, a browsable view of it (Swagger
 * UI from npm, served from this server: nothing is fetched from elsewhere).
 */
export function registerApiDocs(app: FastifyInstance): void {
  const document = readFileSync(documentPath, "utf8");
  const ui = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  // Read when first asked for: a server nobody browses keeps the 1.5 MB of Swagger UI out of memory.
  const files = new Map<string, Buffer>();
  const file = (name: string) => {
    if (!(name in assets)) return undefined;
    const cached = files.get(name) ?? readFileSync(join(ui, name));
    files.set(name, cached);
    return cached;
  };
  app.get("/openapi.json", async (_request, reply) =>
    reply.header("content-type", "application/json; charset=utf-8").header("cache-control", "no-cache").send(document),
  );
  app.get("/docs", async (_request, reply) => reply.header("content-type", "text/html; charset=utf-8").send(page));
  app.get("/docs/assets/start.js", async (_request, reply) =>
    reply.header("content-type", "text/javascript; charset=utf-8").send(start),
  );
  app.get<{ Params: { name: string } }>("/docs/assets/:name", async (request, reply) => {
    const content = file(request.params.name);
    if (content === undefined) return reply.code(404).send({ error: "Not found" });
    return reply
      .header("content-type", assets[request.params.name] ?? "application/octet-stream")
      .header("cache-control", "public, max-age=86400")
      .send(content);
  });
}
