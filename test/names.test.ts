import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** The names a folder's TypeScript files export, with the file each is in. */
function exported(folder: string, skip: RegExp = /$^/): Map<string, string> {
  const root = fileURLToPath(new URL(`../${folder}/`, import.meta.url));
  const names = new Map<string, string>();
  for (const file of readdirSync(root, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".ts") || skip.test(file)) continue;
    const text = readFileSync(join(root, file), "utf8");
    for (const match of text.matchAll(/^export (?:async )?(?:class|function|const|interface|type|enum) (\w+)/gm)) {
      names.set(match[1] ?? "", `${folder}/${file}`);
    }
  }
  return names;
}

/** Whether two names differ by one letter (one changed, added or removed; case counts as a letter). */
function oneApart(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  if (a.length === b.length) return [...a].filter((c, i) => c.toLowerCase() !== b[i]?.toLowerCase()).length <= 1;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return [...long].some((_, i) => long.slice(0, i) + long.slice(i + 1) === short);
}

describe("names", () => {
  const ours = exported("src", /migrations/);
  const generated = exported("gen");

  it("no exported name of ours is also a generated one, or one letter away from one", () => {
    const clashes = [...ours.keys()].flatMap((name) =>
      [...generated.keys()]
        .filter((other) => other === name || oneApart(name, other))
        .map((other) => `${ours.get(name)}: ${name} ~ ${other}`),
    );
    expect(clashes).toEqual([]);
  });

  it("no two exported names of ours are one letter apart", () => {
    const names = [...ours.keys()];
    const near = names.flatMap((a, i) =>
      names
        .slice(i + 1)
        .filter((b) => oneApart(a, b))
        .map((b) => `${a} (${ours.get(a)}) ~ ${b} (${ours.get(b)})`),
    );
    expect(near).toEqual([]);
  });
});
