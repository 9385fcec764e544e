// Stages the third-party .proto files the contract imports from npm packages into .proto-deps/,
// where buf.yaml expects them. Run by `npm run generate` and `npm run lint:proto`; the folder is
// git-ignored because those files belong to other projects.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const googleProtos = dirname(require.resolve("google-proto-files/package.json"));
const wanted = ["google/api/annotations.proto", "google/api/http.proto"];

const out = join(root, ".proto-deps");
rmSync(out, { recursive: true, force: true });
for (const file of wanted) {
  mkdirSync(join(out, dirname(file)), { recursive: true });
  copyFileSync(join(googleProtos, file), join(out, file));
}
