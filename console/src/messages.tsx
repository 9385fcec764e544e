import type { JsonObject } from "@bufbuild/protobuf";
import { useCallback, useEffect, useState } from "preact/hooks";
import type { GetSmsJourneyResponse, SmsSummary } from "../../gen/smsgw/v1/sms_pb.js";
import { describe, fromInput, sms, took, when } from "./api.js";
import { Notice, type NoticeState, Status, Table } from "./parts.js";

const statuses = ["queued", "dispatched", "sent", "delivered", "failed", "expired", "cancelled"];

interface Filters {
  status: string;
  gateway: string;
  to: string;
  since: string;
  until: string;
}

const noFilters: Filters = { status: "", gateway: "", to: "", since: "", until: "" };

function SendTest({ onSent }: { onSent: (messageId: string) => void }) {
  const [to, setTo] = useState("");
  const [text, setText] = useState("Test message from the smsgw console");
  const [notice, setNotice] = useState<NoticeState>(null);
  const send = async (event: Event) => {
    event.preventDefault();
    try {
      const sent = await sms.sendSms({ to, message: text });
      setNotice({ kind: "ok", text: `Accepted as ${sent.messageId}` });
      onSent(sent.messageId);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };
  return (
    <form class="card inline" onSubmit={send} aria-labelledby="send-title">
      <h2 id="send-title">Send a test SMS</h2>
      <label>
        To <input name="to" type="tel" required value={to} onInput={(e) => setTo(e.currentTarget.value)} />
      </label>
      <label>
        Text{" "}
        <input name="text" required maxLength={1600} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button type="submit">Send</button>
      <Notice state={notice} />
    </form>
  );
}

export function Messages() {
  const [draft, setDraft] = useState<Filters>(noFilters);
  const [filters, setFilters] = useState<Filters>(noFilters);
  // The tokens of the pages before this one (for "Newer") and of this one.
  const [tokens, setTokens] = useState<string[]>([""]);
  const [rows, setRows] = useState<SmsSummary[]>([]);
  const [next, setNext] = useState("");
  const [notice, setNotice] = useState<NoticeState>(null);
  const [loading, setLoading] = useState(true);
  const token = tokens[tokens.length - 1] ?? "";

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const page = await sms.listSms({
        status: filters.status || undefined,
        gatewayId: filters.gateway || undefined,
        to: filters.to || undefined,
        since: fromInput(filters.since),
        until: fromInput(filters.until),
        limit: 50,
        pageToken: token || undefined,
      });
      setRows(page.messages);
      setNext(page.nextPageToken);
      setNotice(null);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    } finally {
      setLoading(false);
    }
  }, [filters, token]);

  useEffect(() => {
    void load();
  }, [load]);

  const apply = (event: Event) => {
    event.preventDefault();
    setFilters(draft);
    setTokens([""]);
  };
  const field = (name: keyof Filters) => ({
    name,
    value: draft[name],
    onInput: (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) =>
      setDraft({ ...draft, [name]: e.currentTarget.value }),
  });

  return (
    <section aria-labelledby="messages-title">
      <h1 id="messages-title">Messages</h1>
      <SendTest
        onSent={(messageId) => {
          location.hash = `#/messages/${encodeURIComponent(messageId)}`;
        }}
      />
      <form class="filters" onSubmit={apply} aria-label="Filter messages">
        <label>
          Status{" "}
          <select {...field("status")}>
            <option value="">any</option>
            {statuses.map((status) => (
              <option key={status}>{status}</option>
            ))}
          </select>
        </label>
        <label>
          Gateway <input {...field("gateway")} placeholder="device id" />
        </label>
        <label>
          Recipient <input {...field("to")} type="tel" />
        </label>
        <label>
          From <input {...field("since")} type="datetime-local" step={1} />
        </label>
        <label>
          Until <input {...field("until")} type="datetime-local" step={1} />
        </label>
        <button type="submit">Filter</button>
        <button type="button" class="secondary" onClick={() => void load()}>
          Refresh
        </button>
      </form>
      <Notice state={notice} />
      <Table
        label="Messages, newest first"
        columns={["Message", "To", "Status", "Gateway", "Attempts", "Accepted"]}
        busy={loading}
        empty={rows.length === 0 && !loading && "No messages match."}
      >
        {rows.map((row) => (
          <tr key={row.messageId}>
            <td>
              <a href={`#/messages/${encodeURIComponent(row.messageId)}`}>{row.messageId}</a>
            </td>
            <td>{row.to}</td>
            <td>
              <Status value={row.status} />
            </td>
            <td>{row.gatewayId ?? "—"}</td>
            <td>{row.attempts}</td>
            <td>{when(row.createdAt)}</td>
          </tr>
        ))}
      </Table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={tokens.length <= 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Newer
        </button>
        <span>Page {tokens.length}</span>
        <button type="button" disabled={next === ""} onClick={() => setTokens([...tokens, next])}>
          Older
        </button>
      </nav>
    </section>
  );
}

export function MessagePage({ messageId, isAdmin }: { messageId: string; isAdmin: boolean }) {
  const [journey, setJourney] = useState<GetSmsJourneyResponse | null>(null);
  const [notice, setNotice] = useState<NoticeState>(null);

  const load = useCallback(async () => {
    try {
      setJourney(await sms.getSmsJourney({ messageId }));
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  }, [messageId]);

  // A message on its way is read again every second until it ended and its webhooks were delivered.
  const status = journey?.message?.status;
  const settled =
    status !== undefined &&
    !["queued", "dispatched", "sent"].includes(status) &&
    !journey?.webhookDeliveries.some(({ delivery }) => delivery?.status === "pending");
  useEffect(() => {
    void load();
    if (settled) return;
    const timer = setInterval(() => void load(), 1000);
    return () => clearInterval(timer);
  }, [load, settled]);

  const cancel = async () => {
    try {
      await sms.cancelSms({ messageId });
      setNotice({ kind: "ok", text: "Cancelled" });
      await load();
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };

  const message = journey?.message;
  return (
    <section aria-labelledby="message-title">
      <p>
        <a href="#/messages">← Messages</a>
      </p>
      <h1 id="message-title">Message {messageId}</h1>
      <Notice state={notice} />
      {message && (
        <div class="card">
          <dl class="facts">
            <dt>Status</dt>
            <dd>
              <Status value={message.status} />
            </dd>
            <dt>To</dt>
            <dd>{message.to}</dd>
            <dt>Text</dt>
            <dd>{message.message}</dd>
            <dt>Gateway</dt>
            <dd>{message.gatewayId ?? "—"}</dd>
            <dt>Accepted</dt>
            <dd>{when(message.createdAt)}</dd>
            <dt>Sent</dt>
            <dd>{when(message.sentAt)}</dd>
            <dt>Delivered</dt>
            <dd>{when(message.deliveredAt)}</dd>
            {message.errorMessage && (
              <>
                <dt>Error</dt>
                <dd>{message.errorMessage}</dd>
              </>
            )}
            <dt>Workflow</dt>
            <dd>
              {journey.workflowUrl ? (
                <a href={journey.workflowUrl} target="_blank" rel="noreferrer">
                  {journey.workflowId} in the Temporal UI
                </a>
              ) : (
                journey.workflowId
              )}
            </dd>
          </dl>
          {message.status === "queued" && (
            <button type="button" class="danger" onClick={() => void cancel()}>
              Cancel message
            </button>
          )}
        </div>
      )}
      {journey && (
        <>
          <h2>Attempts</h2>
          <Table
            label="Attempts"
            columns={["#", "Gateway", "Dispatched", "Acknowledged", "Ended", "Outcome", "Error"]}
            empty={journey.attempts.length === 0 && "No attempt yet."}
          >
            {journey.attempts.map((attempt) => (
              <tr key={attempt.attempt} class="attempt">
                <td>{attempt.attempt}</td>
                <td>{attempt.gatewayId ?? "—"}</td>
                <td>{when(attempt.dispatchedAt)}</td>
                <td>
                  {when(attempt.acknowledgedAt)} <small>{took(attempt.dispatchedAt, attempt.acknowledgedAt)}</small>
                </td>
                <td>
                  {when(attempt.endedAt)} <small>{took(attempt.dispatchedAt, attempt.endedAt)}</small>
                </td>
                <td>{attempt.outcome ? <Status value={attempt.outcome} /> : "in progress"}</td>
                <td>{attempt.error ?? ""}</td>
              </tr>
            ))}
          </Table>
          <h2>Events</h2>
          <ol class="events">
            {journey.events.map((event) => (
              <li key={`${event.event}-${when(event.createdAt)}`}>
                <strong>{event.event}</strong> {when(event.createdAt)}{" "}
                <code>{JSON.stringify((event.data ?? {}) as JsonObject)}</code>
              </li>
            ))}
          </ol>
          {isAdmin && (
            <>
              <h2>Webhook deliveries</h2>
              <Table
                label="Webhook deliveries"
                columns={["Webhook", "Event", "Status", "Attempts"]}
                empty={journey.webhookDeliveries.length === 0 && "No webhook deliveries."}
              >
                {journey.webhookDeliveries.map(({ url, delivery }) => (
                  <tr key={delivery?.deliveryId}>
                    <td>{url}</td>
                    <td>{delivery?.event}</td>
                    <td>
                      <Status value={delivery?.status ?? ""} />
                    </td>
                    <td>
                      {delivery?.attempts
                        .map(
                          (a) =>
                            `${a.statusCode ?? "no answer"} in ${a.durationMs} ms${a.error ? ` (${a.error})` : ""}`,
                        )
                        .join("; ")}
                    </td>
                  </tr>
                ))}
              </Table>
            </>
          )}
        </>
      )}
    </section>
  );
}
