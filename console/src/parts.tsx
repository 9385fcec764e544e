import type { ComponentChildren } from "preact";

/** A message about the last thing done: announced to screen readers. */
export type NoticeState = { kind: "ok" | "error"; text: string } | null;

export function Notice({ state }: { state: NoticeState }) {
  if (state === null) return <p class="notice" role="status" aria-live="polite" />;
  return (
    <p class={`notice ${state.kind}`} role={state.kind === "error" ? "alert" : "status"} aria-live="polite">
      {state.text}
    </p>
  );
}

/** A status, coloured by what it means (the word is always there: colour is never the only sign). */
export function Status({ value }: { value: string }) {
  return <span class={`status status-${value}`}>{value}</span>;
}

/** A table in a labelled region that scrolls on its own at a phone's width; `empty` is shown when it has no rows. */
export function Table({
  label,
  columns,
  busy,
  empty,
  children,
}: {
  label: string;
  columns: string[];
  busy?: boolean;
  empty?: string | false | undefined;
  children: ComponentChildren;
}) {
  return (
    <section class="table" aria-label={label}>
      <table aria-busy={busy}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {children}
          {empty && (
            <tr>
              <td colSpan={columns.length}>{empty}</td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
