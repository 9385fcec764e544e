import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleWorkflowCode } from "@temporalio/worker";
import { workflowsPath } from "./worker.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Every TypeScript file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** A digest of what the bundle is made of: the workflow code, the sources it may import, the SDK. */
function bundleDigest(): string {
  const hash = createHash("sha256");
  for (const file of [...sources(join(root, "workflows")), ...sources(join(root, "src"))].sort()) {
    hash.update(relative(root, file)).update(readFileSync(file));
  }
  hash.update(readFileSync(join(root, "node_modules/@temporalio/workflow/package.json")));
  return hash.digest("hex").slice(0, 16);
}

/**
 * The path of the workflow bundle for today's code, in `dataDir`: built once per change of the code,
 * in a child process, so that the bundler's memory (about 100 MiB) never stays in the server.
 */
export async function workflowBundlePath(dataDir: string): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, `workflow-bundle-${bundleDigest()}.js`);
  if (existsSync(path)) return path;
  const partial = `${path}.${process.pid}.partial`;
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), partial], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bundling the workflow code failed (exit ${code})`);
  renameSync(partial, path);
  return path;
}

/** Run as a script: bundles the workflow code into the file named by the first argument. */
async function bundleInto(file: string): Promise<void> {
  const noop = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop },
  });
  const { writeFileSync } = await import("node:fs");
  writeFileSync(file, code);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  await bundleInto(process.argv[2]);
}
