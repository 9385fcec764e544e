// Stages the third-party .proto files the contract imports or serves from npm packages into .proto-deps/,
// where buf.yaml expects them. Run by `npm run generate` and `npm run lint:proto`; the folder is
// git-ignored because those files belong to other projects.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const packageDir = (name) => dirname(require.resolve(`${name}/package.json`));
// The gRPC server reflection protocol (v1 and v1alpha), served on the one port: from the gRPC
// project's own reflection package.
const wanted = [
  [packageDir("google-proto-files"), "google/api/annotations.proto"],
  [packageDir("google-proto-files"), "google/api/http.proto"],
  [join(packageDir("@grpc/reflection"), "build/proto"), "grpc/reflection/v1/reflection.proto"],
  [join(packageDir("@grpc/reflection"), "build/proto"), "grpc/reflection/v1alpha/reflection.proto"],
];

const out = join(root, ".proto-deps");
rmSync(out, { recursive: true, force: true });
for (const [from, file] of wanted) {
  mkdirSync(join(out, dirname(file)), { recursive: true });
  copyFileSync(join(from, file), join(out, file));
}
