import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const check = (root?: string) =>
  spawnSync(process.execPath, ["scripts/check-owners.mjs", ...(root === undefined ? [] : [root])], {
    encoding: "utf8",
  });

/** A source tree of two modules, each owning one table. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "smsgw-owners-"));
  const all: Record<string, string> = {
    "src/modules/a/a.entity.ts": 'export const A = defineEntity({ name: "A", tableName: "alphas", properties: {} });',
    "src/modules/b/b.entity.ts": 'export const B = defineEntity({ name: "B", tableName: "betas", properties: {} });',
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe("the ownership check", () => {
  it("passes on this repository: SQL only in repositories, each writing only its own module's tables", () => {
    expect(execFileSync(process.execPath, ["scripts/check-owners.mjs"], { encoding: "utf8" })).toMatch(
      /every table has one owner: 11 tables/,
    );
  });

  it("fails on SQL outside a repository, and on a repository that writes another module's table", () => {
    const root = tree({
      "src/modules/a/a.repository.ts":
        'const ok = "update alphas set x = 1"; const bad = `insert into betas (x) values (1)`;',
      "src/modules/a/a.service.ts": '// select x from alphas is prose in a comment\nconst q = "select x from alphas";',
      "src/modules/b/b.repository.ts": 'const fine = "delete from betas where x = 1";',
    });
    const result = check(root);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("src/modules/a/a.repository.ts:1: writes betas, which the b module owns");
    expect(result.stderr).toContain('src/modules/a/a.service.ts:2: SQL outside a repository: "select x from"');
    expect(result.stderr).toContain("2 ownership problem(s)");
  });
});
