// Builds the server into dist/ (what `npm run build` makes: the TypeScript compiled to JavaScript, the
// OpenAPI document, the workflow code bundled ahead of time, the operator console) when the build is
// missing or older than its sources. `--force` always builds. Several processes may start at once (two
// instances, say): one builds while the others wait for it, then each finds the build fresh.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
/** Written last: the build is whole once it exists, and as new as its time. */
const stamp = join(root, "dist/.built");
const lock = join(root, "dist/.building");
const sources = [
  "src",
  "gen",
  "workflows",
  "console/src",
  "console/index.html",
  "tsconfig.json",
  "tsconfig.build.json",
  "package-lock.json",
];

function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

const stale = () =>
  !existsSync(stamp) || sources.some((source) => newest(join(root, source)) > statSync(stamp).mtimeMs);

const run = (args) => execFileSync(process.execPath, args, { cwd: root, stdio: "inherit" });

function build() {
  rmSync(stamp, { force: true });
  run([join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"]);
  cpSync(join(root, "gen/openapi.json"), join(root, "dist/gen/openapi.json"));
  run(["dist/src/temporal/workflow-bundle.js", "dist/workflow-bundle.js"]);
  run(["scripts/build-console.mjs"]);
  rmSync(join(root, "dist/console/dist"), { recursive: true, force: true });
  cpSync(join(root, "console/dist"), join(root, "dist/console/dist"), { recursive: true });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

/** Takes the build lock (a directory: made atomically), waiting while another process holds it. */
async function locked(work) {
  mkdirSync(join(root, "dist"), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if (error.code !== "EEXIST") throw error;
      // A lock older than any build is left by a process that died while building.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })?.mtimeMs > 5 * 60_000) rmSync(lock, { force: true });
      if (Date.now() > deadline) throw new Error(`another build holds ${lock}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

// The production image holds the build and not its sources: nothing to do.
if (existsSync(join(root, "src"))) {
  const force = process.argv.includes("--force");
  if (force || stale()) {
    await locked(() => {
      // Another process may have built it while this one waited.
      if (force || stale()) {
        process.stderr.write("smsgw: building the server into dist/\n");
        build();
      }
    });
  }
}
