import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleWorkflowCode } from "@temporalio/worker";
import { workflowsPath } from "./worker.js";

const self = fileURLToPath(import.meta.url);
/** The sources' root: the repository, or `dist/` when this runs from the build. */
const root = fileURLToPath(new URL("../..", import.meta.url));
/** `.ts` from the sources, `.js` from the build. */
const extension = extname(self);

/** Every source file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(extension) ? [path] : [];
  });
}

/** A digest of what the bundle is made of: the workflow code, the sources it may import, the SDK. */
function bundleDigest(): string {
  const hash = createHash("sha256");
  for (const file of [...sources(join(root, "workflows")), ...sources(join(root, "src"))].sort()) {
    hash.update(relative(root, file)).update(readFileSync(file));
  }
  const project = extension === ".js" ? join(root, "..") : root;
  hash.update(readFileSync(join(project, "node_modules/@temporalio/workflow/package.json")));
  return hash.digest("hex").slice(0, 16);
}

/**
 * The path of the workflow bundle for today's code: the one `npm run build` made ahead of time when
 * this runs from the build; else one in `dataDir`, built once per change of the code, in a child
 * process, so that the bundler's memory (about 100 MiB) never stays in the server.
 */
export async function workflowBundlePath(dataDir: string, options: { tracing?: boolean } = {}): Promise<string> {
  const tracing = options.tracing === true;
  const prebuilt = join(root, "workflow-bundle.js");
  if (extension === ".js" && !tracing && existsSync(prebuilt)) return prebuilt;
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, `workflow-bundle-${bundleDigest()}${tracing ? "-traced" : ""}.js`);
  if (existsSync(path)) return path;
  const partial = `${path}.${process.pid}.partial`;
  const loader = extension === ".ts" ? ["--import", "tsx"] : [];
  const child = spawn(process.execPath, [...loader, self, partial, ...(tracing ? ["--traced"] : [])], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bundling the workflow code failed (exit ${code})`);
  renameSync(partial, path);
  return path;
}

/**
 * Run as a script: bundles the workflow code into the file named by the first argument; with
 * `--traced`, with the OpenTelemetry workflow interceptors (used when tracing is on).
 */
async function bundleInto(file: string, traced: boolean): Promise<void> {
  const noop = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: traced
      ? [createRequire(import.meta.url).resolve("@temporalio/interceptors-opentelemetry/lib/workflow-interceptors")]
      : [],
    logger: { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop },
  });
  const { writeFileSync } = await import("node:fs");
  writeFileSync(file, code);
}

if (process.argv[1] === self && process.argv[2] !== undefined) {
  await bundleInto(process.argv[2], process.argv[3] === "--traced");
}
