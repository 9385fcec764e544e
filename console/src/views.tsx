import { useCallback, useEffect, useState } from "preact/hooks";
import type {
  ApiKey,
  FleetGateway,
  GetOverviewResponse,
  OtpFigures,
  PhoneSmsGateSettings,
} from "../../gen/smsgw/v1/admin_pb.js";
import type { ReceivedSms } from "../../gen/smsgw/v1/sms_pb.js";
import type { Webhook, WebhookDelivery } from "../../gen/smsgw/v1/webhooks_pb.js";
import { admin, describe, fromInput, isAborted, sms, toDate, webhooks, when } from "./api.js";
import { Notice, type NoticeState, Status, Table } from "./parts.js";

// --- Overview ---

function Chart({ minutes }: { minutes: GetOverviewResponse["minutes"] }) {
  const width = 600;
  const height = 160;
  const most = Math.max(1, ...minutes.map((m) => m.delivered + m.failed + m.expired + m.pending));
  const bar = width / Math.max(1, minutes.length);
  const series = [
    ["delivered", "var(--ok)"],
    ["failed", "var(--bad)"],
    ["expired", "var(--muted)"],
    ["pending", "var(--wait)"],
  ] as const;
  const total = minutes.reduce((sum, m) => sum + m.delivered + m.failed + m.expired + m.pending, 0);
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Messages per minute over the last hour by outcome: ${total} in all`}
        preserveAspectRatio="none"
      >
        {minutes.map((m, i) => {
          let y = height;
          return series.map(([name, colour]) => {
            const h = (m[name] / most) * (height - 10);
            y -= h;
            return h > 0 ? (
              <rect key={`${i}-${name}`} x={i * bar + 1} y={y} width={bar - 2} height={h} fill={colour} />
            ) : null;
          });
        })}
      </svg>
      <figcaption>
        Messages accepted per minute over the last hour, by outcome (peak {most}/min):{" "}
        {series.map(([name, colour]) => (
          <span key={name} class="legend">
            <span class="swatch" style={{ background: colour }} /> {name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

function OtpLine({ label, figures }: { label: string; figures: OtpFigures | undefined }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      <td>{figures?.sent ?? 0}</td>
      <td>{figures?.verified ?? 0}</td>
      <td>{(figures?.verificationRate ?? 0).toFixed(2)} %</td>
    </tr>
  );
}

export function Overview() {
  const [overview, setOverview] = useState<GetOverviewResponse | null>(null);
  const [notice, setNotice] = useState<NoticeState>(null);
  useEffect(() => {
    const load = () =>
      admin
        .getOverview({})
        .then((found) => {
          setOverview(found);
          setNotice(null);
        })
        .catch((error: unknown) => setNotice({ kind: "error", text: describe(error) }));
    void load();
    const timer = setInterval(load, 10_000);
    return () => clearInterval(timer);
  }, []);
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <Notice state={notice} />
      {overview && (
        <>
          <div class="tiles">
            <div class="tile">
              <span class="figure">{overview.deliveryRate.toFixed(2)} %</span> delivery rate today
            </div>
            <div class="tile">
              <span class="figure">{overview.backlog}</span> waiting for a gateway
            </div>
            <div class="tile">
              <span class="figure">{overview.inFlight}</span> with a gateway
            </div>
            <div class="tile">
              <span class="figure">
                {overview.gatewaysOnline} / {overview.gatewaysTotal}
              </span>{" "}
              gateways online
            </div>
          </div>
          <Chart minutes={overview.minutes} />
          <h2>One-time passwords</h2>
          <table class="compact">
            <thead>
              <tr>
                <th scope="col">Period</th>
                <th scope="col">Sent</th>
                <th scope="col">Verified</th>
                <th scope="col">Verification rate</th>
              </tr>
            </thead>
            <tbody>
              <OtpLine label="Today" figures={overview.otpToday} />
              <OtpLine label="Last 7 days" figures={overview.otpLast7Days} />
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

// --- Fleet ---

function ago(gateway: FleetGateway): string {
  const at = toDate(gateway.lastHeartbeatAt);
  if (at === undefined) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
  return seconds < 60 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function FleetRow({ gateway, onNotice }: { gateway: FleetGateway; onNotice: (notice: NoticeState) => void }) {
  const [priority, setPriority] = useState(String(gateway.priority));
  useEffect(() => setPriority(String(gateway.priority)), [gateway.priority]);
  const update = async (change: { active?: boolean; priority?: number }) => {
    try {
      await admin.updateGateway({ id: gateway.id, ...change });
      onNotice({ kind: "ok", text: `${gateway.deviceId} updated` });
    } catch (error) {
      onNotice({ kind: "error", text: describe(error) });
    }
  };
  return (
    <tr data-device={gateway.deviceId}>
      <th scope="row">
        {gateway.name}
        <br />
        <small>{gateway.deviceId}</small>
      </th>
      <td>
        <Status value={gateway.status} /> {gateway.channel && <small>via {gateway.channel}</small>}
      </td>
      <td>{gateway.batteryLevel === undefined ? "—" : `${gateway.batteryLevel} %`}</td>
      <td>{gateway.signalStrength ?? "—"}</td>
      <td title={when(gateway.lastHeartbeatAt)}>{ago(gateway)}</td>
      <td>{gateway.inFlight}</td>
      <td>
        {gateway.sentToday} <small>(cap {gateway.sendsPerMinute}/min)</small>
      </td>
      <td>
        <form
          class="inline"
          onSubmit={(event) => {
            event.preventDefault();
            void update({ priority: Number(priority) });
          }}
        >
          <label class="sr-only" for={`priority-${gateway.id}`}>
            Priority of {gateway.deviceId}
          </label>
          <input
            id={`priority-${gateway.id}`}
            type="number"
            min={-100}
            max={100}
            value={priority}
            onInput={(e) => setPriority(e.currentTarget.value)}
          />
          <button type="submit" class="secondary">
            Set
          </button>
        </form>
      </td>
      <td>
        <label>
          <input
            type="checkbox"
            checked={gateway.active}
            onChange={(e) => void update({ active: e.currentTarget.checked })}
          />{" "}
          <span class="sr-only">{gateway.deviceId} </span>active
        </label>
      </td>
    </tr>
  );
}

export function Fleet() {
  const [gateways, setGateways] = useState<FleetGateway[] | null>(null);
  const [notice, setNotice] = useState<NoticeState>(null);
  const [live, setLive] = useState(false);
  // Live: the server streams the fleet whenever it changes; the stream is opened again if it breaks.
  useEffect(() => {
    const abort = new AbortController();
    const watch = async () => {
      while (!abort.signal.aborted) {
        try {
          for await (const snapshot of admin.watchGateways({}, { signal: abort.signal })) {
            setGateways(snapshot.gateways);
            setLive(true);
          }
        } catch (error) {
          if (abort.signal.aborted || isAborted(error)) return;
          setLive(false);
          setNotice({ kind: "error", text: describe(error) });
        }
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    };
    void watch();
    return () => abort.abort();
  }, []);
  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">
        Fleet <small class={live ? "live" : "stale"}>{live ? "live" : "reconnecting"}</small>
      </h1>
      <Notice state={notice} />
      <Table
        label="Gateways"
        columns={[
          "Gateway",
          "Status",
          "Battery",
          "Signal",
          "Last heartbeat",
          "In flight",
          "Sent today",
          "Priority",
          "Active",
        ]}
        busy={gateways === null}
        empty={gateways?.length === 0 && "No gateway has registered yet."}
      >
        {(gateways ?? []).map((gateway) => (
          <FleetRow key={gateway.id} gateway={gateway} onNotice={setNotice} />
        ))}
      </Table>
    </section>
  );
}

// --- Inbound ---

export function Inbound() {
  const [draft, setDraft] = useState({ number: "", since: "", until: "" });
  const [filters, setFilters] = useState(draft);
  const [page, setPage] = useState(1);
  const [result, setResult] = useState<{ rows: ReceivedSms[]; pages: number; total: number } | null>(null);
  const [notice, setNotice] = useState<NoticeState>(null);
  const load = useCallback(async () => {
    try {
      const found = await sms.listReceivedSms({
        phoneNumber: filters.number || undefined,
        since: fromInput(filters.since),
        until: fromInput(filters.until),
        limit: 50,
        page,
      });
      setResult({ rows: found.messages, pages: found.pages, total: found.total });
      setNotice(null);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  }, [filters, page]);
  useEffect(() => {
    void load();
  }, [load]);
  return (
    <section aria-labelledby="inbound-title">
      <h1 id="inbound-title">Inbound SMS</h1>
      <form
        class="filters"
        aria-label="Filter inbound SMS"
        onSubmit={(event) => {
          event.preventDefault();
          setFilters(draft);
          setPage(1);
        }}
      >
        <label>
          From number{" "}
          <input
            type="tel"
            value={draft.number}
            onInput={(e) => setDraft({ ...draft, number: e.currentTarget.value })}
          />
        </label>
        <label>
          Since{" "}
          <input
            type="datetime-local"
            step={1}
            value={draft.since}
            onInput={(e) => setDraft({ ...draft, since: e.currentTarget.value })}
          />
        </label>
        <label>
          Until{" "}
          <input
            type="datetime-local"
            step={1}
            value={draft.until}
            onInput={(e) => setDraft({ ...draft, until: e.currentTarget.value })}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <Notice state={notice} />
      <Table
        label="Inbound SMS, newest first"
        columns={["From", "Text", "Received"]}
        empty={result?.rows.length === 0 && "No inbound SMS match."}
      >
        {result?.rows.map((row) => (
          <tr key={row.messageId}>
            <td>{row.from}</td>
            <td>{row.message}</td>
            <td>{when(row.receivedAt)}</td>
          </tr>
        ))}
      </Table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
          Newer
        </button>
        <span>
          Page {page} of {Math.max(1, result?.pages ?? 1)} ({result?.total ?? 0} in all)
        </span>
        <button type="button" disabled={page >= (result?.pages ?? 1)} onClick={() => setPage(page + 1)}>
          Older
        </button>
      </nav>
    </section>
  );
}

// --- Webhooks ---

const webhookEvents = ["sms_received", "sms_sent", "sms_delivered", "sms_failed", "gateway_online", "gateway_offline"];

function WebhookForm({ webhook, onSaved }: { webhook?: Webhook; onSaved: (notice: NoticeState) => void }) {
  const [url, setUrl] = useState(webhook?.url ?? "");
  const [events, setEvents] = useState<string[]>(webhook?.events ?? ["sms_delivered", "sms_failed"]);
  const [secret, setSecret] = useState("");
  const [active, setActive] = useState(webhook?.active ?? true);
  const id = webhook?.id ?? "new";
  const save = async (event: Event) => {
    event.preventDefault();
    try {
      if (webhook === undefined) {
        await webhooks.createWebhook({ url, events, secretKey: secret || undefined, active });
        setUrl("");
        setSecret("");
      } else {
        await webhooks.updateWebhook({ id: webhook.id, url, events, secretKey: secret || undefined, active });
      }
      onSaved({ kind: "ok", text: webhook === undefined ? "Webhook created" : "Webhook saved" });
    } catch (error) {
      onSaved({ kind: "error", text: describe(error) });
    }
  };
  return (
    <form
      class="card"
      onSubmit={save}
      aria-label={webhook === undefined ? "New webhook" : `Edit webhook ${webhook.id}`}
    >
      <label>
        URL <input name="url" type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
      </label>
      <fieldset>
        <legend>Events</legend>
        {webhookEvents.map((name) => (
          <label key={name} class="check">
            <input
              type="checkbox"
              name={`event-${id}-${name}`}
              checked={events.includes(name)}
              onChange={(e) =>
                setEvents(e.currentTarget.checked ? [...events, name] : events.filter((other) => other !== name))
              }
            />{" "}
            {name}
          </label>
        ))}
      </fieldset>
      <label>
        Signing secret{" "}
        <input
          name="secret"
          type="password"
          autocomplete="off"
          placeholder={webhook?.hasSecret ? "unchanged" : "optional"}
          value={secret}
          onInput={(e) => setSecret(e.currentTarget.value)}
        />
      </label>
      <label class="check">
        <input type="checkbox" checked={active} onChange={(e) => setActive(e.currentTarget.checked)} /> Active
      </label>
      <button type="submit">{webhook === undefined ? "Create webhook" : "Save"}</button>
    </form>
  );
}

function Deliveries({ id }: { id: number }) {
  const [rows, setRows] = useState<WebhookDelivery[] | null>(null);
  const [notice, setNotice] = useState<NoticeState>(null);
  useEffect(() => {
    const load = () =>
      webhooks
        .listWebhookDeliveries({ id, limit: 20 })
        .then((found) => setRows(found.deliveries))
        .catch((error: unknown) => setNotice({ kind: "error", text: describe(error) }));
    void load();
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }, [id]);
  return (
    <>
      <Notice state={notice} />
      <table class="compact deliveries">
        <caption>Latest deliveries</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col">Attempts</th>
          </tr>
        </thead>
        <tbody>
          {(rows ?? []).map((row) => (
            <tr key={row.deliveryId}>
              <td>{row.event}</td>
              <td>
                <Status value={row.status} />
              </td>
              <td>{when(row.createdAt)}</td>
              <td>
                {row.attempts
                  .map(
                    (a) =>
                      `#${a.attempt}: ${a.statusCode ?? "no answer"} in ${a.durationMs} ms${a.error ? ` (${a.error})` : ""}`,
                  )
                  .join("; ")}
              </td>
            </tr>
          ))}
          {rows?.length === 0 && (
            <tr>
              <td colSpan={4}>No deliveries yet.</td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}

export function Webhooks() {
  const [list, setList] = useState<Webhook[]>([]);
  const [notice, setNotice] = useState<NoticeState>(null);
  const [open, setOpen] = useState<number | null>(null);
  const load = useCallback(async () => {
    try {
      setList((await webhooks.listWebhooks({})).webhooks);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const saved = (next: NoticeState) => {
    setNotice(next);
    void load();
  };
  const test = async (id: number) => {
    try {
      const result = await webhooks.testWebhook({ id });
      setNotice(
        result.success
          ? { kind: "ok", text: `Test event delivered: HTTP ${result.statusCode} in ${result.durationMs} ms` }
          : { kind: "error", text: `Test event not delivered: ${result.error ?? `HTTP ${result.statusCode}`}` },
      );
      setOpen(id);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };
  const remove = async (id: number) => {
    if (!confirm(`Delete webhook ${id}?`)) return;
    try {
      await webhooks.deleteWebhook({ id });
      saved({ kind: "ok", text: "Webhook deleted" });
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };
  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      <Notice state={notice} />
      <h2>New webhook</h2>
      <WebhookForm onSaved={saved} />
      <h2>Webhooks</h2>
      {list.length === 0 && <p>No webhooks yet.</p>}
      {list.map((webhook) => (
        <article key={webhook.id} class="card webhook" aria-labelledby={`webhook-${webhook.id}`}>
          <h3 id={`webhook-${webhook.id}`}>
            {webhook.url} {!webhook.active && <small>(inactive)</small>}
          </h3>
          <p>Events: {webhook.events.join(", ")}</p>
          <div class="actions">
            <button type="button" onClick={() => void test(webhook.id)}>
              Send test event
            </button>
            <button type="button" class="secondary" onClick={() => setOpen(open === webhook.id ? null : webhook.id)}>
              {open === webhook.id ? "Close" : "Edit and deliveries"}
            </button>
            <button type="button" class="danger" onClick={() => void remove(webhook.id)}>
              Delete
            </button>
          </div>
          {open === webhook.id && (
            <>
              <WebhookForm webhook={webhook} onSaved={saved} />
              <Deliveries id={webhook.id} />
            </>
          )}
        </article>
      ))}
    </section>
  );
}

// --- Keys ---

export function Keys() {
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [notice, setNotice] = useState<NoticeState>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [scope, setScope] = useState("client");
  const [gateway, setGateway] = useState("");
  const load = useCallback(async () => {
    try {
      setKeys((await admin.listKeys({})).keys);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const create = async (event: Event) => {
    event.preventDefault();
    try {
      const result = await admin.createKey({ name, scope, gatewayId: scope === "gateway" ? gateway : undefined });
      setCreated(result.apiKey);
      setName("");
      setGateway("");
      setNotice({ kind: "ok", text: `Key ${result.key?.id} created: copy it now, it is not shown again` });
      await load();
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };
  const revoke = async (key: ApiKey) => {
    if (!confirm(`Revoke key "${key.name}"? Whatever uses it stops working at once.`)) return;
    try {
      await admin.revokeKey({ id: key.id });
      setNotice({ kind: "ok", text: `Key ${key.id} revoked` });
      await load();
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <Notice state={notice} />
      <form class="card inline" onSubmit={create} aria-labelledby="new-key-title">
        <h2 id="new-key-title">New key</h2>
        <label>
          Name{" "}
          <input name="name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Scope{" "}
          <select name="scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            <option value="client">client</option>
            <option value="admin">admin</option>
            <option value="gateway">gateway (reinstalled phone)</option>
            <option value="registration">registration (SMSGate app's private token)</option>
          </select>
        </label>
        {scope === "gateway" && (
          <label>
            Gateway device id{" "}
            <input name="gateway" required value={gateway} onInput={(e) => setGateway(e.currentTarget.value)} />
          </label>
        )}
        <button type="submit">Create key</button>
      </form>
      {created !== null && (
        <section class="card created" aria-label="The new key">
          <p>The new key, shown this once:</p>
          <code class="secret">{created}</code>{" "}
          <button type="button" onClick={() => void navigator.clipboard?.writeText(created)}>
            Copy
          </button>{" "}
          <button type="button" class="secondary" onClick={() => setCreated(null)}>
            Done
          </button>
        </section>
      )}
      <Table label="Keys, newest first" columns={["Name", "Scope", "Ends in", "Created", "Last used", "State"]}>
        {keys.map((key) => (
          <tr key={key.id} data-key={key.id}>
            <th scope="row">{key.name}</th>
            <td>
              {key.scope}
              {key.gatewayId ? ` (${key.gatewayId})` : ""}
              {key.login ? ` (SMSGate login ${key.login})` : ""}
            </td>
            <td>
              <code>…{key.hint}</code>
            </td>
            <td>{when(key.createdAt)}</td>
            <td>{when(key.lastUsedAt)}</td>
            <td>
              {key.revokedAt ? (
                <Status value="revoked" />
              ) : (
                <button type="button" class="danger" onClick={() => void revoke(key)}>
                  Revoke <span class="sr-only">{key.name}</span>
                </button>
              )}
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

// --- Phones running the SMSGate app ---

const channelsOffered = ["SSE_ONLY", "AUTO"];
const periodsOffered = ["Disabled", "PerMinute", "Per30Minutes", "PerHour", "PerDay"];

/** A number field's value, or undefined when left empty. */
const optionalNumber = (value: string) => (value.trim() === "" ? undefined : Number(value));

export function SmsGatePhones() {
  const [phones, setPhones] = useState<PhoneSmsGateSettings[]>([]);
  const [notice, setNotice] = useState<NoticeState>(null);
  const [target, setTarget] = useState("");
  const [form, setForm] = useState<Record<string, string>>({});
  const load = useCallback(async () => {
    try {
      setPhones((await admin.listSmsGateSettings({})).phones);
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const field = (name: string) => (event: { currentTarget: { value: string } }) =>
    setForm({ ...form, [name]: event.currentTarget.value });
  const save = async (event: Event) => {
    event.preventDefault();
    try {
      const result = await admin.updateSmsGateSettings({
        gatewayId: target === "" ? undefined : target,
        settings: {
          notificationChannel: form.channel || undefined,
          pingIntervalSeconds: optionalNumber(form.ping ?? ""),
          sendIntervalMinSeconds: optionalNumber(form.min ?? ""),
          sendIntervalMaxSeconds: optionalNumber(form.max ?? ""),
          limitPeriod: form.period || undefined,
          limitValue: optionalNumber(form.limit ?? ""),
        },
      });
      setNotice({ kind: "ok", text: `Settings sent to ${result.phones.length} phone(s)` });
      await load();
    } catch (error) {
      setNotice({ kind: "error", text: describe(error) });
    }
  };
  return (
    <section aria-labelledby="smsgate-title">
      <h1 id="smsgate-title">Phones running the SMSGate app</h1>
      <Notice state={notice} />
      <form class="card inline" onSubmit={save} aria-labelledby="smsgate-form-title">
        <h2 id="smsgate-form-title">Tell phones what to do</h2>
        <label>
          Phone{" "}
          <select name="phone" value={target} onChange={(e) => setTarget(e.currentTarget.value)}>
            <option value="">every phone</option>
            {phones.map((phone) => (
              <option key={phone.gatewayId} value={phone.gatewayId}>
                {phone.gatewayId}
              </option>
            ))}
          </select>
        </label>
        <label>
          Notification channel{" "}
          <select name="channel" value={form.channel ?? ""} onChange={field("channel")}>
            <option value="">unchanged</option>
            {channelsOffered.map((channel) => (
              <option key={channel}>{channel}</option>
            ))}
          </select>
        </label>
        <label>
          Ping every (s) <input name="ping" type="number" min={0} max={86400} onInput={field("ping")} />
        </label>
        <label>
          Wait between SMS, from (s) <input name="min" type="number" min={0} max={3600} onInput={field("min")} />
        </label>
        <label>
          to (s) <input name="max" type="number" min={0} max={3600} onInput={field("max")} />
        </label>
        <label>
          Limit{" "}
          <select name="period" value={form.period ?? ""} onChange={field("period")}>
            <option value="">unchanged</option>
            {periodsOffered.map((period) => (
              <option key={period}>{period}</option>
            ))}
          </select>
        </label>
        <label>
          SMS per period <input name="limit" type="number" min={1} max={100000} onInput={field("limit")} />
        </label>
        <button type="submit">Send settings</button>
      </form>
      <Table label="Phones and their settings" columns={["Phone", "Channel", "Ping", "Interval", "Limit"]}>
        {phones.map((phone) => (
          <tr key={phone.gatewayId}>
            <th scope="row">{phone.gatewayId}</th>
            <td>{phone.settings?.notificationChannel ?? "SSE_ONLY"}</td>
            <td>{phone.settings?.pingIntervalSeconds ? `${phone.settings.pingIntervalSeconds} s` : "off"}</td>
            <td>
              {phone.settings?.sendIntervalMinSeconds ?? "–"} to {phone.settings?.sendIntervalMaxSeconds ?? "–"} s
            </td>
            <td>
              {phone.settings?.limitPeriod && phone.settings.limitPeriod !== "Disabled"
                ? `${phone.settings.limitValue ?? "?"} ${phone.settings.limitPeriod}`
                : "none"}
            </td>
          </tr>
        ))}
      </Table>
    </section>
  );
}
