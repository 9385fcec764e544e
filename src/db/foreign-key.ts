import { p } from "@mikro-orm/core";

/**
 * A many-to-one column with the foreign key the migrations made: PostgreSQL's own name for it
 * (`<table>_<column>_fkey`), no update rule, and `onDelete` as given.
 */
export function foreignKey<Target extends Parameters<typeof p.manyToOne>[0]>(
  target: Target,
  table: string,
  column: string,
  onDelete: "cascade" | "set null",
) {
  return p.manyToOne(target).updateRule("no action").foreignKeyName(`${table}_${column}_fkey`).deleteRule(onDelete);
}
