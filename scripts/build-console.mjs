// Builds the operator console (console/ -> console/dist) with Vite when the build is missing or older
// than its sources (the console's own files and the generated clients in gen/). `--force` always builds.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = join(root, "console/dist/index.html");

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = 0;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

// The production image holds the built console (dist/console/dist) and not its sources: nothing to do.
if (!existsSync(join(root, "console/src"))) process.exit(0);

const sources = ["console/src", "console/index.html", "console/vite.config.ts", "gen/smsgw", "package-lock.json"];
const stale =
  process.argv.includes("--force") ||
  !existsSync(built) ||
  sources.some((source) => newest(join(root, source)) > statSync(built).mtimeMs);
if (stale) {
  execFileSync(
    process.execPath,
    [join(root, "node_modules/vite/bin/vite.js"), "build", "--config", "console/vite.config.ts", "--logLevel", "warn"],
    {
      cwd: root,
      stdio: "inherit",
    },
  );
}
