#!/usr/bin/env node
// One owner per table: fails when SQL text stands outside a repository file, or when a module's
// repository writes (insert, update, delete) a table whose entity another module defines.
//
// A table's owner is the module whose folder holds its entity (`src/modules/<module>/*.entity.ts`,
// `tableName: "…"`). SQL may stand in `src/modules/<module>/*.repository.ts`, and in `src/db/` (the
// database layer: migrations, the pool, the health probe), which writes no table but through
// migrations. Reads may join another module's tables (read models); writes go through the owner,
// whose repository may export a step (a CTE's text) that another statement places.
//
// Usage: node scripts/check-owners.mjs [ROOT]   (ROOT defaults to the repository this script is in)
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src");

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The text with comments blanked (strings kept), so that prose about SQL is not taken for SQL. */
function code(text) {
  let out = "";
  let quote;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'" || c === "`") {
      quote = c;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const skipped = text.slice(i, end === -1 ? text.length : end + 2);
      out += skipped.replace(/[^\n]/g, " ");
      i = (end === -1 ? text.length : end + 2) - 1;
    } else out += c;
  }
  return out;
}

const sqlPattern =
  /\b(select\s[\s\S]{0,400}?\sfrom\s|insert\s+into\s|update\s+"?[a-z_]+"?(\s+[a-z]+)?\s+set\s|delete\s+from\s)/i;
const writePattern =
  /\b(?:insert\s+into|delete\s+from)\s+"?([a-z_]+)"?|\bupdate\s+"?([a-z_]+)"?(?:\s+[a-z]+)?\s+set\s/gi;

const moduleOf = (file) => {
  const parts = relative(src, file).split(sep);
  return parts[0] === "modules" ? parts[1] : undefined;
};

const owners = new Map();
for (const file of files(join(src, "modules")).filter((f) => f.endsWith(".entity.ts"))) {
  for (const match of readFileSync(file, "utf8").matchAll(/tableName:\s*"([a-z_]+)"/g)) {
    owners.set(match[1], moduleOf(file));
  }
}

const problems = [];
for (const file of files(src)) {
  const name = relative(root, file);
  if (name.startsWith(`src${sep}db${sep}`)) continue;
  const text = code(readFileSync(file, "utf8"));
  const line = (index) => text.slice(0, index).split("\n").length;
  if (!file.endsWith(".repository.ts")) {
    const found = sqlPattern.exec(text);
    if (found)
      problems.push(`${name}:${line(found.index)}: SQL outside a repository: "${found[0].trim().slice(0, 60)}"`);
    continue;
  }
  const module = moduleOf(file);
  for (const match of text.matchAll(writePattern)) {
    const table = (match[1] ?? match[2]).toLowerCase();
    const owner = owners.get(table);
    if (owner === undefined) {
      problems.push(`${name}:${line(match.index)}: writes ${table}, a table no entity defines`);
    } else if (owner !== module) {
      problems.push(`${name}:${line(match.index)}: writes ${table}, which the ${owner} module owns`);
    }
  }
}

if (problems.length > 0) {
  process.stderr.write(`${problems.join("\n")}\n${problems.length} ownership problem(s)\n`);
  process.exit(1);
}
process.stdout.write(`every table has one owner: ${owners.size} tables, SQL only in repositories\n`);
