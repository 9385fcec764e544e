#!/usr/bin/env node
// With NODE_ENV=production, runs the build in dist/ (`npm run build`): JavaScript only, no TypeScript
// compiler at run time. Otherwise the TypeScript sources through tsx's loader, so that development
// has no build step to forget.
import { existsSync } from "node:fs";

const build = new URL("../dist/src/main.js", import.meta.url);
let main;
if (process.env.NODE_ENV === "production") {
  if (!existsSync(build)) {
    process.stderr.write("smsgw: NODE_ENV=production runs the build: run `npm run build` first\n");
    process.exit(1);
  }
  ({ main } = await import(build.href));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/main.ts"));
}
await main(process.argv.slice(2));
